"""Arithmetic building blocks of the analytic hardware model (numpy only, vectorized).

Each function is the cost of one piece of hardware that hls4ml's templates instantiate; the
derivations are in ``docs/hardware_model.md`` (section "Primitives"). Everything here is monotone
in the widths it takes (never cheaper when an operand grows), which the learned correction on top
relies on to keep the model's predictions monotone.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from connas4ml_torch.hardware.weights import csd_digits, weight_stats, weight_stats_expected

__all__ = [
    "ceil_log2", "dsp_slices_per_product", "dsp_mapped_fraction", "dsp_const_fraction",
    "csd_digits",
    "expected_csd_digits", "weight_stats", "weight_stats_expected", "lut_per_product",
    "lut_per_const_product", "adder_tree_depth", "bram18k_for_rom", "fifo_cost",
]

# DSP multiplier port widths (signed): DSP48E2 (UltraScale/+) 27x18, DSP48E1 (7 series) 25x18
_DSP_PORTS = {"DSP48E2": (27, 18), "DSP48E1": (25, 18)}
# BRAM_18K aspect ratios: (depth, width) a single 18 kb block offers (UG473/UG573)
_BRAM_SHAPES = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))


def ceil_log2(x: np.ndarray | float) -> np.ndarray:
    """``ceil(log2(x))`` for ``x >= 1`` (0 for 1), elementwise."""
    return np.ceil(np.log2(np.maximum(np.asarray(x, float), 1.0)))


def dsp_slices_per_product(weight_bits: np.ndarray, input_bits: np.ndarray,
                           e2: np.ndarray | bool = True) -> np.ndarray:
    """DSP slices one ``b_w x b_in`` product needs: 1 up to the port widths (27x18 on DSP48E2,
    25x18 on DSP48E1), more for wider operands (cascaded partial products, best orientation)."""
    wb, ib = np.asarray(weight_bits, float), np.asarray(input_bits, float)
    e2 = np.broadcast_to(np.asarray(e2, bool), np.broadcast(wb, ib).shape)
    a = np.where(e2, 27.0, 25.0)
    b = 18.0
    one = np.ceil(wb / a) * np.ceil(ib / b)
    two = np.ceil(ib / a) * np.ceil(wb / b)
    return np.maximum(np.minimum(one, two), 1.0)


def dsp_mapped_fraction(weight_bits: np.ndarray, input_bits: np.ndarray) -> np.ndarray:
    """The analytic prior of the share of products HLS binds to DSPs (0..1, monotone in both
    widths): products whose narrow operand is below ~5 bits or whose wide operand is below ~10
    bits stay in LUTs (hls4ml docs; AMD UG1399 ``BIND_OP``). A smooth step, so that the learned
    correction can move the thresholds."""
    wb, ib = np.asarray(weight_bits, float), np.asarray(input_bits, float)
    wide, narrow = np.maximum(wb, ib), np.minimum(wb, ib)
    return 1.0 / (1.0 + np.exp(-3.0 * (wide - 9.5))) / (1.0 + np.exp(-3.0 * (narrow - 4.5)))


def dsp_const_fraction(weight_bits: np.ndarray, input_bits: np.ndarray) -> np.ndarray:
    """The analytic prior of the share of CONSTANT products (Latency-strategy weights) that HLS
    binds to DSPs (0..1, monotone in both widths). HLS turns a product by a constant into
    shift-and-add logic unless the constant itself is wide, so the step is on the weight's
    width, not on the wider operand: in real reports a 6-bit weight times a 16-bit input stays
    in LUTs, and 9..14-bit weights put at most a few % of their products on DSPs, 16-bit weights
    about three quarters (docs/hardware_model.md, "Which products use DSPs")."""
    wb, ib = np.asarray(weight_bits, float), np.asarray(input_bits, float)
    return 1.0 / (1.0 + np.exp(-1.0 * (wb - 14.5))) / (1.0 + np.exp(-3.0 * (ib - 4.5)))


@lru_cache(maxsize=64)
def _expected_csd_table(bits: int) -> float:
    """Mean CSD digits over all ``bits``-bit signed integers (the weights' grid, uniform)."""
    half = 2 ** (bits - 1)
    vals = np.arange(-half, half, dtype=np.int64)
    d = csd_digits(vals)
    return float(d[vals != 0].mean()) if bits > 1 else 1.0


def expected_csd_digits(weight_bits: np.ndarray) -> np.ndarray:
    """Mean CSD digits of a non-zero weight drawn uniformly from the ``b_w``-bit grid: about
    ``b_w/3 + 0.5``; used where the weights are not known (monotone in ``b_w``)."""
    wb = np.clip(np.asarray(weight_bits, float), 1, 40)
    lo = np.floor(wb).astype(int)
    table = np.array([_expected_csd_table(int(b)) if b <= 20 else b / 3 + 0.5
                      for b in range(1, 42)])
    return table[lo - 1] + (wb - lo) * (table[lo] - table[lo - 1])


def lut_per_product(weight_bits: np.ndarray, input_bits: np.ndarray) -> np.ndarray:
    """LUTs of a general (non-constant) ``b_w x b_in`` multiplier in fabric: about ``b_w*b_in/2``
    LUT6 with carry chains (``b_w*b_in`` partial-product bits, two per LUT), which the DSP share
    scales down; monotone envelope so that widening never looks cheaper."""
    wb, ib = np.asarray(weight_bits, float), np.asarray(input_bits, float)
    return 0.5 * wb * ib


def lut_per_const_product(digits: np.ndarray, input_bits: np.ndarray,
                          weight_bits: np.ndarray) -> np.ndarray:
    """LUTs of a product by a constant with ``digits`` non-zero CSD digits (shift-and-add):
    ``digits - 1`` adders of width ``b_in + b_w`` plus the sign handling of single-digit
    weights (a quarter adder); 0 for zero weights (the constant folds away)."""
    d = np.asarray(digits, float)
    width = np.asarray(input_bits, float) + np.asarray(weight_bits, float)
    return np.where(d > 0, (np.maximum(d - 1.0, 0.0) + 0.25) * width, 0.0)


def adder_tree_depth(fan_in: np.ndarray) -> np.ndarray:
    """Levels of a balanced two-input adder tree over ``fan_in`` terms: ``ceil(log2(fan_in))``."""
    return ceil_log2(fan_in)


def bram18k_for_rom(width_bits: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """BRAM_18K blocks of a ROM/RAM of ``depth`` words of ``width_bits`` (best aspect ratio,
    blocks side by side for width, stacked for depth); 0 for empty memories."""
    w = np.asarray(width_bits, float)
    d = np.asarray(depth, float)
    best = np.full(np.broadcast(w, d).shape, np.inf)
    for bd, bw in _BRAM_SHAPES:
        best = np.minimum(best, np.ceil(w / bw) * np.ceil(d / bd))
    return np.where((w > 0) & (d > 0), best, 0.0)


def fifo_cost(width_bits: np.ndarray, depth: np.ndarray,
              srl_max_bits: float = 1024.0) -> tuple[np.ndarray, np.ndarray]:
    """(BRAM_18K, LUT) of a stream FIFO: shift-register LUTs (SRL32, one LUT per 32 bits of
    each word lane plus a few for control) while the FIFO holds at most ``srl_max_bits`` or is
    at most 32 deep, block RAM beyond (``bram18k_for_rom``)."""
    w = np.asarray(width_bits, float)
    d = np.asarray(depth, float)
    small = (d <= 32) | (w * d <= srl_max_bits)
    bram = np.where(small, 0.0, bram18k_for_rom(w, d))
    lut = np.where(small, w * np.ceil(d / 32.0) + 8.0, 16.0 + ceil_log2(d) * 4.0)
    return bram, lut
