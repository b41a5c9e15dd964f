"""Architecture-gradient estimators of the search beyond plain backpropagation.

The relaxations (softmax, Gumbel) get their gradient through autograd in ``Search.arch_step``;
sampled choices (``"reinforce"``, and the widths and skippable blocks under ``"auto"``) get a
score-function estimate from two whole networks compared on the same validation batch
(:func:`reinforce_pair`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from connas4ml_torch.search.search import Search

__all__ = ["checked_loss", "reinforce_pair"]


def checked_loss(task: Any, step: int) -> Tensor:
    """The closure's loss, refused unless it is a finite scalar tensor."""
    if not isinstance(task, Tensor) or task.dim() != 0:
        raise TypeError("arch_step: the closure must return a scalar loss tensor")
    if not torch.isfinite(task):
        raise FloatingPointError(
            f"arch_step: the validation loss is {float(task)} at step {step}; the "
            "architecture was not updated. Lower the learning rates or check the data."
        )
    return task


def reinforce_pair(search: Search, closure: Callable[[], Tensor], params: list[nn.Parameter],
                   relaxed: bool = False) -> tuple[Tensor, Tensor, list[Tensor | None]]:
    """Score-function gradient from two networks sampled on the same validation batch.

    The relaxations (softmax, Gumbel) differentiate the loss through the channel masks, so
    a mask acts as a gain: on small data the gradient then rewards shrinking any channel
    (the validation loss likes smaller weights) and widths collapse whatever they are
    worth. Here two whole networks ``a, b ~ p`` are compared by their losses (leave-one-out
    REINFORCE, as TuNAS): ``(L_a - L_b) / 2 * grad(log p(a) - log p(b))``, unbiased for
    ``grad E_p[L]``; the shared batch cancels most of its own noise. The difference is taken
    relative to the pair's mean loss, so it weighs like the relative resource terms.
    ``relaxed`` (sampling ``"auto"``): only the widths and skippable blocks are sampled; the
    other choices stay relaxed and get the gradient of the first network's loss (one backward
    pass; taken before the second pass, which may move an activation range in place), returned
    apart.
    """
    ctl = search.supernet.control
    drawn, losses = [], []
    relaxed_grads: list[Tensor | None] = [None] * len(params)
    for k in range(2):
        ctl.samples.clear()
        with torch.set_grad_enabled(relaxed and k == 0):
            loss = checked_loss(closure(), search.step)
        if relaxed and k == 0:
            relaxed_grads = list(torch.autograd.grad(loss, params, allow_unused=True))
        losses.append(loss.detach())
        # one entry per logit vector: tied layers made one draw
        drawn.append({id(a): (a, i) for a, i in ctl.samples.values()})
    tau = search.supernet.temperature

    def log_prob(sample: dict[int, tuple[Tensor, Tensor]]) -> Tensor:
        return sum((torch.log_softmax(a / tau, dim=0)[i] for a, i in sample.values()),
                   losses[0].new_zeros(()))

    mean = 0.5 * (losses[0] + losses[1])
    # relative difference: the loss shrinks by orders of magnitude during training, and the
    # Adam state would otherwise keep the scale of the first steps for a thousand more
    adv = (losses[0] - losses[1]) / mean.abs().clamp_min(1e-12)
    return mean, 0.5 * adv * (log_prob(drawn[0]) - log_prob(drawn[1])), relaxed_grads
