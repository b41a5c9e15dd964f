"""Max pooling: ``nn.MaxPool1d``/``nn.MaxPool2d``, kept as they are (a max of grid values stays
on the grid) -> hls4ml ``Pooling1D``/``Pooling2D``.

The search costs it as hls4ml's max ``Pooling1D/2D`` over the channels of the layer that feeds
it, with the bits of the quantizer whose grid its input is on (input and result: a max of grid
values stays on the grid); a max pool fed by no quantizer is not costed (docs/layer_kinds.md,
section 4).

Padding, dilation, ceil mode and returned indices have no exact hls4ml counterpart and are
refused when the model is made searchable, not only at export: the search accepts exactly what
the export can write. Adaptive max pooling is not verified through QONNX and is refused too.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

from torch import nn

from connas4ml_torch.errors import ExportError
from connas4ml_torch.kinds._weights import label
from connas4ml_torch.kinds.base import ArchControl, LayerKind, register


def _tup(v: Any) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


class MaxPool(LayerKind):
    name = "MaxPool"
    role = "passive"
    hls_layer = "Pooling"  # Pooling1D/2D (spec() says which): described to the cost model
    torch_types = (nn.MaxPool1d, nn.MaxPool2d)
    hls_classes = ("Pooling1D", "Pooling2D")
    onnx_ops = ("MaxPool",)
    grid_ops = ("max_pool1d", "max_pool2d", "max_pool1d_with_indices", "max_pool2d_with_indices")

    def problems(self, m: nn.Module) -> list[str]:
        bad = []
        if any(p != 0 for p in _tup(m.padding)):
            bad.append(f"padding={m.padding}")
        if any(d != 1 for d in _tup(m.dilation)):
            bad.append(f"dilation={m.dilation}")
        if m.ceil_mode:
            bad.append("ceil_mode=True")
        if m.return_indices:
            bad.append("return_indices=True")
        return bad

    def to_searchable(self, name: str, module: nn.Module, space: Any, ctl: ArchControl):
        self.check_export(name, module)
        return None

    def conversion_patch(self) -> contextlib.AbstractContextManager:
        return pool_1d_patch("MaxPool")

    # ---- cost model ---------------------------------------------------------------------------
    def cost_axes(self, module: nn.Module, node: Any) -> dict[str, tuple[str, str]]:
        """The bits of the quantizer that feeds it and the width of the layer whose channels it
        pools; nothing (not costed) when no quantizer's grid is known for its input."""
        quant = getattr(node, "in_quant", None)
        if quant is None:
            return {}
        axes = {"abits": (quant, "bits")}
        if node.producer is not None:
            axes["in"] = (node.producer, "width")
        return axes

    def spec(self, ctx: Any, hls: Any) -> Any:
        """hls4ml's max ``Pooling1D/2D``: channels (the producer's chosen width, else the traced
        count), the window, the traced output positions; input and result on the feeding
        quantizer's grid. ``None`` (not costed) when those bits are unknown."""
        from connas4ml_torch.hardware.layerspec import LayerSpec

        shape = tuple(ctx.in_shape)
        if "abits" not in ctx.values or len(shape) < 3:
            return None
        dims = len(shape) - 2
        k = ctx.module.kernel_size
        kernel = tuple(int(v) for v in k) if isinstance(k, (tuple, list)) else (int(k),) * dims
        channels = int(ctx.values.get("in", shape[1]))
        bits = int(ctx.values["abits"])
        out = tuple(int(d) for d in ctx.out_shape[2:])
        return LayerSpec(f"Pooling{dims}D", channels, channels, kernel, out, input_bits=bits,
                         result_bits=bits, activation="max").with_hls(hls, ctx.name)

    def exact_precision(self, layer: Any, inputs: list[Any]) -> dict[str, Any] | None:
        """A max of grid values is one of them: the input type holds it."""
        if layer.class_name not in self.hls_classes or not inputs or \
                str(layer.get_attr("pool_op", "")).lower() != "max":
            return None
        p = inputs[0]
        return {"result": (bool(p.signed), int(p.integer), int(p.width) - int(p.integer))}

    def check_export(self, name: str, m: nn.Module) -> None:
        bad = self.problems(m)
        if bad:
            raise ExportError(
                f"module {label(name)} ({type(m).__name__}) uses {', '.join(bad)}, which the "
                "hls4ml export does not support. Fix: use padding=0, dilation=1, ceil_mode=False.")


@contextlib.contextmanager
def pool_1d_patch(op_type: str) -> Iterator[None]:
    """Work around hls4ml 1.3.0's ONNX parser for 1-D pooling (during our conversion only).

    Its ``parse_pool_layer`` reads a channels-last (N, L, C) input as (N, C, L) and never sets
    ``pad_left``/``pad_right``, so every QONNX model with a 1-D ``op_type`` (``MaxPool``,
    ``AveragePool``) fails to convert ('Attribute "pad_left" of layer MaxPool_0 (Pooling1D) not
    set'). We wrap the handler and fix the 1-D fields; 2-D pooling is untouched. Bit-exactness of
    the result is checked by the Conv1d + MaxPool1d export test.
    """
    # the module, not the function of the same name that hls4ml.converters re-exports
    onnx_to_hls = importlib.import_module("hls4ml.converters.onnx_to_hls")
    original = onnx_to_hls.layer_handlers.get(op_type)
    if original is None:
        yield
        return

    def handler(node: Any, input_names: Any, input_shapes: Any, graph: Any) -> dict:
        layer = original(node, input_names, input_shapes, graph)
        if str(layer.get("class_name", "")).endswith("Pooling1D") and "pad_left" not in layer:
            pads = list(layer.get("pads") or [0, 0])
            n_in, n_filt = int(input_shapes[0][1]), int(input_shapes[0][2])
            k, stride = int(layer["pool_width"]), int(layer["stride_width"])
            layer.update(n_in=n_in, n_filt=n_filt, pad_left=int(pads[0]),
                         pad_right=int(pads[-1]), n_out=(n_in + int(sum(pads)) - k) // stride + 1)
        return layer

    onnx_to_hls.layer_handlers[op_type] = handler
    try:
        yield
    finally:
        onnx_to_hls.layer_handlers[op_type] = original


class AdaptiveMaxPool(LayerKind):
    name = "AdaptiveMaxPool"
    role = "refused"
    torch_types = (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)

    def refuse(self, name: str, module: nn.Module) -> str:
        return ("adaptive max pooling is not verified bit-exact through QONNX -> hls4ml. Fix: use "
                "nn.MaxPool1d/2d with the kernel size that gives the output size you need")


register(MaxPool())
register(AdaptiveMaxPool())
