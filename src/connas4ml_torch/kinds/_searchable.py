"""What every searchable layer shares: how a forward pass weighs the choices (:class:`ArchControl`),
the quantizer mixture of one layer (:func:`quant_mix`), and the :class:`Searchable` base class.

The registry (``base.py``) describes layer kinds; this module is the supernet side of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from connas4ml_torch.quant import fused_fake_quant, mixed_fake_quant

__all__ = ["ARCH_PREFIX", "SAMPLED_IN_AUTO", "ArchControl", "choice_argmax", "arch_param",
           "quant_mix", "mix_rows", "Searchable"]

ARCH_PREFIX = "alpha_"  # architecture parameters are the parameters whose name starts with this
# the choice kinds "auto" samples (one network per pass): widths, and whether a block is kept
SAMPLED_IN_AUTO = frozenset({"width", "keep"})


# ---------------------------------------------------------------------------------------------
# how a forward pass weighs the choices
# ---------------------------------------------------------------------------------------------
@dataclass
class ArchControl:
    """How choice probabilities are computed; shared by every layer of one supernet.

    ``mode``: ``"softmax"`` (``softmax(alpha / tau)``), ``"gumbel"`` (Gumbel-softmax sample with
    temperature ``tau``), ``"gumbel_hard"`` (a one-hot sample in the forward pass, the soft
    sample's gradient in the backward pass: every step trains one real architecture, and a
    channel mask can no longer act as a learned gain), ``"reinforce"`` (a one-hot sample of
    ``softmax(alpha / tau)`` with no gradient; ``samples`` keeps ``(logits, drawn index)`` so that
    ``Search`` can score whole sampled networks against each other), ``"auto"`` (``"reinforce"``
    for widths and skippable blocks, ``"softmax"`` for every other choice), or ``"argmax"`` (one-hot
    of the current argmax). ``fixed`` maps ``(layer, kind)`` to a forced choice index (used to
    evaluate one discrete network). ``memo`` (``None`` but inside the two passes of one
    architecture step under ``"auto"``): the quantized weights of the first pass by layer, which
    the second pass (no gradient; the same weights and relaxed choices, other sampled widths)
    reads instead of computing them again.
    """

    temperature: float = 1.0
    mode: str = "auto"
    fixed: dict[tuple[str, str], int] = field(default_factory=dict)
    samples: dict[tuple[str, str], tuple[Tensor, Tensor]] = field(default_factory=dict)
    memo: dict[str, tuple[Tensor, Tensor]] | None = None

    def probs(self, alpha: Tensor, layer: str, kind: str) -> Tensor:
        """The weights of the choices in this forward pass (one-hot where one choice runs)."""
        p, i = self.choose(alpha, layer, kind)
        if i is None:
            return p
        hot = F.one_hot(i, alpha.numel()).to(alpha.dtype)
        # "+ 0 * p": a zero gradient still reaches the logits, as DistributedDataParallel
        # expects of every parameter it holds (no find_unused_parameters needed)
        return hot if p is None else hot + 0.0 * p

    def choose(self, alpha: Tensor, layer: str, kind: str) -> tuple[Tensor | None, Tensor | None]:
        """``(p, i)``: what :meth:`probs` returns, in a form a layer can run cheaply.

        ``i is None``: the forward pass weighs the choices by ``p`` (softmax, Gumbel). Otherwise
        it runs choice ``i`` alone (a 0-dim index tensor on ``alpha``'s device, no host
        synchronisation) and ``p``, where not ``None``, must receive a zero gradient only: the
        same as running on ``one_hot(i) + 0 * p``.
        """
        key = (layer, kind)
        if key in self.fixed:
            return None, torch.tensor(self.fixed[key], device=alpha.device)
        if self.mode == "argmax":
            return None, choice_argmax(alpha)
        if self.mode == "reinforce" or (self.mode == "auto" and kind in SAMPLED_IN_AUTO):
            # layers tied to one choice (residual adds) share the logits and so the draw
            p = self._softmax(alpha)
            i = next((j for a, j in self.samples.values() if a is alpha), None)
            if i is None:  # the index stays a tensor: no device sync per layer
                i = _draw(p.detach())
            self.samples[key] = (alpha, i)
            return p, i
        if self.mode in ("gumbel", "gumbel_hard"):
            return F.gumbel_softmax(alpha, tau=self.temperature,
                                    hard=self.mode == "gumbel_hard"), None
        return self._softmax(alpha), None

    def _softmax(self, alpha: Tensor) -> Tensor:
        # alpha / 1.0 is alpha, bit for bit, and so are its gradients: skip the division
        return torch.softmax(alpha if self.temperature == 1.0 else alpha / self.temperature, 0)


def _draw(p: Tensor) -> Tensor:
    """One index drawn from the probabilities ``p`` (a 0-dim tensor): ``argmax(p / q)`` with
    ``q ~ Exp(1)``, the draw ``torch.multinomial(p, 1)`` makes (the same random numbers, so the
    same index) without its argument checks and their host reads (``p`` is a softmax here)."""
    if torch.compiler.is_compiling():
        return torch.multinomial(p, 1)[0]
    return (p / torch.empty_like(p).exponential_()).argmax()


def choice_argmax(alpha: Tensor) -> Tensor:
    """Index of the largest logit; ties go to the LAST choice (the widest / most precise).

    Logits start equal, so a plain argmax would pick the smallest network of the space for any
    choice the search has not moved yet; the largest is the accuracy-first default, and a budget
    then steps it down (dual ascent, repair).
    """
    a = alpha.detach()
    return a.numel() - 1 - torch.flip(a, (0,)).argmax()


def arch_param(n: int) -> nn.Parameter | None:
    """Logits of an ``n``-way choice (``None`` when there is nothing to choose)."""
    return nn.Parameter(torch.zeros(n)) if n > 1 else None


def quant_mix(x: Tensor, t: Tensor, alpha: nn.Parameter | None, ctl: ArchControl, layer: str,
              kind: str, bits: tuple[int, ...], signed: bool, narrow: bool = False) -> Tensor:
    """``sum_b p_b Q_b(x)`` (fused); a single choice is a plain quantizer (fused as well)."""
    if alpha is None:
        return fused_fake_quant(x, t, bits[0], signed, narrow)
    p, i = ctl.choose(alpha, layer, kind)
    return mixed_fake_quant(x, t, bits, p, signed, narrow, index=i)


class _Pick(torch.autograd.Function):
    """``table[i]``, and a zero gradient to ``p``: ``(one_hot(i) + 0 * p) @ table`` in one op."""

    @staticmethod
    def forward(ctx, table, i, p):
        ctx.p_meta = (p.shape, p.dtype, p.device)
        return table.index_select(0, i.reshape(1))[0]

    @staticmethod
    def backward(ctx, g):
        shape, dtype, device = ctx.p_meta
        return None, None, torch.zeros(shape, dtype=dtype, device=device)


def mix_rows(table: Tensor, p: Tensor | None, i: Tensor | None) -> Tensor:
    """``sum_k p_k table[k]`` for the choice weights ``(p, i)`` of :meth:`ArchControl.choose`
    (``table``: one row per choice, e.g. channel or kernel masks; no gradient of its own)."""
    if i is None:
        return torch.tensordot(p.to(table.dtype), table, dims=1)
    if torch.compiler.is_compiling():  # traceable: the row, and the zero gradient to p
        row = table.index_select(0, i.reshape(1))[0]
        return row if p is None else row + 0.0 * torch.tensordot(p, table, dims=1)
    if p is None or not p.requires_grad:
        return table.index_select(0, i.reshape(1))[0]
    return _Pick.apply(table, i, p)


class Searchable(nn.Module):
    """Base of every searchable module: the user's module name, its kind and the ArchControl."""

    kind: ClassVar[str] = ""  # the registry name of the layer kind this module belongs to

    def __init__(self, name: str, ctl: ArchControl):
        super().__init__()
        self.name = name
        self._ctl = [ctl]  # in a list so nn.Module does not register or deepcopy-split it

    @property
    def ctl(self) -> ArchControl:
        return self._ctl[0]

    def arch(self) -> dict[str, nn.Parameter]:
        """This layer's architecture parameters by choice kind."""
        return {n[len(ARCH_PREFIX):]: p for n, p in self.named_parameters(recurse=False)
                if n.startswith(ARCH_PREFIX)}

    def choice_values(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# layer kinds
# ---------------------------------------------------------------------------------------------
