"""Build the discrete Brevitas network that a supernet's choices describe.

Each searchable module is replaced by what its layer kind derives (connas4ml_torch.kinds):
weights are sliced from the shared tensors (the first ``w`` output channels of each layer and,
in the layer that consumes them, the matching input channels, channel-major blocks after a
flatten), conv kernels centre-cropped, BatchNorms folded (and replaced by ``nn.Identity``),
thresholds copied; a skipped block becomes ``nn.Identity``; an operation with its own quantizer
(average pooling, a lookup-table activation) becomes ``nn.Sequential(op=...,
quant=QuantIdentity)``. With the same choices the derived model computes exactly what the
supernet computes (in eval mode).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from connas4ml_torch.kinds import DeriveContext, Searchable, searchable_kind
from connas4ml_torch.kinds.activation import make_quantizer

__all__ = ["DerivedNet", "derive_model"]


class DerivedNet(nn.Module):
    """A plain Brevitas network: ``net(input_quant(x))``; nothing of the search is left in it.

    ``choices`` records the architecture it was derived with (``{layer: {kind: value}}``), given
    at construction and never changed afterwards.
    """

    def __init__(self, input_quant: nn.Module, net: nn.Module,
                 choices: dict[str, dict[str, int]] | None = None):
        super().__init__()
        self.input_quant = input_quant
        self.net = net
        self.choices = {k: dict(v) for k, v in (choices or {}).items()}

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.input_quant(x))


def derive_model(supernet, choices: dict[str, dict[str, int]]) -> DerivedNet:
    """Brevitas model for ``choices`` (a complete ``{layer: {kind: value}}`` mapping)."""
    graph = supernet.graph
    # the new Brevitas layers are built on the CPU; the whole model goes where the supernet is
    device = next(supernet.parameters(), torch.zeros(())).device
    net = copy.deepcopy(supernet.net)
    was_training = supernet.training
    # choices over whole blocks first (a skipped block becomes nn.Identity, a kept one is
    # itself again); then the layers left in the network
    _replace(net, {qual: searchable_kind(mod).derive(mod, choices, DeriveContext())
                   for qual, mod in net.named_modules()
                   if isinstance(mod, Searchable) and searchable_kind(mod).role == "block"})
    replacements: dict[str, nn.Module] = {}
    for qual, mod in net.named_modules():
        if not isinstance(mod, Searchable):
            continue
        if any(qual.startswith(q + ".") for q in replacements):
            continue  # owned by the module around it (a weight layer's input quantizer)
        kind = searchable_kind(mod)
        ctx = DeriveContext()
        if kind.role == "weight":
            node = graph.layers.get(mod.name)
            if node is None:
                raise RuntimeError(f"derive(): {mod.name} was never called in forward()")
            in_width = choices[node.producer]["width"] if node.producer in choices else None
            ctx = DeriveContext(in_width, node.block)
        replacements[qual] = kind.derive(mod, choices, ctx)
    _replace(net, replacements)
    iq = supernet.input_quant
    model = DerivedNet(make_quantizer(iq.log2_threshold, choices[iq.name]["bits"], relu=False),
                       net, choices).to(device)
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(graph.input_shape, device=device))
    except RuntimeError as exc:
        raise ValueError(
            "derive(): the derived network does not run with the chosen widths. The model's "
            f"forward() probably hard-codes a size (e.g. x.view(-1, 64 * 4 * 4)); use "
            f"x.flatten(1) or nn.Flatten instead. ({exc})"
        ) from exc
    model.train(was_training)
    return model


def _replace(net: nn.Module, replacements: dict[str, nn.Module]) -> None:
    """Put each module of ``replacements`` (qualified name -> module) in place in ``net``."""
    for qual, new in replacements.items():
        parent_name, _, attr = qual.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        setattr(parent, attr, new)
