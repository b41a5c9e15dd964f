"""What could not be configured, and why: one ``(report, missing fields, reason)`` per layer row.

A Dense/Conv row needs :data:`.columns.FULL_CONFIG` (plus kernel and output size for a conv) for a
cost model; other layers need their type, element count, input width and io type. The reason
names what the tree lacks (no ``parameters.h``, a name Vivado cut, ``LayerName`` entries that
cannot be paired...) so that a user knows which file would complete it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from connas4ml_torch.hardware.reports.columns import FULL_CONFIG
from connas4ml_torch.hardware.reports.configure import WEIGHTED

__all__ = ["unconfigured_entry"]


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, tuple)
                                                                     and not v)


def unconfigured_entry(r: dict[str, Any], src: dict[str, str], cfg: dict[str, Any],
                  params: dict[int, Any]) -> tuple[str, list[str], str] | None:
    ltype = r.get("layer_type")
    if ltype in (None, "other"):
        return None
    need = list(FULL_CONFIG) + (["kernel", "out_size"] if ltype in ("Conv1D", "Conv2D") else [])
    if ltype not in WEIGHTED:
        need = ["layer_type", "n_in", "input_bits", "io_type", "part", "tool"]
    missing = [k for k in need if _missing(r.get(k))]
    if not missing:
        return None
    why = []
    if r.get("config_index") is None:
        cut = "name cut by Vivado before its config index" if re.search(
            r"(?:_0){3,}|_\d+$", r["top"]) else "the function name has no config index"
        why.append(r.get("_unmatched") or cut + ("" if params else
                                                 " and no parameters.h to match it"))
    elif not params and set(missing) & {"n_in", "n_out", "kernel", "out_size"}:
        why.append("no firmware/parameters.h: " + ("kernel and output size are stated nowhere "
                                                   "else" if {"kernel", "out_size"} & set(missing)
                                                   else "sizes not in the name nor the ports"))
    elif params and r.get("config_index") not in params:
        why.append(f"parameters.h has no struct for config {r.get('config_index')}")
    if "reuse_factor" in missing and r.get("_rf_requested") is not None:
        why.append("the requested reuse factor may be replaced by hls4ml (Resource strategy) "
                   "and the sizes that decide it are not all known")
        missing_cfg = {"weight_bits", "strategy"} & set(missing)
    else:
        missing_cfg = {"weight_bits", "reuse_factor", "strategy"} & set(missing)
    if missing_cfg:
        if not cfg:
            why.append("no hls4ml_config.yml")
        elif cfg.get("layers") and not params:
            why.append("hls4ml_config.yml sets per-layer values that cannot be paired with this "
                       "layer without parameters.h")
        else:
            why.append("hls4ml_config.yml leaves it to hls4ml ('auto' or unset)")
    if "input_bits" in missing:
        why.append("Vivado elided the input type in the name and no data port states its width")
    if "io_type" in missing:
        why.append("no io_type in the name, parameters.h or hls4ml_config.yml")
    return (r["report"], missing, "; ".join(why) or "not stated in the tree")
