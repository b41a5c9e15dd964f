"""The analytic hardware model: hls4ml's templates counted, per layer and per network.

``primitives``: arithmetic building blocks (products, CSD digits, adder trees, BRAM packing,
FIFOs); ``layers``: per-layer counts; ``network``: model-level glue; ``correction``: the few
learned parameters on top; ``reports``: report rows to LayerSpec tables. The derivation is in
``docs/hardware_model.md``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from connas4ml_torch.hardware.analytic.layers import BOUNDS, COMPONENTS, layer_counts
from connas4ml_torch.hardware.analytic.primitives import (
    csd_digits,
    weight_stats,
    weight_stats_expected,
)

__all__ = ["COMPONENTS", "BOUNDS", "layer_counts", "design", "csd_digits", "weight_stats",
           "weight_stats_expected"]


def design(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Everything the correction needs for a LayerSpec table: per-target component matrices,
    offsets ``Z``, DSP logistic inputs ``X``, DSP candidates and the hard DSP bound."""
    from connas4ml_torch.hardware.features import dsp_design, offsets_design, part_info

    e2 = np.array([part_info(str(p))[1] for p in frame["part"].fillna("")], bool)
    counts = layer_counts(frame, e2)
    out: dict[str, np.ndarray] = {f"A.{t}": counts[list(c)].to_numpy(float) for t, c in COMPONENTS.items()}
    out["Z"] = offsets_design(frame)
    out["X"] = dsp_design(frame)
    out["cand"] = counts["dsp_cand"].to_numpy(float)
    out["dsp_max"] = counts["dsp_max"].to_numpy(float)
    out["dsp_open"] = counts["dsp_open"].to_numpy(float)
    out["mults"] = counts["mults"].to_numpy(float)
    return out
