"""LayerSpec tables and the few inputs of the learned correction.

The hardware model is ``analytic count x learned correction`` (``analytic/``,
``analytic/correction.py``). The correction sees only what the analytic counts cannot know and
what does not depend on a layer's size or bits: the strategy, io type, HLS tool generation,
DSP slice family and layer class (offsets), and for the DSP share of products the operand widths
and the weights' CSD digits (a logistic with non-negative slopes). So every prediction stays
monotone in sizes and bits, and bounded by the analytic counts where the physics bounds it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import fields
from functools import lru_cache

import numpy as np
import pandas as pd

from connas4ml_torch.errors import ConfigError
from connas4ml_torch.hardware.layerspec import WEIGHT_LAYERS, LayerSpec
from connas4ml_torch.hardware.resources import part_dsp, part_family

__all__ = ["SPEC_COLUMNS", "OFFSETS", "specs_to_frame", "offsets_design", "dsp_design",
           "part_info", "is_vitis"]

SPEC_COLUMNS = [f.name for f in fields(LayerSpec)]
_DEFAULTS = {f.name: f.default for f in fields(LayerSpec) if f.name not in ("layer_type", "n_in", "n_out")}
# category offsets of the correction (each an indicator that never depends on sizes or bits)
OFFSETS = ("resource", "io_stream", "vitis", "dsp48e1", "conv", "elementwise")


@lru_cache(maxsize=256)
def part_info(part: str) -> tuple[str, bool]:
    """(family, has DSP48E2) of a part; unknown parts count as UltraScale+ (DSP48E2)."""
    try:
        return part_family(part), part_dsp(part) == "DSP48E2"
    except ValueError:
        return "unknown", True


def is_vitis(backend: object, tool_version: object) -> bool:
    """Vitis HLS (2020.2 and later) rather than Vivado HLS: the tool's version decides where it
    is known (the backend name only says which hls4ml writer made the project)."""
    nums = [int(v) for v in re.findall(r"\d+", str(tool_version or ""))[:2]]
    if len(nums) == 2:
        return tuple(nums) >= (2020, 2)
    return str(backend or "").lower().startswith("vitis")


def specs_to_frame(specs: Sequence[LayerSpec] | pd.DataFrame) -> pd.DataFrame:
    """A DataFrame with the LayerSpec columns from a list of LayerSpec (or a DataFrame of them;
    missing optional columns get LayerSpec's defaults)."""
    if isinstance(specs, pd.DataFrame):
        missing = [c for c in ("layer_type", "n_in", "n_out") if c not in specs.columns]
        if missing:
            raise ConfigError(f"layer table lacks LayerSpec columns {missing}")
        df = specs.copy()
        for k, v in _DEFAULTS.items():
            if k not in df.columns:
                df[k] = [v] * len(df) if isinstance(v, tuple) else v
        for k in ("kernel", "out_size"):
            df[k] = [tuple(t) if isinstance(t, (tuple, list)) else () for t in df[k]]
        return df.reset_index(drop=True)
    specs = list(specs)
    bad = [type(s).__name__ for s in specs if not isinstance(s, LayerSpec)]
    if bad:
        raise ConfigError(f"expected LayerSpec objects or a DataFrame, got {bad[0]}")
    return pd.DataFrame({name: [getattr(s, name) for s in specs] for name in SPEC_COLUMNS})


def offsets_design(df: pd.DataFrame) -> np.ndarray:
    """Indicator matrix (rows x ``OFFSETS``) of the correction's category offsets."""
    kind = df["layer_type"].astype(str).to_numpy()
    e2 = np.array([part_info(str(p))[1] for p in df["part"].fillna("")])
    vitis = np.array([is_vitis(b, v) for b, v in zip(df["backend"], df["tool_version"])])
    return np.column_stack([
        (df["strategy"].astype(str).str.lower() == "resource").to_numpy(float) * np.isin(kind, WEIGHT_LAYERS),
        (df["io_type"].astype(str).str.lower() == "io_stream").to_numpy(float),
        vitis.astype(float),
        (~e2).astype(float),
        np.isin(kind, ("Conv1D", "Conv2D")).astype(float),
        (~np.isin(kind, WEIGHT_LAYERS)).astype(float),
    ])


def dsp_design(df: pd.DataFrame) -> np.ndarray:
    """Inputs of the DSP share logistic, each non-decreasing in the layer's bits: the narrow and
    wide operand widths of a product and the LUTs the product would cost in fabric (a constant
    weight: shift-and-add over its CSD digits, the stated mean where the weights are known; a
    ROM-fed weight: a general multiplier), divided by 10. HLS binds a product to a DSP when its
    fabric version would be large."""
    from connas4ml_torch.hardware.analytic.primitives import (
        expected_csd_digits,
        lut_per_const_product,
        lut_per_product,
    )

    kind = df["layer_type"].astype(str).to_numpy()
    wb = pd.to_numeric(df["weight_bits"], errors="coerce").fillna(16).to_numpy(float)
    ib = pd.to_numeric(df["input_bits"], errors="coerce").fillna(16).to_numpy(float)
    tb = pd.to_numeric(df.get("table_bits", 18), errors="coerce")
    tb = np.broadcast_to(np.asarray(tb, float), (len(df),))
    smax = kind == "Softmax"
    wb = np.where(smax, tb, wb)
    ib = np.where(smax, tb, ib)
    nz = pd.to_numeric(df.get("n_nonzero_weights", np.nan), errors="coerce")
    csd = pd.to_numeric(df.get("csd_digits", np.nan), errors="coerce")
    nz = np.broadcast_to(np.asarray(nz, float), (len(df),))
    csd = np.broadcast_to(np.asarray(csd, float), (len(df),))
    dig = np.where(np.isfinite(csd) & (nz > 0), csd / np.maximum(nz, 1), expected_csd_digits(wb))
    rf = pd.to_numeric(df["reuse_factor"], errors="coerce").fillna(1).to_numpy(float)
    rom = (df["strategy"].astype(str).str.lower() == "resource").to_numpy() & (rf > 1) & ~smax
    cost = np.where(rom, lut_per_product(wb, ib),
                    np.minimum(lut_per_const_product(dig, ib, wb), lut_per_product(wb, ib)))
    return np.column_stack([np.minimum(wb, ib), np.maximum(wb, ib), cost / 10.0])
