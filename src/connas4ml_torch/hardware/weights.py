"""Weight arithmetic that predicts multiplier cost: fixed-point grids and canonical signed digits.

A constant multiplication ``x * w`` that HLS maps to LUTs costs roughly one adder per non-zero
digit of ``w`` in canonical signed-digit form (CSD, the non-adjacent form: digits in {-1, 0, +1},
no two adjacent non-zeros, the fewest non-zeros of any signed-digit form). ``7 = 8 - 1`` has two,
``5 = 4 + 1`` two, ``0`` none. :func:`csd_digits` counts them for integer arrays;
:func:`quantize` puts real weights on an ``ap_fixed`` grid first, as the C++ conversion does
(``AP_TRN``/``AP_RND``/``AP_RND_CONV`` rounding, ``AP_WRAP``/``AP_SAT`` overflow).

:func:`weight_stats` and :func:`weight_stats_expected` describe one layer's weights on the
power-of-two grid of the exported model (the latter differentiably, for the search).

numpy only (no torch): the report reader, the cost model and the search use it.
"""

from __future__ import annotations

import numpy as np

from connas4ml_torch.errors import ConfigError

__all__ = ["csd_digits", "quantize", "weight_stats", "weight_stats_expected"]


def csd_digits(values: np.ndarray | list[int]) -> np.ndarray:
    """Number of non-zero digits of each integer in canonical signed-digit (non-adjacent) form.

    ``csd_digits([0, 1, 3, 7, -7, 5, 255])`` -> ``[0, 1, 2, 2, 2, 2, 2]``. Integers only
    (floats with a fractional part raise ``ValueError``); magnitudes up to 2**62.
    """
    a = np.asarray(values)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise ConfigError("csd_digits needs integers (put real weights on a grid: quantize())")
    elif a.dtype.kind not in "iub":
        raise ConfigError(f"csd_digits needs integers, got dtype {a.dtype}")
    if a.size and np.max(np.abs(a.astype(np.float64))) > 2.0**62:
        raise ConfigError("csd_digits: magnitude beyond 2**62")
    n = np.abs(a.astype(np.int64))
    count = np.zeros(n.shape, dtype=np.int64)
    while np.any(n):
        odd = (n & 1).astype(bool)
        # an odd n takes digit +1 if n = 1 (mod 4), -1 if n = 3 (mod 4): then n - d = 0 (mod 4)
        digit = np.where(odd, 2 - (n & 3), 0)
        count += odd
        n = (n - digit) >> 1
    return count


def quantize(values: np.ndarray | list[float], frac_bits: int, width: int | None = None,
             signed: bool = True, q_mode: str = "TRN", o_mode: str = "WRAP") -> np.ndarray:
    """Integers ``k`` such that ``k * 2**-frac_bits`` is each value on an ``ap_fixed`` grid.

    ``q_mode``: ``TRN`` (floor, ap_fixed's default), ``TRN_ZERO`` (toward zero), ``RND``
    (half up), ``RND_ZERO``, ``RND_MIN_INF``, ``RND_INF``, ``RND_CONV`` (half to even).
    ``o_mode`` with ``width``: ``WRAP`` (two's complement wrap, the default) or ``SAT``
    (``SAT_ZERO``/``SAT_SYM`` treated as ``SAT``).
    """
    x = np.asarray(values, dtype=np.float64) * np.ldexp(1.0, int(frac_bits))
    if not np.all(np.isfinite(x)):
        raise ConfigError("quantize: non-finite value")
    q = q_mode.upper().removeprefix("AP_")
    if q == "TRN":
        k = np.floor(x)
    elif q == "TRN_ZERO":
        k = np.trunc(x)
    elif q == "RND":
        k = np.floor(x + 0.5)
    elif q == "RND_ZERO":
        k = np.where(x >= 0, np.ceil(x - 0.5), np.floor(x + 0.5))
    elif q == "RND_MIN_INF":
        k = np.ceil(x - 0.5)
    elif q == "RND_INF":
        k = np.where(x >= 0, np.floor(x + 0.5), np.ceil(x - 0.5))
    elif q == "RND_CONV":
        k = np.round(x)  # numpy rounds half to even
    else:
        raise ConfigError(f"quantize: unknown rounding mode {q_mode!r}")
    if np.max(np.abs(k), initial=0.0) > 2.0**62:
        raise ConfigError("quantize: value beyond 2**62 steps of the grid")
    k = k.astype(np.int64)
    if width is None or width >= 63:
        return k
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    o = o_mode.upper().removeprefix("AP_")
    if o.startswith("SAT"):
        return np.clip(k, lo, hi)
    span = 1 << width
    return ((k - lo) % span) + lo


