"""Fixed-point (power-of-two scale) grids: the Brevitas quantizer definitions of the derived and
exported model, the grid arithmetic, and what the export tells a user to use.

Every quantizer in this library is a fixed-point grid: ``scale = 2**ceil(t) / 2**(bits - signed)``
where ``t`` is a learned log2 threshold, values rounded half-to-even and saturated. This is what
hls4ml's ``ap_fixed`` represents exactly, which is why the export is bit-exact (docs/design.md, "Export"):
float (non power-of-two) scales become ``ApplyAlpha`` layers that hls4ml silently truncates.

The supernet computes the same arithmetic with fused torch ops (``fused.py``); the test
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
    "int_range",
    "fixed_point_scale",
    "log2_threshold_for",
    "log2_threshold_of",
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


THRESHOLD_FLOOR = 2.0**-12  # thresholds initialised from data cover at least this magnitude


def log2_threshold_for(max_abs: float, floor: float = THRESHOLD_FLOOR) -> float:
    """A log2 threshold that covers ``max_abs`` (used to initialise thresholds from data)."""
    return math.log2(max(float(max_abs), floor))


def log2_threshold_of(max_abs: Tensor, floor: float = THRESHOLD_FLOOR) -> Tensor:
    """:func:`log2_threshold_for` on the device (no host synchronisation): computed in float64
    as the Python version is, so the threshold rounds to the same float32 value."""
    return torch.log2(max_abs.double().clamp_min(floor))


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
