"""Exactness of hls4ml's types: every type between two quantizers must hold the exact value
PyTorch computes, so that the next quantizer rounds the same number.

Weight layers: the weight type equals the quantizer's grid and the accumulator holds the exact
sum, bounded from the actual integer weights (:func:`required_result_type`). Every other layer
that is not a rounding point holds what its layer kind's ``exact_precision`` says, from its
inputs' types (:func:`check_precisions`). ``conversion`` sets the too-narrow types and converts
once more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from connas4ml_torch.errors import ExportError
from connas4ml_torch.export.checks import LayerTrace, ModelTrace
from connas4ml_torch.kinds import kinds

__all__ = ["required_result_type", "result_type_covers", "check_precisions"]


def required_result_type(layer: LayerTrace) -> tuple[int, int]:
    """``(frac_bits, int_bits)`` an exact signed accumulator of ``layer`` needs.

    From the actual integer weights and biases and the input grid:
    ``max_j sum_i |w_ji| * max|x| + |b_j|`` bounds the output; the fraction bits are those of
    ``w * x`` and of the bias. ``int_bits`` counts the sign bit, as ``ap_fixed<W,I>``.
    """
    from connas4ml_torch.quant import int_range

    m = layer.module
    with torch.no_grad():
        w = m.quant_weight().value.detach().double()
        b = m.quant_bias().value.detach().double() if _bias_internal(m) else None
    lo, hi = int_range(layer.input.bits, layer.input.signed, narrow=False)
    x_max = max(abs(lo), abs(hi)) * layer.input.scale
    per_out = w.abs().reshape(w.shape[0], -1).sum(1) * x_max
    b_max = b.abs() if b is not None else torch.full_like(per_out, (2 ** (layer.bias.bits - 1)) * layer.bias.scale)
    bound = float((per_out + b_max).max())
    frac = max(-(layer.weight.log2_scale + layer.input.log2_scale), -layer.bias.log2_scale, 0)
    lsb = 2.0**-frac
    int_bits = max(1, math.ceil(math.log2(bound + lsb)) + 1) if bound > 0 else 1
    return frac, int_bits


def _bias_internal(m: nn.Module) -> bool:
    try:
        m.quant_bias()
        return True
    except Exception:  # external-scale bias quantizers need the input scale
        return False


def result_type_covers(precision: Any, frac: int, int_bits: int) -> bool:
    """Whether an hls4ml fixed-point type holds every value with ``frac``/``int_bits`` exactly."""
    width, integer = int(precision.width), int(precision.integer)
    signed = bool(getattr(precision, "signed", True))
    return signed and (width - integer) >= frac and integer >= int_bits


@dataclass(frozen=True)
class _Fixed:
    """A fixed-point type as hls4ml's ``FixedPrecisionType`` reads (the planned ones)."""

    width: int
    integer: int
    signed: bool

    @classmethod
    def of(cls, signed: bool, int_bits: int, frac_bits: int) -> _Fixed:
        return cls(int_bits + frac_bits, int_bits, signed)

    def __str__(self) -> str:
        return f"{'fixed' if self.signed else 'ufixed'}<{self.width},{self.integer}>"


def _holds(p: Any, signed: bool, int_bits: int, frac_bits: int) -> bool:
    """Whether hls4ml type ``p`` holds every value of the type ``(signed, int_bits, frac_bits)``
    exactly (``int_bits`` counts the sign bit of a signed type)."""
    if not hasattr(p, "width") or not hasattr(p, "integer"):
        return False
    width, integer, p_signed = int(p.width), int(p.integer), bool(getattr(p, "signed", True))
    if signed and not p_signed:
        return False
    need = int_bits + (1 if p_signed and not signed else 0)
    return width - integer >= frac_bits and integer >= need


def check_precisions(hm: Any, trace: ModelTrace, layer_names: dict[str, str],
                      onnx_names: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Verify the types of the converted model; return the explicit precisions to set.

    Weight layers: the weight type must equal the quantizer's grid (else ``ExportError``) and
    the result/accumulator must hold the exact sum (:func:`required_result_type`). Every other
    layer that is not a rounding point (a quantizer, or a layer a quantizer was merged into)
    must hold what its kind's ``exact_precision`` says, computed from its inputs' types as they
    will be after the fixes (one pass, in graph order). Returns ``{config layer name:
    {"result": type, "accum": type, ...}}`` for what is too narrow (empty: all exact).
    """
    onnx_of = {h: (onnx_names or {}).get(t, h) for t, h in layer_names.items()}
    torch_of = {h: t for t, h in layer_names.items()}
    traced = {t.name: t for t in trace.layers}
    fixes: dict[str, dict[str, str]] = {}
    planned: dict[str, Any] = {}  # output variable -> its type after the fixes
    for layer in hm.get_layers():
        out = layer.outputs[0] if layer.outputs else layer.name
        actual = layer.get_output_variable().type.precision
        ins = [planned.get(i) or layer.get_input_variable(i).type.precision
               for i in layer.inputs if layer.get_input_variable(i) is not None]
        planned[out] = actual
        if layer.name in torch_of:
            t = traced[torch_of[layer.name]]
            wp = layer.weights["weight"].type.precision
            if (int(wp.width), int(wp.integer)) != (t.weight.bits, t.weight.grid.int_bits):
                raise ExportError(
                    f"internal: hls4ml weight type of {t.name!r} is {wp} but the quantizer's grid "
                    f"is {t.weight.grid.hls_type()}; the project would not be exact."
                )
            frac, ib = required_result_type(t)
            acc = layer.get_attr("accum_t")
            acc = acc.precision if acc is not None else actual
            if layer.get_attr("quantizer") is None and not result_type_covers(actual, frac, ib):
                fixes.setdefault(onnx_of[layer.name], {})["result"] = f"fixed<{frac + ib},{ib}>"
                planned[out] = _Fixed.of(True, ib, frac)
            if not result_type_covers(acc, frac, ib):
                fixes.setdefault(onnx_of[layer.name], {})["accum"] = f"fixed<{frac + ib},{ib}>"
            continue
        if layer.get_attr("quantizer") is not None:
            continue  # a rounding point: a quantizer's own grid, as in PyTorch
        need = None
        if layer.class_name in ("Reshape", "Transpose") and ins:
            need = {"result": _parts(ins[0])}  # layout only: the input's type
        for k in kinds() if need is None else ():
            if layer.class_name in k.hls_classes:
                need = k.exact_precision(layer, ins)
                if need is not None:
                    break
        for key, value in (need or {}).items():
            if key == "result":
                have = actual
            else:
                have = layer.get_attr(f"{key}_t")
                have = have.precision if have is not None else None
            if not _holds(have, *value):
                fixes.setdefault(layer.name, {})[key] = str(_Fixed.of(*value))
                if key == "result":
                    planned[out] = _Fixed.of(*value)
    return fixes


def _parts(p: Any) -> tuple[bool, int, int]:
    return bool(getattr(p, "signed", True)), int(p.integer), int(p.width) - int(p.integer)
