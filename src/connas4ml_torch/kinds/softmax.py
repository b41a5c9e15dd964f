"""Softmax: ``nn.Softmax`` over the features of a (batch, features) tensor, as hls4ml's exact
``stable`` table implementation, then a searchable quantizer named after the module.

Softmax (over the features of a (batch, features) tensor): hls4ml's ``stable`` implementation,
with every type it uses set by the kind (hls4ml would otherwise derive its ``inp_norm_t`` from
the input type and wrap large differences): ``d = x_max - x`` truncated onto ``ufixed<10,4>``
(saturating at 16, where ``exp(-d)`` < 1e-6), ``exp(-d)`` from a 1024-entry ``ufixed<18,1>``
table, the exact sum, whose top 10 bits index a table of ``1 / sum``, and the product.
:class:`SoftmaxTable` computes the same (tables checked entry by entry against the C++); the
quantizer after it rounds the product once, as hls4ml's merged output cast does. The inverse
table's 10-bit index limits the accuracy to about 2**-(10 - log2(n)) relative: hls4ml's design.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from connas4ml_torch.errors import ExportError, UnsupportedLayerError
from connas4ml_torch.kinds._weights import label
from connas4ml_torch.kinds.activation import SearchableOpAct, _ActKind, grid_quantizer
from connas4ml_torch.kinds.base import ArchControl, register

__all__ = ["SoftmaxTable", "softmax_tables", "softmax_sum_int_bits"]

SOFTMAX_BITS = 10            # log2 of both table sizes (hls4ml's default 1024 entries)
NORM_TYPE = (10, 4)          # inp_norm_t: x_max - x in [0, 16) on a 1/64 grid, saturating
EXP_TYPE = (18, 1)           # exp_table_t: exp(-d) in (0, 1] with 17 fraction bits
INV_TYPE = (18, 1)           # inv_table_t: 1 / sum in (0, 1] with 17 fraction bits


def softmax_sum_int_bits(n: int) -> int:
    """Integer bits of the exact sum of ``n`` exponentials in (0, 1] (unsigned)."""
    return 1 + max(0, math.ceil(math.log2(n)))


def softmax_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """hls4ml's ``init_exp_table`` (negative, stable) and ``init_invert_table``, as the C++
    computes them for this module's types: ``exp_table_t(expf(-i * 2**-F))`` and
    ``inv_table_t(1.0f / x_i)`` with ``x_i`` the sum type's value whose top bits are ``i``."""
    size = 1 << SOFTMAX_BITS
    i = np.arange(size, dtype=np.float64)
    d = (i * 2.0 ** -(NORM_TYPE[0] - NORM_TYPE[1])).astype(np.float32)
    e = np.exp(-d.astype(np.float64)).astype(np.float32)
    f_exp = EXP_TYPE[0] - EXP_TYPE[1]
    exp_table = np.floor(e.astype(np.float64) * 2.0**f_exp) / 2.0**f_exp
    ia = softmax_sum_int_bits(n)
    x = (i * 2.0 ** (ia - SOFTMAX_BITS)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = (np.float32(1.0) / x).astype(np.float64)  # index 0 (1/0) is never read: sum >= 1
    f_inv = INV_TYPE[0] - INV_TYPE[1]
    top = 2.0 ** INV_TYPE[1] - 2.0 ** -f_inv
    inv_table = np.minimum(np.floor(np.minimum(inv, 2.0 ** 30) * 2.0**f_inv) / 2.0**f_inv, top)
    return exp_table, inv_table


class _SoftmaxLookup(torch.autograd.Function):
    """hls4ml's ``softmax_stable`` forward, the smooth softmax's gradient backward."""

    @staticmethod
    def forward(ctx, x: Tensor, exp_table: Tensor, inv_table: Tensor, ia: int) -> Tensor:
        f_norm = NORM_TYPE[0] - NORM_TYPE[1]
        d = x.max(-1, keepdim=True).values - x
        idx = torch.clamp(torch.floor(d * 2.0**f_norm), 0, (1 << NORM_TYPE[0]) - 1).long()
        e = exp_table.to(x.dtype)[idx]
        s = e.sum(-1, keepdim=True)
        j = torch.clamp(torch.floor(s * 2.0 ** (SOFTMAX_BITS - ia)), 0, (1 << SOFTMAX_BITS) - 1)
        out = e * inv_table.to(x.dtype)[j.long()]
        ctx.save_for_backward(x)
        return out

    @staticmethod
    def backward(ctx, g: Tensor):
        (x,) = ctx.saved_tensors
        p = torch.softmax(x, -1)
        return p * (g - (g * p).sum(-1, keepdim=True)), None, None, None

    @staticmethod
    def symbolic(g, x, exp_table, inv_table, ia):
        return g.op("Softmax", x, axis_i=-1)


class SoftmaxTable(nn.Module):
    """hls4ml's ``softmax_stable`` over the last of 2 dimensions (``n`` values), bit for bit.

    ``d = x_max - x`` on the ``inp_norm_t`` grid (truncated, saturating at 16), ``exp(-d)`` from
    a 1024-entry table, their exact sum, whose top 10 bits index a table of ``1 / sum``, and
    the product (rounded by the quantizer after it). The types are this module's constants; the
    Softmax kind writes the same into the hls4ml configuration.
    """

    def __init__(self, n: int):
        super().__init__()
        self.n = int(n)
        self.ia = softmax_sum_int_bits(self.n)
        exp_table, inv_table = softmax_tables(self.n)
        self.register_buffer("exp_table", torch.tensor(exp_table, dtype=torch.float32))
        self.register_buffer("inv_table", torch.tensor(inv_table, dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[-1] != self.n:
            raise ValueError(f"SoftmaxTable({self.n}) takes (batch, {self.n}), "
                             f"got {tuple(x.shape)}")
        return _SoftmaxLookup.apply(x, self.exp_table, self.inv_table, self.ia)

    def extra_repr(self) -> str:
        return f"n={self.n}, stable, tables of {1 << SOFTMAX_BITS}"


class _LazySoftmax(nn.Module):
    """The user's softmax in the supernet until the trace tells its size (then the table)."""

    def __init__(self, dim: int | None):
        super().__init__()
        self.dim = dim
        self.table: SoftmaxTable | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.table is None:
            return torch.softmax(x, -1)
        return self.table(x)


class Softmax(_ActKind):
    name = "Softmax"
    hls_layer, hls_activation = "Softmax", "softmax"
    torch_types = (nn.Softmax,)
    derived_types = (SoftmaxTable,)
    searchable_type = SearchableOpAct
    hls_classes = ("Softmax",)
    onnx_ops = ("Softmax",)
    onnx_module_ops = ("Softmax",)

    def to_searchable(self, name: str, module: nn.Module, space: Any, ctl: ArchControl):
        if module.dim not in (1, -1):
            raise UnsupportedLayerError(
                f"searchable(): module {label(name)} (Softmax) has dim={module.dim}; the export "
                "writes a softmax over the features of a (batch, features) tensor. Fix: dim=-1 "
                "on a flattened tensor")
        return SearchableOpAct(name, ctl, space.act_bits_for(name), _LazySoftmax(module.dim),
                               self.name, signed=False)

    def check_traced(self, name: str, module: nn.Module, node: Any) -> None:
        if len(node.shape) != 2:
            raise UnsupportedLayerError(
                f"searchable(): module {label(name)} (Softmax) is applied to a tensor of shape "
                f"{node.shape}; the export writes a softmax over (batch, features). Fix: "
                "flatten first")
        if module.op.table is None or module.op.table.n != node.shape[1]:
            module.op.table = SoftmaxTable(node.shape[1])

    def derive(self, mod: SearchableOpAct, choices: dict[str, dict[str, int]], ctx: Any = None):
        quant = grid_quantizer(mod.log2_threshold, choices[mod.name]["bits"], signed=False)
        return nn.Sequential(OrderedDict(op=SoftmaxTable(mod.op.table.n), quant=quant))


    def check_export(self, name: str, m: nn.Module) -> None:
        if not isinstance(m, SoftmaxTable):
            raise ExportError(
                f"module {label(name)} (Softmax) is the float softmax: hls4ml computes it with "
                "exp and inverse lookup tables, which it does not match. Fix: make the model "
                "searchable() and export the derived model (its connas4ml_torch.kinds.softmax."
                "SoftmaxTable computes hls4ml's stable softmax exactly), or leave the softmax "
                "out of the exported network (the argmax of the logits is the class).")

    def hls_node_config(self, node: Any, graph: Any) -> dict[str, Any]:
        n = int(graph.get_tensor_shape(node.input[0])[-1])
        ia = softmax_sum_int_bits(n)
        size = 1 << SOFTMAX_BITS
        return {"Implementation": "stable", "TableSize": size, "exp_table_size": size,
                "inv_table_size": size,
                "inp_norm_t": f"ufixed<{NORM_TYPE[0]},{NORM_TYPE[1]},TRN,SAT>",
                "exp_table_t": f"ufixed<{EXP_TYPE[0]},{EXP_TYPE[1]}>",
                "inv_table_t": f"ufixed<{INV_TYPE[0]},{INV_TYPE[1]},TRN,SAT>",
                "inv_inp_t": f"ufixed<{EXP_TYPE[0] - EXP_TYPE[1] + ia},{ia}>",
                "Precision": {"accum": f"ufixed<{EXP_TYPE[0] - EXP_TYPE[1] + ia},{ia}>"}}


register(Softmax())
