"""N-TORC (FCCM 2025) per-layer cost tables: Dense and Conv1D synthesis results as layer rows.

``training_data_optimizer/*_collapsed.csv`` hold means over identical feature tuples of Vivado
HLS 2019.1 runs on xczu7ev-ffvc1156-2-e at 4 ns, ap_fixed<16,8>, Resource strategy, io_parallel.
The scan recognises the files (``kind="table"``) and lists them in ``df.attrs["scan"]["tables"]``;
:func:`read_ntorc_tables` turns a folder of them into rows with :func:`read_reports`' columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from connas4ml_torch.hardware.reports.base import Parser, register
from connas4ml_torch.hardware.reports.columns import COLUMNS

__all__ = ["read_ntorc_tables", "NTORC_FILES"]

NTORC_FILES = ("dense_resources_collapsed.csv", "dense_latency_collapsed.csv",
               "collapsed_conv_resources.csv", "conv_latency_collapsed.csv")


def _ntorc_rows(res_path: Path, lat_path: Path, renames: dict[str, str], n_out: str,
                reuse: str) -> pd.DataFrame:
    """One N-TORC resource table joined with its latency table on the layer's feature tuple.

    The tables are means over identical feature tuples ("collapsed"): join on the tuple, not on
    model_number (each table kept its own representative model).
    """
    res = pd.read_csv(res_path)
    lat = pd.read_csv(lat_path).rename(columns=renames)
    key = ["n_inputs_resources", "sequence_length_resource", n_out, reuse]
    t = res.merge(lat[key + ["latency_min", "latency_max"]].groupby(key, as_index=False).mean(),
                  on=key, how="left")
    return pd.DataFrame({
        "n_in": t["n_inputs_resources"], "n_out": t[n_out], "seq": t["sequence_length_resource"],
        "reuse_factor": t[reuse], "BRAM_18K": t["bram_18k"], "LUT": t["lut"], "FF": t["ff"],
        "DSP": t["dsp48e"], "lat_best": t["latency_min"], "lat_worst": t["latency_max"],
        "report": str(res_path),
    })


def read_ntorc_tables(path: str | Path) -> pd.DataFrame:
    """N-TORC (FCCM 2025) per-layer cost tables as layer rows in :func:`read_reports`' columns.

    ``path`` is the folder with ``dense_resources_collapsed.csv``, ``dense_latency_collapsed.csv``,
    ``collapsed_conv_resources.csv`` and ``conv_latency_collapsed.csv``: Vivado HLS 2019.1,
    xczu7ev-ffvc1156-2-e, 4 ns, ap_fixed<16,8>, Resource strategy, io_parallel. A Dense over a
    sequence (``sequence_length > 1``) is hls4ml's pointwise Conv1D. The conv tables do not state
    the kernel size; N-TORC's generated networks (``dropbear_models/*.json``) use 3.
    """
    d = Path(path)
    need = ["dense_resources_collapsed.csv", "dense_latency_collapsed.csv",
            "collapsed_conv_resources.csv", "conv_latency_collapsed.csv"]
    missing = [n for n in need if not (d / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{d}: N-TORC tables missing: {', '.join(missing)}")
    common = {"level": "layer", "source": str(d), "format": "csv", "tool": "vivado_hls",
              "tool_version": "2019.1", "part": "xczu7ev-ffvc1156-2-e", "family": "zynquplus",
              "dsp_type": "DSP48E2", "clk_target_ns": 4.0, "strategy": "Resource",
              "io_type": "io_parallel", "weight_bits": 16, "input_bits": 16, "result_bits": 16}
    dense_rows = _ntorc_rows(
        d / "dense_resources_collapsed.csv", d / "dense_latency_collapsed.csv",
        {"n_inputs_latency": "n_inputs_resources", "sequence_length_latency": "sequence_length_resource",
         "dense_size_latency": "dense_size_resource",
         "correct_reuse_factor_dense_latency": "correct_reuse_factor_dense_resource"},
        n_out="dense_size_resource", reuse="correct_reuse_factor_dense_resource")
    dense_rows["layer_type"] = ["Dense" if s <= 1 else "Conv1D" for s in dense_rows["seq"]]
    dense_rows["kernel"] = [() if s <= 1 else (1,) for s in dense_rows["seq"]]
    dense_rows["out_size"] = [() if s <= 1 else (int(s),) for s in dense_rows["seq"]]
    conv_rows = _ntorc_rows(
        d / "collapsed_conv_resources.csv", d / "conv_latency_collapsed.csv",
        {"n_inputs_latency": "n_inputs_resources", "cnn_filters_latency": "cnn_filters_resources",
         "sequence_length_latency": "sequence_length_resource",
         "correct_reuse_factor_latency": "correct_reuse_factor_resource"},
        n_out="cnn_filters_resources", reuse="correct_reuse_factor_resource")
    conv_rows["layer_type"] = "Conv1D"
    conv_rows["kernel"] = [(3,)] * len(conv_rows)
    conv_rows["out_size"] = [(int(s),) for s in conv_rows["seq"]]
    out = pd.concat([dense_rows, conv_rows], ignore_index=True).drop(columns="seq")
    for k, v in common.items():
        out[k] = v
    out["latency"] = out["lat_worst"]
    out["II"] = np.nan  # the N-TORC tables carry no initiation interval
    out["config_source"] = "ntorc_table"
    for c in ("n_in", "n_out", "reuse_factor"):
        out[c] = out[c].astype(int)
    return out.reindex(columns=list(dict.fromkeys(COLUMNS + list(out.columns))))


def _table(path: Path) -> dict[str, Any]:
    return {"table": "ntorc", "folder": str(path.parent), "file": path.name}


register(Parser(name="ntorc_table", kind="table", suffixes=NTORC_FILES,
                matches=lambda path, head: path.name in NTORC_FILES, parse=_table))
