"""Physics-informed features of a layer for the resource surrogate.

Every numeric feature is a monotone function of the layer's size, bits and reuse factor, so
monotonic constraints on the features carry over to the inputs (``FEATURE_DIRECTIONS``):
multiplications per initiation ``n_in*n_out*k/RF``, the multiplier bit product ``b_w*b_in``,
their product, whether products map to DSPs for the part (Xilinx implements a product in LUTs
below roughly 9-10 bits per operand; hls4ml's docs: "Vivado doesn't use DSP when precision < 9"),
all on log2 scales. Categorical features (strategy, io type, tool, family) carry no constraint.

:func:`prior_basis` gives, per target, the non-negative basis terms of the physics prior (hls4ml
counting: LUT multipliers ~ ``b_w*b_in`` per multiplication, adder tree ~ accumulator bits per
multiplication, DSPs = DSP-mapped multiplications, BRAM = weight words for the Resource strategy,
latency ~ adder-tree depth + reuse factor). Every term is monotone in the same directions as
``FEATURE_DIRECTIONS``, so any non-negative combination of them is too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import fields
from functools import lru_cache

import numpy as np
import pandas as pd

from connas4ml_torch.hardware.layerspec import LayerSpec
from connas4ml_torch.hardware.resources import part_dsp, part_family

__all__ = [
    "SPEC_COLUMNS", "FEATURES", "FEATURE_DIRECTIONS", "FAMILIES", "specs_to_frame", "build_features",
    "dsp_mapped", "rows_to_specs_frame", "PRIOR_TERMS", "prior_basis", "lut_product_bits",
]

SPEC_COLUMNS = [f.name for f in fields(LayerSpec)]
# families in a fixed order -> integer codes (unknown = -1 -> its own tree branch)
FAMILIES = ("virtexuplus", "virtexuplusHBM", "zynquplus", "kintexu", "kintexuplus", "virtex7",
            "zynq", "artix7")

# name -> (direction for resource targets, direction for latency/II targets); +1/-1/0
FEATURE_DIRECTIONS: dict[str, tuple[int, int]] = {
    "log2_n_in": (1, 1),
    "log2_n_out": (1, 1),
    "log2_kernel": (1, 1),
    "log2_pixels": (1, 1),
    "weight_bits": (1, 1),
    "input_bits": (1, 1),
    "min_bits": (1, 1),
    "max_bits": (1, 1),
    "log2_bit_product": (1, 1),
    "log2_reuse": (-1, 1),
    "log2_mults": (1, 0),  # per initiation: shrinks with RF (resources); not a latency feature
    "log2_mults_bits": (1, 0),
    "dsp_mapped": (1, 1),
    "log2_dsp_mults": (1, 0),
    "log2_weights": (1, 1),  # total weights: BRAM for Resource strategy; latency adder depth
    "strategy_resource": (0, 0),
    "io_stream": (0, 0),
    "conv": (0, 0),
    "vitis": (0, 0),
    "tool_year": (0, 0),
    "family_code": (0, 0),
    "dsp48e2": (0, 0),
}
FEATURES = list(FEATURE_DIRECTIONS)
LATENCY_DROP = {"log2_mults", "log2_mults_bits", "log2_dsp_mults"}


def dsp_mapped(weight_bits: np.ndarray, input_bits: np.ndarray, dsp48e2: np.ndarray) -> np.ndarray:
    """1 where a ``b_w x b_in`` product is expected on a DSP, else 0 (monotone in both bits).

    The widest operand must exceed what LUT multipliers take (10 bits; the DSP48E1's narrower
    pre-adder path makes 7-series switch at the same width) and the narrow one must be >= 5 bits.
    """
    wide = np.maximum(weight_bits, input_bits)
    narrow = np.minimum(weight_bits, input_bits)
    return ((wide >= 10) & (narrow >= 5)).astype(float)


def lut_product_bits(weight_bits: np.ndarray, input_bits: np.ndarray) -> np.ndarray:
    """Bits of a product as LUT logic: ``b_w*b_in`` where the product stays in LUTs, and above the
    DSP threshold the largest LUT-mapped product it dominates (``max(min(b_w,9)*min(b_in,9),
    4*max(b_w,b_in))``: the DSP's LUT glue), so the term never drops when bits grow."""
    wb, ib = np.asarray(weight_bits, float), np.asarray(input_bits, float)
    env = np.maximum(np.minimum(wb, 9) * np.minimum(ib, 9), 4 * np.maximum(wb, ib))
    return np.where(dsp_mapped(wb, ib, np.ones_like(wb)) > 0, env, wb * ib)


# target -> names of the prior's basis terms (all >= 0 and monotone; see prior_basis)
PRIOR_TERMS: dict[str, tuple[str, ...]] = {
    "LUT": ("mults*lut_bits", "mults*acc_bits", "n_out*acc_bits"),
    "FF": ("n_out*acc_bits", "mults*acc_bits", "mults*lut_bits"),
    "BRAM_18K": ("resource*mults*b_w/36", "resource*weights*b_w/18432"),
    "DSP": ("mults*dsp_mapped", "dsp_mapped"),
    "latency_cycles": ("1", "log2(n_in*k)", "reuse", "conv*pixels*reuse", "dsp_mapped"),
    "II": ("1", "reuse", "conv*pixels*reuse"),
}


def prior_basis(F: pd.DataFrame, target: str) -> np.ndarray:
    """Basis of the physics prior of ``target`` from a :func:`build_features` frame: (rows, terms).

    ``mults`` = multiplications per initiation ``n_in*n_out*k/RF``; ``lut_bits`` =
    :func:`lut_product_bits`; ``acc_bits`` = ``b_w + b_in + log2(n_in*k)`` (accumulator width).
    """
    n_out = 2.0 ** F["log2_n_out"].to_numpy(float)
    fan_in = F["log2_n_in"].to_numpy(float) + F["log2_kernel"].to_numpy(float)
    mults = 2.0 ** F["log2_mults"].to_numpy(float)
    weights = 2.0 ** F["log2_weights"].to_numpy(float)
    rf = 2.0 ** F["log2_reuse"].to_numpy(float)
    pix = 2.0 ** F["log2_pixels"].to_numpy(float)
    wb, ib = F["weight_bits"].to_numpy(float), F["input_bits"].to_numpy(float)
    dsp = F["dsp_mapped"].to_numpy(float)
    res, conv = F["strategy_resource"].to_numpy(float), F["conv"].to_numpy(float)
    acc = wb + ib + fan_in
    one = np.ones(len(F))
    cols = {
        "LUT": (mults * lut_product_bits(wb, ib), mults * acc, n_out * acc),
        "FF": (n_out * acc, mults * acc, mults * lut_product_bits(wb, ib)),
        "BRAM_18K": (res * mults * wb / 36.0, res * weights * wb / 18432.0),
        "DSP": (mults * dsp, dsp),
        "latency_cycles": (one, fan_in, rf, conv * pix * rf, dsp),
        "II": (one, rf, conv * pix * rf),
    }[target]
    return np.nan_to_num(np.column_stack(cols))


@lru_cache(maxsize=256)
def _family(part: str) -> tuple[str, int]:
    try:
        fam = part_family(part)
        return fam, int(part_dsp(part) == "DSP48E2")
    except ValueError:
        return "unknown", 1


def specs_to_frame(specs: Sequence[LayerSpec] | pd.DataFrame) -> pd.DataFrame:
    """A DataFrame with the LayerSpec columns from a list of LayerSpec (or a DataFrame of them)."""
    if isinstance(specs, pd.DataFrame):
        missing = [c for c in ("layer_type", "n_in", "n_out") if c not in specs.columns]
        if missing:
            raise ValueError(f"layer table lacks LayerSpec columns {missing}")
        df = specs.copy()
        defaults = {f.name: f.default for f in fields(LayerSpec) if f.name in
                    ("weight_bits", "input_bits", "reuse_factor", "strategy", "io_type", "backend",
                     "part", "clock_period", "tool_version", "result_bits")}
        for k, v in defaults.items():
            if k not in df.columns:
                df[k] = v
        for k in ("kernel", "out_size"):
            if k not in df.columns:
                df[k] = [()] * len(df)
        return df.reset_index(drop=True)
    specs = list(specs)
    bad = [type(s).__name__ for s in specs if not isinstance(s, LayerSpec)]
    if bad:
        raise TypeError(f"expected LayerSpec objects or a DataFrame, got {bad[0]}")
    cols = {name: [getattr(s, name) for s in specs] for name in SPEC_COLUMNS}
    return pd.DataFrame(cols)


def _prod(t: object) -> float:
    if isinstance(t, (tuple, list)):
        return float(math.prod(int(x) for x in t)) if t else 1.0
    if t is None or (isinstance(t, float) and math.isnan(t)):
        return 1.0
    return float(t)


def _year(v: object) -> float:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return np.nan
    s = str(v)
    try:
        return float(s.split(".")[0])
    except ValueError:
        return np.nan


def build_features(df: pd.DataFrame) -> pd.DataFrame:
    """Feature matrix (columns ``FEATURES``) from a table with LayerSpec columns."""
    n_in = df["n_in"].to_numpy(float)
    n_out = df["n_out"].to_numpy(float)
    k = np.array([_prod(t) for t in df["kernel"]])
    pix = np.array([_prod(t) for t in df["out_size"]])
    wb = df["weight_bits"].to_numpy(float)
    ib = df["input_bits"].to_numpy(float)
    rf = np.maximum(df["reuse_factor"].to_numpy(float), 1.0)
    fam = [_family(str(p)) for p in df["part"].fillna("")]
    e2 = np.array([f[1] for f in fam], float)
    fam_code = np.array([FAMILIES.index(f[0]) if f[0] in FAMILIES else -1 for f in fam], float)
    weights = n_in * n_out * k
    mults = weights / rf
    bp = wb * ib
    dsp = dsp_mapped(wb, ib, e2)
    backend = df["backend"].fillna("").astype(str).str.lower()
    out = pd.DataFrame({
        "log2_n_in": np.log2(n_in),
        "log2_n_out": np.log2(n_out),
        "log2_kernel": np.log2(k),
        "log2_pixels": np.log2(pix),
        "weight_bits": wb,
        "input_bits": ib,
        "min_bits": np.minimum(wb, ib),
        "max_bits": np.maximum(wb, ib),
        "log2_bit_product": np.log2(bp),
        "log2_reuse": np.log2(rf),
        "log2_mults": np.log2(mults),
        "log2_mults_bits": np.log2(mults * bp),
        "dsp_mapped": dsp,
        "log2_dsp_mults": np.log2(1.0 + mults * dsp),
        "log2_weights": np.log2(weights),
        "strategy_resource": (df["strategy"].astype(str).str.lower() == "resource").to_numpy(float),
        "io_stream": (df["io_type"].astype(str).str.lower() == "io_stream").to_numpy(float),
        "conv": (df["layer_type"].astype(str) != "Dense").to_numpy(float),
        "vitis": backend.str.startswith("vitis").to_numpy(float),
        "tool_year": np.array([_year(v) for v in df["tool_version"]]),
        "family_code": fam_code,
        "dsp48e2": e2,
    })
    return out[FEATURES]


def rows_to_specs_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Layer rows of :func:`read_reports` -> LayerSpec columns (backend from the tool)."""
    out = pd.DataFrame({
        "layer_type": rows["layer_type"].to_numpy(),
        "n_in": rows["n_in"].astype(float).to_numpy(),
        "n_out": rows["n_out"].astype(float).to_numpy(),
        "kernel": [t if isinstance(t, tuple) else () for t in rows["kernel"]],
        "out_size": [t if isinstance(t, tuple) else () for t in rows["out_size"]],
        "weight_bits": rows["weight_bits"].astype(float).to_numpy(),
        "input_bits": rows["input_bits"].astype(float).to_numpy(),
        "result_bits": rows.get("result_bits", pd.Series([np.nan] * len(rows))).to_numpy(),
        "reuse_factor": rows["reuse_factor"].astype(float).to_numpy(),
        "strategy": rows["strategy"].astype(str).str.capitalize().to_numpy(),
        "io_type": rows["io_type"].astype(str).to_numpy(),
        "backend": ["Vitis" if str(t).startswith("vitis") else "Vivado" for t in rows["tool"]],
        "part": rows["part"].astype(str).to_numpy(),
        "clock_period": rows["clk_target_ns"].astype(float).to_numpy(),
        "tool_version": rows["tool_version"].to_numpy(),
    })
    return out
