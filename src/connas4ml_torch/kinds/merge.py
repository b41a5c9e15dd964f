"""Sums of two branches (``h + f(h)`` in ``forward()``): hls4ml ``Merge`` layers, exact when their
result type holds the sum.

A sum has no module: the trace recognises the ops below (``exact_ops``) when every operand is a
traced, exact tensor (not a constant) of shape (batch, features): qonnx 1.0 cannot convert a sum
of conv feature maps to channels-last (its transpose-moving pass loops forever), so those are
refused naming the op. The sum leaves the grid; a weight layer it feeds gets its
own searchable input quantizer (``Supernet.analyse``), a ReLU after it quantizes it anyway. The
export sets the ``Merge`` result type from its inputs' types (one more integer bit, the finer
fraction) so that the quantizer after it rounds the value PyTorch rounds.
"""

from __future__ import annotations

from typing import Any

from connas4ml_torch.kinds.base import LayerKind, register


def fixed_parts(p: Any) -> tuple[bool, int, int]:
    """``(signed, int_bits, frac_bits)`` of an hls4ml fixed-point precision (sign counted)."""
    return bool(p.signed), int(p.integer), int(p.width) - int(p.integer)


class Merge(LayerKind):
    name = "Merge"
    role = "passive"
    hls_classes = ("Merge",)
    onnx_ops = ("Add",)
    # sums only: a difference is exact too in hls4ml, but not verified through the export yet
    exact_ops = ("add", "__add__", "__radd__", "__iadd__")

    def exact_op_problem(self, op: str, shapes: list[tuple[int, ...]]) -> str | None:
        if any(len(s) > 2 for s in shapes):
            return (f"the op {op!r} of two feature maps {shapes[0]} in forward() -- qonnx 1.0 "
                    "cannot convert a sum of conv feature maps to channels-last for hls4ml (its "
                    "transpose pass never ends). Fix: sum flattened (batch, features) tensors, "
                    "or remove the residual connection")
        return None

    def exact_precision(self, layer: Any, inputs: list[Any]) -> dict[str, Any] | None:
        op = str(layer.get_attr("op", "")).lower()
        if layer.class_name != "Merge" or op != "add" or len(inputs) != 2:
            return None
        (s1, i1, f1), (s2, i2, f2) = (fixed_parts(p) for p in inputs)
        signed = s1 or s2
        ints = max(i1 + (signed and not s1), i2 + (signed and not s2)) + 1
        return {"result": (signed, ints, max(f1, f2))}


register(Merge())
