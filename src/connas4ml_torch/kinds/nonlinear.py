"""Activations hls4ml computes with lookup tables or fixed-point arithmetic, bit-exactly:
``nn.Sigmoid``, ``nn.Tanh`` (tables) and ``nn.LeakyReLU`` (``alpha * x``; ``softmax.py`` has the
softmax); each
then a searchable quantizer named after the module (``SearchSpace.act_bits[<module name>]``).

hls4ml's ``sigmoid``/``tanh`` (nnet_activation.h, parallel and stream alike) read a table of
``table_size`` entries of type ``table_t`` at ``index = int(x * N / R) + N / 2`` (truncated
toward zero, clamped to the table; ``R`` = 16 for sigmoid, 8 for tanh), the table holding
``table_t(f(in_val))`` with ``in_val = R * (i - N/2) / N`` and ``f`` evaluated in C floats
(sigmoid ``1.0 / (1 + expf(-x))`` through a double division, tanh in single precision),
truncated to ``table_t``. :class:`TableActivation` computes exactly that (the table is built
in numpy the same way, checked entry by entry against the C++ for the default size and type)
and exports to the ONNX ``Sigmoid``/``Tanh`` node (``symbolic``); the kind writes the same
table size and type into the hls4ml configuration. In the supernet the same table runs forward
and the smooth function's derivative backward (straight-through). A quantizer follows, as after
a ReLU; in hls4ml it is merged into the activation (one rounding of the table value).

LeakyReLU: hls4ml computes ``alpha * x`` in fixed point with ``alpha`` of type ``param_t``.
The slope is rounded to 8 significant bits (0.01 -> 41/4096 = 0.010009765625) so that a
``param_t`` the kind sets holds it exactly; the product is exact and the quantizer after it
rounds it as PyTorch (float64 in the verification) does.

"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from connas4ml_torch.errors import ExportError
from connas4ml_torch.kinds._weights import label
from connas4ml_torch.kinds.activation import SearchableOpAct, _ActKind, grid_quantizer
from connas4ml_torch.kinds.base import ArchControl, register

__all__ = ["TableActivation", "SigmoidTable", "TanhTable", "hls_table", "quantized_slope"]

TABLE_SIZE = 1024          # hls4ml's default table size
TABLE_TYPE = (18, 2)       # ap_fixed<18,2>: values in [-2, 2) with 16 fraction bits
_RANGE = {"sigmoid": 16, "tanh": 8}  # the input range each table spans (hls4ml's constants)


def hls_table(fn: str, size: int = TABLE_SIZE, width: int = TABLE_TYPE[0],
              integer: int = TABLE_TYPE[1]) -> np.ndarray:
    """hls4ml's ``init_sigmoid_table``/``init_tanh_table`` in numpy, as the C++ computes them.

    ``in_val`` is a float; sigmoid is ``float(1.0 / (1 + expf(-in_val)))``, tanh ``tanhf``
    (float32 of the double result: the correctly rounded float); both truncated (``AP_TRN``)
    onto ``ap_fixed<width, integer>`` (``AP_WRAP``: the values are inside its range).
    """
    r = _RANGE[fn]
    i = np.arange(size, dtype=np.float64)
    x = (r * (i - size / 2.0) / size).astype(np.float32)
    if fn == "sigmoid":
        e = np.exp(-x.astype(np.float64)).astype(np.float32)
        v = np.float32(1.0) / (np.float32(1.0) + e).astype(np.float64)
        v = v.astype(np.float32)
    else:
        v = np.tanh(x.astype(np.float64)).astype(np.float32)
    frac = width - integer
    return np.floor(v.astype(np.float64) * 2.0**frac) / 2.0**frac


class _Lookup(torch.autograd.Function):
    """Table forward, smooth derivative backward; exports to the ONNX activation."""

    @staticmethod
    def forward(ctx, x: Tensor, table: Tensor, fn: str, scale: float) -> Tensor:
        n = table.numel()
        idx = torch.clamp(torch.trunc(x * scale) + n // 2, 0, n - 1).long()
        ctx.save_for_backward(x)
        ctx.fn = fn
        return table.to(x.dtype)[idx]

    @staticmethod
    def backward(ctx, g: Tensor):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x) if ctx.fn == "sigmoid" else torch.tanh(x)
        d = s * (1 - s) if ctx.fn == "sigmoid" else 1 - s * s
        return g * d, None, None, None

    @staticmethod
    def symbolic(g, x, table, fn, scale):
        return g.op("Sigmoid" if fn == "sigmoid" else "Tanh", x)


class TableActivation(nn.Module):
    """hls4ml's lookup table of function ``fn`` (``SigmoidTable``, ``TanhTable``), bit for bit."""

    fn = ""

    def __init__(self, table_size: int = TABLE_SIZE):
        super().__init__()
        if table_size < _RANGE[self.fn] or table_size & (table_size - 1):
            raise ValueError(f"table_size must be a power of two >= {_RANGE[self.fn]}, "
                             f"got {table_size}")
        self.register_buffer("table", torch.tensor(hls_table(self.fn, table_size),
                                                   dtype=torch.float32))

    @property
    def table_size(self) -> int:
        return int(self.table.numel())

    def forward(self, x: Tensor) -> Tensor:
        # x * N / R is exact in floating point: N and R are powers of two
        return _Lookup.apply(x, self.table, self.fn, self.table_size / _RANGE[self.fn])

    def extra_repr(self) -> str:
        return f"{self.fn}, table_size={self.table_size}, table_t=ap_fixed{TABLE_TYPE}"


