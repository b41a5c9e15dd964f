"""Training plumbing shared by the search loop, the run pipeline and the benchmarks.

One weight step (:func:`weight_step`), one re-iterable batch loader over tensors
(:class:`TensorBatches`, reproducible and resumable mid-epoch), one plain training loop for the
baseline and the fine-tune (:func:`train`), and the metrics (:func:`evaluate`). The search loop
itself is :meth:`connas4ml_torch.Search.fit`, built on these.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["TensorBatches", "loss_fn", "weight_step", "train", "evaluate", "per_sample_scores",
           "n_weights", "check_finite_loss"]


class TensorBatches:
    """Shuffled mini-batches of ``(x, y)`` tensors; each iteration is one epoch in a new order.

    The order comes from ``generator`` (seeded by the caller), so runs are reproducible; full
    batches only; ``limit`` caps the batches per epoch. :meth:`state_dict` /
    :meth:`load_state_dict` capture the position inside an epoch, so an interrupted loop resumes
    with exactly the batches it would have seen. Under ``torch.distributed``, every process
    builds the same loader (same seed) with its ``rank`` and ``world_size``: each global batch of
    ``batch_size`` rows is split into equal parts, one per process.
    """

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, generator: torch.Generator,
                 limit: int | None = None, rank: int = 0, world_size: int = 1):
        if len(x) != len(y):
            raise ValueError(f"TensorBatches: x has {len(x)} rows but y has {len(y)}")
        if world_size < 1 or not 0 <= rank < world_size or batch_size % world_size:
            raise ValueError(f"TensorBatches: batch_size {batch_size} must split evenly over "
                             f"world_size {world_size} (rank {rank})")
        self.x, self.y, self.batch_size, self.gen, self.limit = x, y, int(batch_size), generator, limit
        self.rank, self.world_size = rank, world_size
        self._epoch_gen_state: Tensor | None = None  # generator state at the current epoch start
        self.position = 0                             # batches already served in this epoch
        self._resume: tuple[Tensor, int] | None = None

    def __len__(self) -> int:
        n = max(0, len(self.x) - self.batch_size + 1)
        n = len(range(0, n, self.batch_size))
        return min(n, self.limit) if self.limit is not None else n

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        if self._resume is not None:
            state, skip = self._resume
            self._resume = None
            self.gen.set_state(state)
        else:
            skip = 0
        self._epoch_gen_state = self.gen.get_state()
        perm = torch.randperm(len(self.x), generator=self.gen)
        self.position = skip
        for i in range(skip, len(self)):
            idx = perm[i * self.batch_size:(i + 1) * self.batch_size]
            if self.world_size > 1:  # this process's contiguous share of the global batch
                share = self.batch_size // self.world_size
                idx = idx[self.rank * share:(self.rank + 1) * share]
            self.position = i + 1
            yield self.x[idx], self.y[idx]

    def state_dict(self) -> dict[str, Any]:
        if self._epoch_gen_state is None or self.position >= len(self):  # between epochs
            return {"epoch_gen_state": None, "position": 0, "gen_state": self.gen.get_state()}
        return {"epoch_gen_state": self._epoch_gen_state, "position": self.position,
                "gen_state": self.gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the next iteration replays the interrupted epoch from its next batch."""
        if state.get("epoch_gen_state") is not None:
            self._resume = (state["epoch_gen_state"], int(state["position"]))
        else:
            self.gen.set_state(state["gen_state"])


def loss_fn(task: str) -> Callable[[Tensor, Tensor], Tensor]:
    """Cross entropy (``"classification"``) or mean squared error (``"regression"``)."""
    if task == "classification":
        return F.cross_entropy
    return lambda out, y: F.mse_loss(out.reshape(y.shape), y)


def check_finite_loss(loss: Tensor, where: str) -> None:
    """Stop with the step and what to do when a loss is NaN or infinite (never a silently
    wrong architecture or network)."""
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{where}: training loss is {float(loss.detach())}; lower the "
                                 "learning rate or check the data")


def weight_step(model: nn.Module, opt: torch.optim.Optimizer, lf: Callable, x: Tensor, y: Tensor,
                where: str) -> float:
    """One optimizer step on a training batch; a non-finite loss stops with a clear error."""
    opt.zero_grad()
    loss = lf(model(x), y)
    check_finite_loss(loss, where)
    loss.backward()
    opt.step()
    return float(loss.detach())


def train(model: nn.Module, batches: TensorBatches, lf: Callable, epochs: int, lr: float,
          desc: str = "train", progress: bool = True, params=None) -> nn.Module:
    """Plain training loop (Adam, cosine schedule): the baseline QAT and the short fine-tune."""
    from tqdm.auto import tqdm

    opt = torch.optim.Adam(params if params is not None else model.parameters(), lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, epochs))
    model.train()
    for ep in range(epochs):
        for xb, yb in tqdm(batches, total=len(batches), desc=f"{desc} {ep + 1}/{epochs}",
                           disable=not progress, leave=False):
            weight_step(model, opt, lf, xb, yb, f"{desc} epoch {ep + 1}")
        sched.step()
    return model


@torch.no_grad()
def per_sample_scores(model: nn.Module, x: Tensor, y: Tensor, task: str,
                      batch: int = 4096) -> Tensor:
    """Per sample: 1.0/0.0 correct (classification) or |pred - y| / |y| (regression)."""
    was = model.training
    model.eval()
    outs = torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
    model.train(was)
    if task == "classification":
        return (outs.argmax(1) == y).float()
    return (outs.reshape(y.shape) - y).abs() / y.abs().clamp_min(1e-6)


def evaluate(model: nn.Module, x: Tensor, y: Tensor, task: str, batch: int = 4096) -> float:
    """Accuracy (classification) or mean absolute relative error (regression)."""
    v = float(per_sample_scores(model, x, y, task, batch).mean())
    return v if math.isfinite(v) else float("nan")


def n_weights(model: nn.Module) -> int:
    """Weights and biases (quantizer thresholds excluded), as a parameter count is usually meant."""
    return sum(p.numel() for n, p in model.named_parameters() if n.endswith(("weight", "bias")))
