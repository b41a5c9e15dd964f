"""Fixed-point (power-of-two scale) quantizers: the Brevitas definitions and a fused fast path.

Every quantizer in this library is a fixed-point grid: ``scale = 2**ceil(t) / 2**(bits - signed)``
where ``t`` is a learned log2 threshold, values rounded half-to-even and saturated. This is what
hls4ml's ``ap_fixed`` represents exactly, which is why the export is bit-exact (docs/design.md, "Export"):
float (non power-of-two) scales become ``ApplyAlpha`` layers that hls4ml silently truncates.

Two implementations of the same arithmetic live here:

* Brevitas quantizer classes (``FixedPointWeight``, ``FixedPointBias``, ``FixedPointAct``,
  ``FixedPointUnsignedAct``) used by the derived, exported model;
* :func:`fake_quant`, a few fused torch ops used on the supernet's hot path, because Brevitas
  layers are launch-bound (4-17x slower than plain PyTorch, docs/design.md, "Speed"). The test
  ``tests/test_quant.py`` pins the two to identical outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from brevitas.inject.enum import ScalingImplType
from brevitas.quant.fixed_point import (
    Int8ActPerTensorFixedPointMinMaxInit,
    Int8BiasPerTensorFixedPointInternalScaling,
    Int8WeightPerTensorFixedPoint,
    Uint8ActPerTensorFixedPointMaxInit,
)
from torch import Tensor

__all__ = [
    "FixedPointWeight",
    "FixedPointBias",
    "FixedPointAct",
    "FixedPointUnsignedAct",
    "QuantGrid",
    "fake_quant",
    "int_range",
    "fixed_point_scale",
    "log2_threshold_for",
    "FIX",
    "float_scaled",
    "refuse_float_scale",
]


class FixedPointWeight(Int8WeightPerTensorFixedPoint):
    """Signed narrow-range weights, learned power-of-two threshold (not re-derived from stats).

    A learned threshold (instead of Brevitas' max-stats default) keeps the scale unchanged when the
    supernet's weight tensor is sliced to the chosen widths, so derived == supernet exactly.
    """

    scaling_impl_type = ScalingImplType.PARAMETER


class FixedPointBias(Int8BiasPerTensorFixedPointInternalScaling):
    """Signed biases with their own learned power-of-two threshold (no dependence on the input scale)."""

    scaling_impl_type = ScalingImplType.PARAMETER


class FixedPointAct(Int8ActPerTensorFixedPointMinMaxInit):
    """Signed activations (the network input), learned power-of-two threshold."""


class FixedPointUnsignedAct(Uint8ActPerTensorFixedPointMaxInit):
    """Unsigned activations (after ReLU), learned power-of-two threshold."""


def int_range(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    """Integer range of a ``bits``-wide grid, as Brevitas defines it (narrow drops the most negative)."""
    if signed:
        lo = -(2 ** (bits - 1)) + (1 if narrow else 0)
        return lo, 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def fixed_point_scale(log2_threshold: float, bits: int, signed: bool) -> float:
    """The step of the grid: ``2**ceil(t) / 2**(bits - signed)`` (Brevitas PowerOfTwoIntScaling)."""
    return 2.0 ** (math.ceil(log2_threshold) - (bits - 1 if signed else bits))


def log2_threshold_for(max_abs: float, floor: float = 2.0**-12) -> float:
    """A log2 threshold that covers ``max_abs`` (used to initialise thresholds from data)."""
    return math.log2(max(float(max_abs), floor))


@dataclass(frozen=True)
class QuantGrid:
    """The fixed-point grid of one quantizer, in hls4ml's terms.

    ``int_bits`` counts the sign bit for signed grids, as ``ap_fixed<W,I>`` does.
    """

    bits: int
    signed: bool
    log2_scale: int

    @property
    def int_bits(self) -> int:
        return self.bits + self.log2_scale

    def hls_type(self, rounding: str | None = None, saturation: str | None = None) -> str:
        """hls4ml precision string, e.g. ``fixed<8,2,RND_CONV,SAT>``."""
        base = "fixed" if self.signed else "ufixed"
        extra = "".join(f",{x}" for x in (rounding, saturation) if x)
        return f"{base}<{self.bits},{self.int_bits}{extra}>"

    @classmethod
    def from_threshold(cls, log2_threshold: float, bits: int, signed: bool) -> QuantGrid:
        return cls(bits, signed, int(math.ceil(log2_threshold)) - (bits - 1 if signed else bits))


def _round_ste(x: Tensor) -> Tensor:
    # torch.round rounds half to even, as Brevitas' RoundSte and QONNX's ROUND do.
    return x + (torch.round(x) - x).detach()


def _ceil_ste(x: Tensor) -> Tensor:
    return x + (torch.ceil(x) - x).detach()


class _MixedFakeQuant(torch.autograd.Function):
    """``sum_b p_b Q_b(x)`` in one autograd node, saving only ``x`` for the backward pass.

    The composed version (one ``fake_quant`` per bit width, then a weighted sum) records ~10
    autograd nodes per choice and keeps several full-size intermediates; on the supernet's hot
    path that costs more than the matmul. Here all choices are computed at once on a stacked
    ``[K, *x.shape]`` view (one kernel per op whatever K is, no host synchronisation), and the
    gradients are the composed version's, written out: straight-through round, a clamp that
    stops the gradient outside the range, and ``d/dt`` through
    ``scale = 2**ceil_ste(t) / 2**(b - signed)``.
    """

    _consts: dict = {}

    @staticmethod
    def _grid(x, t, bits, signed, narrow):
        key = (bits, signed, narrow, x.dtype, x.device, x.dim())
        c = _MixedFakeQuant._consts.get(key)
        if c is None:  # per-choice integer ranges and divisors, built once per layout
            shape = (len(bits),) + (1,) * x.dim()
            lo_hi = [int_range(b, signed, narrow) for b in bits]
            mk = lambda v: torch.tensor(v, dtype=x.dtype, device=x.device).view(shape)  # noqa: E731
            c = (mk([a for a, _ in lo_hi]), mk([b for _, b in lo_hi]),
                 mk([float(2 ** (b - 1 if signed else b)) for b in bits]))
            _MixedFakeQuant._consts[key] = c
        lo, hi, div = c
        s = torch.exp2(torch.ceil(t)).to(x.dtype) / div  # [K, 1, ...] power-of-two steps
        return s, lo, hi

    # above this many elements the K choices are computed one after another in place (memory
    # and bandwidth bound); below it all at once on a stacked view (launch bound)
    STACK_LIMIT = 1 << 16

    @staticmethod
    def forward(ctx, x, t, p, bits, signed, narrow):
        s, lo, hi = _MixedFakeQuant._grid(x, t, bits, signed, narrow)
        w = (s * p.to(x.dtype).view(s.shape))  # p_k * s_k
        if x.numel() <= _MixedFakeQuant.STACK_LIMIT:
            out = (torch.clamp(torch.round(x.unsqueeze(0) / s), lo, hi) * w).sum(0)
        else:
            out = torch.zeros_like(x)
            buf = torch.empty_like(x)
            for k in range(len(bits)):
                torch.div(x, s[k], out=buf)
                buf.round_().clamp_(lo[k], hi[k]).mul_(w[k])
                out.add_(buf)
        ctx.save_for_backward(x, t, p)
        ctx.bits, ctx.signed, ctx.narrow = bits, signed, narrow
        return out

    @staticmethod
    def backward(ctx, g):
        x, t, p = ctx.saved_tensors
        s, lo, hi = _MixedFakeQuant._grid(x, t, ctx.bits, ctx.signed, ctx.narrow)
        pk = p.to(x.dtype).view(s.shape)
        need_x, need_t, need_p = ctx.needs_input_grad[:3]
        if x.numel() <= _MixedFakeQuant.STACK_LIMIT:
            y = x.unsqueeze(0) / s
            c = torch.round(y)
            inside = (c >= lo) & (c <= hi)
            c = torch.clamp(c, lo, hi)
            gx = (g * (inside.to(x.dtype) * pk).sum(0)) if need_x else None
            gc = (g.unsqueeze(0) * c).flatten(1).sum(1)  # [K]: sum of g * round-clamped values
            gy = (g.unsqueeze(0) * y * inside).flatten(1).sum(1) if need_t else None
        else:
            gx = torch.zeros_like(x) if need_x else None
            gc = torch.empty(len(ctx.bits), dtype=x.dtype, device=x.device)
            gy = torch.empty_like(gc)
            y, c = torch.empty_like(x), torch.empty_like(x)
            for k in range(len(ctx.bits)):
                torch.div(x, s[k], out=y)
                torch.round(y, out=c)
                inside = (c >= lo[k]) & (c <= hi[k])
                c.clamp_(lo[k], hi[k])
                if need_x:
                    gx.addcmul_(inside.to(x.dtype), pk[k] * g)
                gc[k] = torch.sum(c.mul_(g))
                if need_t:
                    gy[k] = torch.sum(y.mul_(g).mul_(inside))
        gp = (gc * s.flatten()).to(p.dtype) if need_p else None
        gt = None
        if need_t:
            gt = (math.log(2.0) * (pk.flatten() * s.flatten() * (gc - gy)).sum()).to(t.dtype)
        return gx, gt, gp, None, None, None


def mixed_fake_quant(x: Tensor, log2_threshold: Tensor, bits: tuple[int, ...], probs: Tensor,
                     signed: bool, narrow: bool = False) -> Tensor:
    """``sum_b probs[b] * fake_quant(x, t, bits[b])`` as one fused autograd node (same values)."""
    return _MixedFakeQuant.apply(x, log2_threshold, probs, tuple(bits), signed, narrow)


def fake_quant(
    x: Tensor, log2_threshold: Tensor, bits: int, signed: bool, narrow: bool = False
) -> Tensor:
    """Quantize-dequantize ``x`` on the fixed-point grid; straight-through gradients.

    Same forward arithmetic as a Brevitas ``*FixedPoint`` quantizer with a PARAMETER threshold:
    ``scale = 2**ceil(t) / 2**(bits - signed)``, ``round_half_even(x / scale)`` clamped to the
    integer range, times ``scale``. Gradients reach ``x`` (zero where saturated) and ``t``.
    """
    lo, hi = int_range(bits, signed, narrow)
    scale = torch.exp2(_ceil_ste(log2_threshold)) / float(2 ** (bits - 1 if signed else bits))
    q = torch.clamp(_round_ste(x / scale), lo, hi)
    return q * scale


# How to quantize each role so that the export is exact (used in every export error message).
FIX = {
    "weight": "build it with weight_quant=connas4ml_torch.quant.FixedPointWeight (power-of-two "
              "scale), e.g. QuantLinear(..., weight_quant=FixedPointWeight, weight_bit_width=b, "
              "weight_scaling_init=t)",
    "bias": "use bias=True with bias_quant=connas4ml_torch.quant.FixedPointBias, bias_bit_width=b, "
            "bias_scaling_init=t",
    "act": "use QuantReLU(act_quant=connas4ml_torch.quant.FixedPointUnsignedAct, bit_width=b, "
           "max_val=m)",
    "input": "make the first op of forward() QuantIdentity(act_quant=connas4ml_torch.quant."
             "FixedPointAct, bit_width=b, min_val=-m, max_val=m, return_quant_tensor=False)",
}


def float_scaled(proxy: torch.nn.Module) -> bool:
    """Whether a Brevitas quantizer proxy restricts its scale to floats (not powers of two).

    Checked on the module structure and not only on the current value: a float-scale quantizer
    can hold a power-of-two value by accident (an untrained QuantIdentity starts at 1/128) and
    drift off it with the next fine-tuning step.
    """
    from brevitas.core.restrict_val import FloatRestrictValue, PowerOfTwoRestrictValue

    found = {type(m) for m in proxy.modules()}
    return FloatRestrictValue in found and PowerOfTwoRestrictValue not in found


def refuse_float_scale(where: str, role: str, proxy: torch.nn.Module, fix: str) -> None:
    """Raise ``ExportError`` when ``proxy`` has a float scale (hls4ml would be silently wrong)."""
    from connas4ml_torch.errors import ExportError

    if float_scaled(proxy):
        raise ExportError(
            f"{where}: its {role} quantizer has a float scale, not a power of two. hls4ml would "
            "insert ApplyAlpha scale layers with fixed<16,6> weights and the project would compute "
            f"chance-level outputs without any error. Fix: {fix}."
        )
