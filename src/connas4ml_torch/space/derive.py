"""Build the discrete Brevitas network that a supernet's choices describe.

Weights are sliced from the shared tensors: the first ``w`` output channels of each layer and,
in the layer that consumes them, the matching input channels (channel-major blocks after a
flatten); conv kernels are centre-cropped. Thresholds are copied, so with the same choices the
derived model computes exactly what the supernet computes.
"""

from __future__ import annotations

import copy

import torch
from brevitas.nn import QuantConv1d, QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from torch import Tensor, nn

from connas4ml_torch.quant import (
    FixedPointAct,
    FixedPointBias,
    FixedPointUnsignedAct,
    FixedPointWeight,
)
from connas4ml_torch.space.layers import (
    SearchableAct,
    SearchableConv,
    _SearchableWeight,
    padding_for,
)

__all__ = ["DerivedNet", "derive_model"]


class DerivedNet(nn.Module):
    """A plain Brevitas network: ``net(input_quant(x))``; nothing of the search is left in it."""

    def __init__(self, input_quant: QuantIdentity, net: nn.Module):
        super().__init__()
        self.input_quant = input_quant
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.input_quant(x))


def _set_threshold(quant_module: nn.Module, value: Tensor) -> None:
    for name, p in quant_module.named_parameters():
        if name.endswith("scaling_impl.value"):
            p.data.copy_(value.detach().reshape(p.shape))
            return
    raise RuntimeError(f"no scaling parameter found in {type(quant_module).__name__}")


def _act(mod: SearchableAct, bits: int) -> nn.Module:
    if mod.relu:
        q = QuantReLU(act_quant=FixedPointUnsignedAct, bit_width=bits, max_val=1.0)
    else:
        q = QuantIdentity(act_quant=FixedPointAct, bit_width=bits, min_val=-1.0, max_val=1.0)
    _set_threshold(q.act_quant, mod.log2_threshold)
    return q


def _in_index(block: int, width: int) -> Tensor:
    """Input features kept when the producer keeps its first ``width`` channels."""
    return torch.arange(width * block)


def _weight_layer(mod: _SearchableWeight, ch: dict[str, int], in_width: int | None, block: int):
    w_out = ch["width"]
    bits = ch["weight_bits"]
    w = mod.weight.detach()[:w_out]
    if in_width is not None:
        w = w.index_select(1, _in_index(block, in_width))
    b = mod.bias.detach()[:w_out]
    # always a quantized bias (zeros when the original had none): the exact export requires it
    common = dict(bias=True, weight_quant=FixedPointWeight, weight_bit_width=bits,
                  weight_scaling_init=1.0, bias_quant=FixedPointBias,
                  bias_bit_width=mod.bias_bits, bias_scaling_init=1.0)
    if isinstance(mod, SearchableConv):
        full_k = mod.kernel_size[0]
        k = ch.get("kernel", full_k)
        if k != full_k:
            lo = (full_k - k) // 2
            sl = (slice(None), slice(None)) + (slice(lo, lo + k),) * mod.dims
            w = w[sl]
        cls = QuantConv1d if mod.dims == 1 else QuantConv2d
        kernel = w.shape[2:]
        new = cls(w.shape[1], w.shape[0], kernel_size=tuple(kernel), stride=mod.stride,
                  padding=padding_for(k, mod.padding, full_k), dilation=mod.dilation, **common)
    else:
        new = QuantLinear(w.shape[1], w.shape[0], **common)
    with torch.no_grad():
        new.weight.copy_(w)
        new.bias.copy_(b if mod.has_bias else torch.zeros_like(b))
    _set_threshold(new.weight_quant, mod.weight_log2_threshold)
    _set_threshold(new.bias_quant, mod.bias_log2_threshold)
    return new


def derive_model(supernet, choices: dict[str, dict[str, int]]) -> DerivedNet:
    """Brevitas model for ``choices`` (a complete ``{layer: {kind: value}}`` mapping)."""
    graph = supernet.graph
    net = copy.deepcopy(supernet.net)
    was_training = supernet.training
    replacements: dict[str, nn.Module] = {}
    for qual, mod in net.named_modules():
        if isinstance(mod, SearchableAct):
            replacements[qual] = _act(mod, choices[mod.name]["bits"])
        elif isinstance(mod, _SearchableWeight):
            node = graph.layers.get(mod.name)
            if node is None:
                raise RuntimeError(f"derive(): {mod.name} was never called in forward()")
            in_width = choices[node.producer]["width"] if node.producer in choices else None
            replacements[qual] = _weight_layer(mod, choices[mod.name], in_width, node.block)
    for qual, new in replacements.items():
        parent_name, _, attr = qual.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        setattr(parent, attr, new)
    model = DerivedNet(_act(supernet.input_quant, choices["input"]["bits"]), net)
    model.train(was_training)
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(graph.input_shape))
    except RuntimeError as exc:
        raise ValueError(
            "derive(): the derived network does not run with the chosen widths. The model's "
            f"forward() probably hard-codes a size (e.g. x.view(-1, 64 * 4 * 4)); use "
            f"x.flatten(1) or nn.Flatten instead. ({exc})"
        ) from exc
    model.train(was_training)
    return model