class SigmoidTable(TableActivation):
    fn = "sigmoid"


class TanhTable(TableActivation):
    fn = "tanh"


def _table_type() -> str:
    return f"fixed<{TABLE_TYPE[0]},{TABLE_TYPE[1]}>"


class _Table(_ActKind):
    """Sigmoid / Tanh: the table, then a quantizer."""

    fn = ""
    signed = True
    searchable_type = SearchableOpAct
    hls_classes = ("Activation",)
    hls_layer = "Activation"  # hls_activation: the table's function (set below)

    def to_searchable(self, name: str, module: nn.Module, space: Any, ctl: ArchControl):
        return SearchableOpAct(name, ctl, space.act_bits_for(name), self.derived_types[0](),
                               self.name, signed=self.signed)

    def derive(self, mod: SearchableOpAct, choices: dict[str, dict[str, int]], ctx: Any = None):
        op = type(mod.op)(mod.op.table_size)
        quant = grid_quantizer(mod.log2_threshold, choices[mod.name]["bits"], mod.signed)
        return nn.Sequential(OrderedDict(op=op, quant=quant))


    def check_export(self, name: str, m: nn.Module) -> None:
        if isinstance(m, self.derived_types):
            if m.table_size != TABLE_SIZE:
                raise ExportError(f"module {label(name)}: table_size {m.table_size}; the export "
                                  f"writes hls4ml tables of {TABLE_SIZE} entries.")
            return
        raise ExportError(
            f"module {label(name)} ({type(m).__name__}) is a float activation: hls4ml computes it "
            "with a lookup table, which the float function does not match. Fix: make the model "
            "searchable() and export the derived model (its connas4ml_torch.kinds.nonlinear."
            "TableActivation computes hls4ml's table exactly), then a quantizer.")

    def hls_node_config(self, node: Any, graph: Any) -> dict[str, Any]:
        # hls4ml reads type attributes from "<name>_t" keys, not from "Precision"
        return {"TableSize": TABLE_SIZE, "table_t": _table_type()}

    def exact_precision(self, layer: Any, inputs: list[Any]) -> dict[str, Any] | None:
        if layer.class_name != "Activation" or str(layer.get_attr("activation")).lower() != self.fn:
            return None
        return {"result": (True, TABLE_TYPE[1], TABLE_TYPE[0] - TABLE_TYPE[1])}


