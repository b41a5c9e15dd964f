"""Architecture-gradient estimators of the search beyond plain backpropagation.

The relaxations (softmax, Gumbel) get their gradient through autograd in ``Search.arch_step``;
sampled choices (``"reinforce"``, and the widths and skippable blocks under ``"auto"``) get a
score-function estimate from two whole networks compared on the same validation batch
(:func:`reinforce_pair`). :func:`arch_gradients` sums, checks and averages the architecture
gradients; :func:`requires_grad_off` keeps a pass from differentiating what it need not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from connas4ml_torch.search.search import Search

__all__ = ["arch_gradients", "checked_loss", "reinforce_pair", "requires_grad_off"]


@contextlib.contextmanager
def requires_grad_off(params: list[nn.Parameter]) -> Iterator[None]:
    """Inside, ``params`` do not require a gradient (those that did are set back after): a
    pass that differentiates other parameters only then keeps nothing for them and its
    backward pass computes nothing for them; values and the other gradients are unchanged."""
    off = [p for p in params if p.requires_grad]
    for p in off:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in off:
            p.requires_grad_(True)


def arch_gradients(total: Tensor, params: list[nn.Parameter],
                   relaxed: list[Tensor | None], step: int) -> list[Tensor | None]:
    """``grad(total)`` plus the ``relaxed`` gradients (:func:`reinforce_pair`) per logit
    vector; refused when one is not finite; averaged over the processes under
    ``torch.distributed`` (one architecture for all replicas: each scored its own validation
    batch, and under ``"reinforce"`` its own sampled networks)."""
    grads = [g if r is None else r if g is None else g + r
             for g, r in zip(torch.autograd.grad(total, params, allow_unused=True), relaxed)]
    present = [g.reshape(-1) for g in grads if g is not None]
    if present and not bool(torch.isfinite(torch.cat(present)).all()):  # one host read
        raise FloatingPointError(f"arch_step: non-finite architecture gradient at step "
                                 f"{step}; the architecture was not updated")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        world = torch.distributed.get_world_size()
        for g in grads:
            if g is not None:
                torch.distributed.all_reduce(g)
                g.div_(world)
    return grads


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
    # relaxed: the second pass reads the first one's quantized weights (ArchControl.memo)
    ctl.memo = {} if relaxed else None
    try:
        for k in range(2):
            ctl.samples.clear()
            with torch.set_grad_enabled(relaxed and k == 0):
                loss = checked_loss(closure(), search.step)
            if relaxed and k == 0:
                relaxed_grads = list(torch.autograd.grad(loss, params, allow_unused=True))
            losses.append(loss.detach())
            # one entry per logit vector: tied layers made one draw
            drawn.append({id(a): (a, i) for a, i in ctl.samples.values()})
    finally:
        ctl.memo = None
    tau = search.supernet.temperature

    def log_prob(sample: dict[int, tuple[Tensor, Tensor]]) -> Tensor:
        return sum((torch.log_softmax(a / tau, dim=0)[i] for a, i in sample.values()),
                   losses[0].new_zeros(()))

    mean = 0.5 * (losses[0] + losses[1])
    # relative difference: the loss shrinks by orders of magnitude during training, and the
    # Adam state would otherwise keep the scale of the first steps for a thousand more
    adv = (losses[0] - losses[1]) / mean.abs().clamp_min(1e-12)
    return mean, 0.5 * adv * (log_prob(drawn[0]) - log_prob(drawn[1])), relaxed_grads
