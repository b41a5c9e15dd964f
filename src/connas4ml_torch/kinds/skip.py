"""Skip: a block of the model (``SearchSpace.skip``) the search keeps or replaces by the identity.

An operation choice over two candidates, ``(skip, keep)``, held as the values ``(0, 1)`` of the
choice ``"keep"``: a depth choice is several such blocks in a row. In the supernet the block is
wrapped in :class:`SkippableBlock`; the relaxation (``softmax``, ``gumbel``) mixes
``p_keep * block(x) + p_skip * x``, the sampled modes (``auto``, ``reinforce``, ``gumbel_hard``,
a fixed choice) run one path. ``derive`` gives the block itself (its layers derived as usual) or
``nn.Identity``; the hls4ml project of a skipped block has no layer at all, so nothing new is
exported. The costs of the layers inside a block are weighed by ``p_keep`` (search.cost).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from connas4ml_torch.errors import UnsupportedLayerError
from connas4ml_torch.kinds.base import ArchControl, LayerKind, Searchable, arch_param, register

__all__ = ["SkippableBlock", "Skip", "KEEP"]

KEEP = "keep"  # the choice kind: 0 = skip (identity), 1 = keep the block


class SkippableBlock(Searchable):
    """``block`` or the identity, chosen by the architecture logits ``alpha_keep``."""

    kind = "Skip"

    def __init__(self, name: str, ctl: ArchControl, block: nn.Module):
        super().__init__(name, ctl)
        self.block = block
        self.alpha_keep = arch_param(2)

    def choice_values(self) -> dict[str, tuple[int, ...]]:
        return {KEEP: (0, 1)}

    def inner_names(self) -> list[str]:
        """The user's names of the searchable modules inside the block (their costs are gated)."""
        return [m.name for m in self.block.modules() if isinstance(m, Searchable)]

    def forward(self, x: Tensor) -> Tensor:
        p, i = self.ctl.choose(self.alpha_keep, self.name, KEEP)
        if i is None:  # relaxation: both paths, weighed
            return p[1] * self.block(x) + p[0] * x
        if torch.compiler.is_compiling():  # no host read in a compiled graph: run both
            out = torch.where(i.bool(), self.block(x), x)
        elif bool(i):  # one path (one host read of the drawn index per block)
            out = self.block(x)
        else:
            out = x
            if torch.is_grad_enabled():  # a zero gradient still reaches the skipped weights,
                # as DistributedDataParallel expects of every parameter it holds
                out = out + 0.0 * sum(w.reshape(-1)[0] for w in self.block.parameters()
                                      if w.requires_grad)
        # "+ 0 * p": a zero gradient to the logits, as ArchControl.probs does
        return out if p is None or not p.requires_grad else out + 0.0 * p[0]


class Skip(LayerKind):
    """The registry side of :class:`SkippableBlock` (applied by name, never by module type)."""

    name = "Skip"
    role = "block"
    searchable_type = SkippableBlock

    def matches(self, module: nn.Module) -> bool:
        return isinstance(module, SkippableBlock)

    def to_searchable(self, name: str, module: nn.Module, space: Any, ctl: ArchControl
                      ) -> nn.Module | None:
        """Wrap ``module`` (its layers already searchable) in a :class:`SkippableBlock`."""
        return SkippableBlock(name, ctl, module)

    def check_block(self, name: str, module: nn.Module, is_layer: bool) -> None:
        """Refuse, before the model is changed, a block that is one layer (``is_layer``: a
        layer kind owns it): it would share its name with that layer, and skipping a layer
        alone leaves the next one reading an accumulator or nothing new."""
        if is_layer:
            raise UnsupportedLayerError(
                f"searchable(): skippable block {name!r} ({type(module).__name__}) is a single "
                "layer, not a block of layers. Fix: name in SearchSpace.skip a container (an "
                "nn.Sequential or a module of your own) of layers that ends on an activation")

    def check_traced(self, name: str, module: nn.Module, node: Any) -> None:
        """Refuse a block the identity cannot replace exactly (shapes, grids)."""
        if node.in_shape != node.out_shape:
            raise UnsupportedLayerError(
                f"searchable(): skippable block {name!r} maps shape {node.in_shape[1:]} to "
                f"{node.out_shape[1:]}; the identity cannot replace it. Fix: name a block whose "
                "output has its input's shape in SearchSpace.skip")
        for side, quant, off in (("input", node.in_quant, node.in_off_grid),
                                 ("output", node.out_quant, node.out_off_grid)):
            if quant is None or off:
                raise UnsupportedLayerError(
                    f"searchable(): the {side} of skippable block {name!r} is not on a "
                    f"quantizer's grid ({off or 'no quantizer'}); when the block is skipped the "
                    "next layer would read an unquantized tensor. Fix: start and end the block "
                    "on an activation (a ReLU / quantizer before it and as its last module)")

    def derive(self, module: nn.Module, choices: dict[str, dict[str, int]], ctx: Any
               ) -> nn.Module:
        """The block itself (its layers are derived next) or ``nn.Identity`` when skipped."""
        return module.block if choices[module.name][KEEP] else nn.Identity()


register(Skip())
