"""Average pooling: ``nn.AvgPool1d/2d`` and ``nn.AdaptiveAvgPool1d/2d`` -> the pool, then a
searchable quantizer named after the module -> hls4ml ``Pooling1D/2D`` (average) then a cast.

An average of grid values leaves the grid, so this kind is an ``"act"``: the supernet pools, then
quantizes (bits searched as ``SearchSpace.act_bits[<module name>]``; an unsigned grid when its
input is never negative, e.g. after a ReLU). hls4ml sums the window in ``accum_t`` and divides by
its size, truncating to ``accum_t``'s fraction: with a power-of-two window of ``2**k`` values the
quotient has exactly ``k`` more fraction bits than the input, so the export sets the pooling
layer's accumulator and result to the input type plus ``k`` integer and ``k`` fraction bits and
the quantizer after it rounds (half to even, saturating) the same value PyTorch rounds.
Non-power-of-two windows, padding, ``ceil_mode`` and ``divisor_override`` are refused when the
model is made searchable (the search accepts exactly what the export writes). An adaptive pool
whose input size is a multiple of its output size is a uniform window: ``derive`` writes it as
the plain pool.

qonnx 1.0 cannot make ``AveragePool`` channels-last (it knows Conv, MaxPool and BatchNorm), which
hls4ml's ONNX parser requires: during our export the kind registers a channels-last
``AveragePool`` with qonnx (the ``MaxPool`` wrapper's shape logic is the same).
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from torch import nn

from connas4ml_torch.errors import ExportError, UnsupportedLayerError
from connas4ml_torch.kinds._weights import label
from connas4ml_torch.kinds.activation import (
    SearchableOpAct,
    _ActKind,
    activation_input_bits,
    grid_quantizer,
)
from connas4ml_torch.kinds.base import ArchControl, register
from connas4ml_torch.kinds.pooling import pool_1d_patch

_ADAPTIVE = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)


def _tup(v: Any, n: int) -> tuple[int, ...]:
    return tuple(int(x) for x in v) if isinstance(v, (tuple, list)) else (int(v),) * n


def _dims(m: nn.Module) -> int:
    return 1 if isinstance(m, (nn.AvgPool1d, nn.AdaptiveAvgPool1d)) else 2


class AvgPool(_ActKind):
    name = "AvgPool"
    hls_layer = "Pooling"  # Pooling1D/2D: spec() says which
    torch_types = (nn.AvgPool1d, nn.AvgPool2d, *_ADAPTIVE)
    searchable_type = SearchableOpAct
    hls_classes = ("Pooling1D", "Pooling2D")
    onnx_ops = ("AveragePool",)

    # ---- the supernet -----------------------------------------------------------------------
    def problems(self, m: nn.Module) -> list[str]:
        if isinstance(m, _ADAPTIVE):
            return []
        bad = []
        if any(p != 0 for p in _tup(m.padding, _dims(m))):
            bad.append(f"padding={m.padding}")
        if m.ceil_mode:
            bad.append("ceil_mode=True")
        if getattr(m, "divisor_override", None) is not None:
            bad.append(f"divisor_override={m.divisor_override}")
        k = math.prod(_tup(m.kernel_size, _dims(m)))
        if k & (k - 1):
            bad.append(f"a window of {k} values (not a power of two: the division would round)")
        return bad

    def to_searchable(self, name: str, module: nn.Module, space: Any, ctl: ArchControl):
        bad = self.problems(module)
        if bad:
            raise UnsupportedLayerError(
                f"searchable(): module {label(name)} ({type(module).__name__}) uses "
                f"{', '.join(bad)}, which the bit-exact export cannot write. Fix: padding=0, "
                "ceil_mode=False, and a window of 2, 4, 8, 16 ... values (e.g. 2 or 2x2)")
        return SearchableOpAct(name, ctl, space.act_bits_for(name), module, self.name, signed=None)

    def check_traced(self, name: str, module: nn.Module, node: Any) -> None:
        """The window of an adaptive pool, from the traced sizes: uniform and a power of two."""
        pool = module.op
        dims = _dims(pool)
        size_in, size_out = tuple(node.shape[2:2 + dims]), tuple(node.out_shape[2:2 + dims])
        if isinstance(pool, _ADAPTIVE):
            if any(i % o for i, o in zip(size_in, size_out)):
                raise UnsupportedLayerError(
                    f"searchable(): module {label(name)} ({type(pool).__name__}) pools "
                    f"{size_in} to {size_out}: not a whole number of inputs per output, so its "
                    "windows differ in size (hls4ml has one). Fix: an output size that divides "
                    "the input size, or nn.AvgPool with a power-of-two window")
            kernel = tuple(i // o for i, o in zip(size_in, size_out))
            stride = kernel
        else:
            kernel = _tup(pool.kernel_size, dims)
            stride = _tup(pool.stride if pool.stride is not None else pool.kernel_size, dims)
        n = math.prod(kernel)
        if n & (n - 1):
            raise UnsupportedLayerError(
                f"searchable(): module {label(name)} ({type(pool).__name__}) averages windows "
                f"of {n} values ({size_in} -> {size_out}); only power-of-two windows divide "
                "exactly in fixed point. Fix: sizes that give 2, 4, 8 ... values per window")
        module.window = (kernel, stride)

    def derive(self, mod: SearchableOpAct, choices: dict[str, dict[str, int]], ctx: Any = None):
        kernel, stride = mod.window
        cls = nn.AvgPool1d if len(kernel) == 1 else nn.AvgPool2d
        pool = cls(kernel if len(kernel) > 1 else kernel[0],
                   stride if len(stride) > 1 else stride[0])
        quant = grid_quantizer(mod.log2_threshold, choices[mod.name]["bits"], mod.signed)
        return nn.Sequential(OrderedDict(op=pool, quant=quant))

    def spec(self, ctx: Any, hls: Any) -> Any:
        """hls4ml's ``Pooling1D/2D`` (average) over the traced input: channels, window, output
        positions; its result and accumulator carry the input grid plus the division's bits."""
        from connas4ml_torch.hardware.layerspec import LayerSpec

        if hasattr(ctx.module, "window"):  # the supernet's module
            kernel, _ = ctx.module.window
        else:  # a derived nn.AvgPool1d/2d
            k = ctx.module.kernel_size
            kernel = tuple(k) if isinstance(k, (tuple, list)) else (int(k),) * (len(ctx.in_shape) - 2)
        shape = tuple(ctx.in_shape)
        channels = int(ctx.values.get("in", shape[1]))
        bits = int(ctx.values["abits"])
        out = tuple(int(d) for d in ctx.out_shape[2:]) or tuple(
            s // k for s, k in zip(shape[2:], kernel))
        return LayerSpec(f"Pooling{len(kernel)}D", channels, channels, tuple(kernel), out,
                         input_bits=int(ctx.in_bits or activation_input_bits(bits)),
                         result_bits=bits, activation="average").with_hls(hls, ctx.name)

    # ---- export -------------------------------------------------------------------------------
    def check_export(self, name: str, m: nn.Module) -> None:
        """A pool in a derived or Brevitas model (its quantizer is a module of its own)."""
        if isinstance(m, _ADAPTIVE):
            raise ExportError(
                f"module {label(name)} ({type(m).__name__}): adaptive pooling is exported as the "
                "plain pool derive() writes (nn.AvgPool with the uniform window). Fix: export "
                "the derived model, or use nn.AvgPool1d/2d")
        bad = self.problems(m)
        if bad:
            raise ExportError(
                f"module {label(name)} ({type(m).__name__}) uses {', '.join(bad)}, which the "
                "bit-exact export does not support. Fix: padding=0, ceil_mode=False, a "
                "power-of-two window.")

    def exact_precision(self, layer: Any, inputs: list[Any]) -> dict[str, Any] | None:
        if layer.class_name not in self.hls_classes or not inputs or \
                str(layer.get_attr("pool_op", "")).lower() != "average":
            return None
        n = int(layer.get_attr("pool_height", 1)) * int(layer.get_attr("pool_width"))
        k = n.bit_length() - 1
        if n != 1 << k:
            raise ExportError(f"hls4ml layer {layer.name} averages {n} values, not a power of "
                              "two: the division would truncate. Fix: a power-of-two window.")
        p = inputs[0]
        t = (bool(p.signed), int(p.integer) + k, int(p.width) - int(p.integer) + k)
        return {"result": t, "accum": t}

    @contextlib.contextmanager
    def conversion_patch(self) -> Iterator[None]:
        with _qonnx_channels_last_average_pool(), pool_1d_patch("AveragePool"):
            yield


_REGISTERED_WITH_QONNX = [False]


@contextlib.contextmanager
def _qonnx_channels_last_average_pool() -> Iterator[None]:
    """Let qonnx's ConvertToChannelsLast wrap ``AveragePool`` as it wraps ``MaxPool``."""
    import qonnx.transformation.channels_last as channels_last
    from qonnx.custom_op.channels_last.base_wrapped_op import ChannelsLastWrappedOp
    from qonnx.custom_op.channels_last.max_pool import MaxPool_v1
    from qonnx.custom_op.registry import add_op_to_domain

    if not _REGISTERED_WITH_QONNX[0]:
        # same attributes, shape inference and checks as MaxPool; the name gives the op type
        op = type("AveragePool_v1", (MaxPool_v1,), {"__module__": __name__})
        add_op_to_domain("qonnx.custom_op.channels_last", op)
        _REGISTERED_WITH_QONNX[0] = True
    wrapped = ChannelsLastWrappedOp._channelsLast_node_types
    added = "AveragePool" not in channels_last._channelsLast_node_types
    if added:
        channels_last._channelsLast_node_types.append("AveragePool")
    ChannelsLastWrappedOp._channelsLast_node_types = list(dict.fromkeys([*wrapped, "AveragePool"]))
    try:
        yield
    finally:
        ChannelsLastWrappedOp._channelsLast_node_types = wrapped
        if added:
            channels_last._channelsLast_node_types.remove("AveragePool")


register(AvgPool())
