"""``firmware/weights/w<N>.txt`` (and ``b<N>``...): a layer's weights as hls4ml wrote them.

hls4ml writes each weight tensor as a header and, by default (``WriteWeightsTxt``), as a text
file of comma-separated reals; ``N`` is the layer's index, the same as its ``configN`` struct.
The values are the model's reals, not yet on the weight type's grid (the C++ conversion does
that), so the scan quantizes them with the layer's weight type before counting
canonical-signed-digit terms (:func:`connas4ml_torch.hardware.weights.csd_digits`).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from connas4ml_torch.errors import ReportError
from connas4ml_torch.hardware.reports.base import MiB, Parser, read_text, register, show
from connas4ml_torch.hardware.reports.names import FixedType
from connas4ml_torch.hardware.weights import csd_digits, quantize

__all__ = ["parse_weights_txt", "weight_stats"]

MAX_BYTES = 32 * MiB
_NAME = re.compile(r"(w|b|wr|br|s|scale|bias)(\d+)\.txt")


def parse_weights_txt(path: str | Path) -> dict[str, Any]:
    """``{"tensor": "w", "index": N, "values": float array}``; ReportError on anything odd."""
    path = Path(path)
    m = _NAME.fullmatch(path.name.lower())
    if not m:
        raise ReportError(f"{show(path)}: not an hls4ml weights file name (w<N>.txt)")
    text = read_text(path, MAX_BYTES)
    norm = re.sub(r"[\s,]+", ",", text.strip()).strip(",")
    if not norm:
        raise ReportError(f"{show(path)}: empty weights file")
    if not re.fullmatch(r"[0-9eE.,+\-naifNAIF]*", norm[:10_000]):
        raise ReportError(f"{show(path)}: not a list of numbers")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = np.fromstring(norm, dtype=np.float64, sep=",")
    except ValueError as exc:
        raise ReportError(f"{show(path)}: not a list of numbers ({exc})") from exc
    if values.size != norm.count(",") + 1:
        raise ReportError(f"{show(path)}: not a list of numbers (stopped after {values.size} "
                          "values)")
    if not np.all(np.isfinite(values)):
        raise ReportError(f"{show(path)}: non-finite weight values")
    if np.max(np.abs(values)) > 1e12:
        raise ReportError(f"{show(path)}: absurd weight magnitude {np.max(np.abs(values)):g}")
    return {"tensor": m.group(1), "index": int(m.group(2)), "values": values}


def weight_stats(values: np.ndarray, wtype: FixedType | None) -> dict[str, Any]:
    """``n_weights, n_nonzero_weights, weights_max_abs`` and, when the weight type is known,
    ``csd_digits`` (non-zero CSD terms summed over the weights on the type's grid) and
    ``n_nonzero_quantized`` (weights that are non-zero on that grid)."""
    out: dict[str, Any] = {
        "n_weights": int(values.size),
        "n_nonzero_weights": int(np.count_nonzero(values)),
        "weights_max_abs": float(np.max(np.abs(values))) if values.size else 0.0,
    }
    if wtype is not None:
        k = quantize(values, wtype.frac, wtype.width, wtype.signed, wtype.q_mode, wtype.o_mode)
        out["csd_digits"] = int(csd_digits(k).sum())
        out["n_nonzero_quantized"] = int(np.count_nonzero(k))
    return out


register(Parser(
    name="weights_txt", kind="weights", suffixes=(".txt",), max_bytes=MAX_BYTES,
    matches=lambda path, head: bool(_NAME.fullmatch(path.name.lower()))
    and path.parent.name.lower() == "weights",
    parse=parse_weights_txt,
))