def weight_stats(weights: np.ndarray, bits: int, scale: float | None = None) -> dict[str, float]:
    """Statistics of one layer's weights on hls4ml's fixed-point grid (pure numpy).

    ``weights``: float array (e.g. ``torch_weight.detach().cpu().numpy()``); ``bits``: total
    width of the weight type; ``scale``: the grid step as a power of two (``2**-frac_bits``); by
    default the smallest power of two that keeps ``max|w|`` inside ``bits`` signed bits. Returns
    ``n_weights``, ``n_nonzero`` (after quantization), ``csd_digits`` (total non-zero signed
    digits of the quantized non-zero weights) and ``csd_digits_mean`` (per non-zero weight); the
    LayerSpec fields ``n_nonzero_weights`` and ``csd_digits`` take the first and third.
    """
    w = np.asarray(weights, dtype=float).ravel()
    if bits < 1:
        raise ConfigError(f"weight_stats: bits must be >= 1, got {bits}")
    scale = _grid_scale(w, bits, scale)
    q = np.clip(np.round(w / scale), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1).astype(np.int64)
    nz = q != 0
    d = csd_digits(q[nz])
    total = float(d.sum())
    return {"n_weights": float(w.size), "n_nonzero": float(nz.sum()), "csd_digits": total,
            "csd_digits_mean": total / max(float(nz.sum()), 1.0)}


def _grid_scale(w: np.ndarray, bits: int, scale: float | None) -> float:
    if scale is not None:
        return float(scale)
    m = float(np.max(np.abs(w))) if w.size else 0.0
    top = 2.0 ** (bits - 1) - 1
    return float(2.0 ** np.ceil(np.log2(m / top))) if m > 0 else 1.0


def weight_stats_expected(weights: np.ndarray, bits: int,
                          scale: float | None = None) -> dict[str, float]:
    """Expected :func:`weight_stats` under stochastic rounding to the grid: each weight rounds
    to its lower grid neighbour with probability ``1 - f`` and to the upper with ``f`` (``f`` the
    fractional part). The expectation is piecewise linear in every weight, so it has a gradient
    almost everywhere (the search can evaluate the same formula on torch tensors: the values of
    ``csd_digits`` at the two neighbours are constants). Returns ``n_nonzero`` and
    ``csd_digits`` (totals) like :func:`weight_stats`."""
    w = np.asarray(weights, dtype=float).ravel()
    if bits < 1:
        raise ConfigError(f"weight_stats_expected: bits must be >= 1, got {bits}")
    s = _grid_scale(w, bits, scale)
    lo_i, hi_i = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    x = np.clip(w / s, lo_i, hi_i)
    lo = np.floor(x)
    f = x - lo
    hi = np.minimum(lo + 1, hi_i)
    d_lo, d_hi = csd_digits(lo.astype(np.int64)), csd_digits(hi.astype(np.int64))
    nz = (1 - f) * (lo != 0) + f * (hi != 0)
    dig = (1 - f) * d_lo + f * d_hi
    return {"n_weights": float(w.size), "n_nonzero": float(nz.sum()), "csd_digits": float(dig.sum())}