class Sigmoid(_Table):
    name = "Sigmoid"
    fn = hls_activation = "sigmoid"
    signed = False  # sigmoid's table is never negative
    torch_types = (nn.Sigmoid,)
    derived_types = (SigmoidTable,)
    onnx_ops = ("Sigmoid",)
    onnx_module_ops = ("Sigmoid",)


class Tanh(_Table):
    name = "Tanh"
    fn = hls_activation = "tanh"
    torch_types = (nn.Tanh,)
    derived_types = (TanhTable,)
    onnx_ops = ("Tanh",)
    onnx_module_ops = ("Tanh",)


# ---------------------------------------------------------------------------------------------
# LeakyReLU
# ---------------------------------------------------------------------------------------------
SLOPE_BITS = 8  # significant bits of the rounded slope


def quantized_slope(alpha: float, bits: int = SLOPE_BITS) -> float:
    """``alpha`` rounded to ``bits`` significant bits (a value a small fixed type holds)."""
    if alpha == 0:
        return 0.0
    e = math.floor(math.log2(abs(alpha)))
    frac = bits - 1 - e
    return round(alpha * 2.0**frac) / 2.0**frac


def slope_type(alpha: float) -> str:
    """The smallest signed ``fixed<W,I>`` holding ``alpha`` (a :func:`quantized_slope`)."""
    frac = 0
    while alpha * 2.0**frac != round(alpha * 2.0**frac):
        frac += 1
    ints = max(1, math.floor(math.log2(abs(alpha))) + 2) if alpha else 1
    return f"fixed<{ints + frac},{ints}>"


class LeakyReLU(_ActKind):
    name = "LeakyReLU"
    hls_layer, hls_activation = "Activation", "leaky_relu"
    torch_types = (nn.LeakyReLU,)
    searchable_type = SearchableOpAct
    hls_classes = ("LeakyReLU", "ParametrizedActivation")
    onnx_ops = ("LeakyRelu",)

    def to_searchable(self, name: str, module: nn.Module, space: Any, ctl: ArchControl):
        op = nn.LeakyReLU(quantized_slope(float(module.negative_slope)))
        return SearchableOpAct(name, ctl, space.act_bits_for(name), op, self.name, signed=True)

    def derive(self, mod: SearchableOpAct, choices: dict[str, dict[str, int]], ctx: Any = None):
        quant = grid_quantizer(mod.log2_threshold, choices[mod.name]["bits"], mod.signed)
        return nn.Sequential(OrderedDict(op=nn.LeakyReLU(mod.op.negative_slope), quant=quant))


    def check_export(self, name: str, m: nn.Module) -> None:
        a = float(m.negative_slope)
        if a != quantized_slope(a):
            raise ExportError(
                f"module {label(name)} (LeakyReLU) has slope {a}, which hls4ml's fixed-point "
                f"parameter would round. Fix: a slope with at most {SLOPE_BITS} significant bits "
                f"(e.g. {quantized_slope(a)}); searchable() rounds it for you.")

    def hls_node_config(self, node: Any, graph: Any) -> dict[str, Any]:
        alpha = next((a.f for a in node.attribute if a.name == "alpha"), 0.01)
        return {"Precision": {"param": slope_type(float(alpha))}}

    def exact_precision(self, layer: Any, inputs: list[Any]) -> dict[str, Any] | None:
        if str(layer.get_attr("activation", "")).lower() != "leakyrelu" or not inputs:
            return None
        p, a = inputs[0], layer.get_attr("param_t").precision
        frac = int(p.width) - int(p.integer) + int(a.width) - int(a.integer)
        return {"result": (True, int(p.integer) + int(a.integer), frac)}


for _k in (Sigmoid(), Tanh(), LeakyReLU()):
    register(_k)
