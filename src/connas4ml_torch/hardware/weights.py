"""Weight arithmetic that predicts multiplier cost: fixed-point grids and canonical signed digits.

A constant multiplication ``x * w`` that HLS maps to LUTs costs roughly one adder per non-zero
digit of ``w`` in canonical signed-digit form (CSD, the non-adjacent form: digits in {-1, 0, +1},
no two adjacent non-zeros, the fewest non-zeros of any signed-digit form). ``7 = 8 - 1`` has two,
``5 = 4 + 1`` two, ``0`` none. :func:`csd_digits` counts them for integer arrays;
:func:`quantize` puts real weights on an ``ap_fixed`` grid first, as the C++ conversion does
(``AP_TRN``/``AP_RND``/``AP_RND_CONV`` rounding, ``AP_WRAP``/``AP_SAT`` overflow).

numpy only (no torch): the report reader and the cost model both use it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["csd_digits", "quantize"]


def csd_digits(values: np.ndarray | list[int]) -> np.ndarray:
    """Number of non-zero digits of each integer in canonical signed-digit (non-adjacent) form.

    ``csd_digits([0, 1, 3, 7, -7, 5, 255])`` -> ``[0, 1, 2, 2, 2, 2, 2]``. Integers only
    (floats with a fractional part raise ``ValueError``); magnitudes up to 2**62.
    """
    a = np.asarray(values)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise ValueError("csd_digits needs integers (put real weights on a grid: quantize())")
    elif a.dtype.kind not in "iub":
        raise ValueError(f"csd_digits needs integers, got dtype {a.dtype}")
    if a.size and np.max(np.abs(a.astype(np.float64))) > 2.0**62:
        raise ValueError("csd_digits: magnitude beyond 2**62")
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
        raise ValueError("quantize: non-finite value")
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
        raise ValueError(f"quantize: unknown rounding mode {q_mode!r}")
    if np.max(np.abs(k), initial=0.0) > 2.0**62:
        raise ValueError("quantize: value beyond 2**62 steps of the grid")
    k = k.astype(np.int64)
    if width is None or width >= 63:
        return k
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    o = o_mode.upper().removeprefix("AP_")
    if o.startswith("SAT"):
        return np.clip(k, lo, hi)
    span = 1 << width
    return ((k - lo) % span) + lo
