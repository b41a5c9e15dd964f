"""The one search loop: weight steps on training batches, architecture steps on validation
batches, periodic atomic checkpoints and exact resumption.

:meth:`connas4ml_torch.Search.fit` runs this; the run pipeline, the CLI and the benchmarks call
it too, so there is one loop in the library. Users who write their own loop call
``search.arch_step`` and their optimizer directly and get the same arithmetic (as fast with the
weight step's forward and backward passes inside ``search.weight_pass()``).

A checkpoint holds the search state (supernet, architecture optimizer, multipliers, temperature,
steps, torch RNG), the weight optimizer, and the loaders' positions when they are
:class:`~connas4ml_torch.training.TensorBatches`; resuming from it reaches exactly the result of
an uninterrupted run with the same seed. It is written to a temporary file, fsynced and renamed
over the old one, so a kill at any moment leaves either the previous or the new checkpoint,
never a file that cannot be read.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from connas4ml_torch.training import TensorBatches

if TYPE_CHECKING:
    from connas4ml_torch.search.search import Search

__all__ = ["fit", "atomic_save", "locate_nonfinite", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "connas4ml-search-checkpoint-v1"


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


@torch.no_grad()
def locate_nonfinite(model: nn.Module, x: Tensor) -> str:
    """Name the first module whose output is NaN/inf on ``x`` (for the error message)."""
    found: list[str] = []
    handles = []
    for name, m in model.named_modules():
        if name and not list(m.children()):
            def hook(mod, args, out, name=name):
                o = out.value if hasattr(out, "value") else out
                if not found and isinstance(o, Tensor) and not torch.isfinite(o).all():
                    found.append(f"module {name!r} ({type(mod).__name__})")
            handles.append(m.register_forward_hook(hook))
    try:
        model(x)
    except Exception:  # a diagnosis must never hide the original error
        pass
    finally:
        for h in handles:
            h.remove()
    return found[0] if found else "the loss function (every module's output is finite)"


def _cycle(loader: Iterable) -> Iterator[Any]:
    while True:
        yield from loader


def _state(search: Search, optimizer: torch.optim.Optimizer, train: Iterable, val: Iterable,
           epoch: int, scheduler: Any = None) -> dict[str, Any]:
    return {"format": CHECKPOINT_FORMAT, "search": search.state_dict(),
            "optimizer": optimizer.state_dict(), "epoch": epoch,
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "train_loader": train.state_dict() if isinstance(train, TensorBatches) else None,
            "val_loader": val.state_dict() if isinstance(val, TensorBatches) else None}


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a search checkpoint (tensors and plain data only: ``weights_only=True``)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable search checkpoint ({exc})") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a connas4ml search checkpoint")
    return state


def _backward(sn: nn.Module, net: nn.Module, x: Any, y: Any, loss_fn: Callable, step: int,
              what: str = "the training loss") -> Tensor:
    """One weight-step loss, refused with the first module that went non-finite, then
    back-propagated (gradients accumulate: the optimizer steps after all of them)."""
    loss = loss_fn(net(x), y)
    if not torch.isfinite(loss):
        raise FloatingPointError(
            f"search step {step}: {what} is {float(loss.detach())}, first non-finite output at "
            f"{locate_nonfinite(sn, x)}; the architecture was not derived. Lower the learning "
            "rates or check the data.")
    loss.backward()
    return loss


def _widest_backward(sn: nn.Module, net: nn.Module, widest: dict, x: Any, y: Any,
                     loss_fn: Callable, step: int) -> None:
    """The sandwich rule's extra step: the ``widest`` network's gradient, accumulated into the
    weights before the sampled network's (under DDP without a gradient all-reduce: the sampled
    backward that follows reduces both, the documented accumulation pattern)."""
    sync_off = net.no_sync() if hasattr(net, "no_sync") else contextlib.nullcontext()
    with sync_off, sn.fixed(widest):
        _backward(sn, net, x, y, loss_fn, step,
                  "the widest network's training loss (sandwich rule)")


# validation batches the settle phase scores its candidate networks on
SETTLE_SCORE_BATCHES = 16


def _settled_step(search: Search, net: nn.Module, val_iter: Iterator[Any], loss_fn: Callable,
                  optimizer: torch.optim.Optimizer, x: Any, y: Any) -> Tensor:
    """One step of the settle phase: on its first, the selection of that moment (scored on the
    next validation batches) becomes ``search.settled``; every step trains that network alone
    (no architecture step, no sandwich: it is the network ``derive()`` will return)."""
    sn = search.supernet
    if search.settled is None:
        score = search.validation_score([next(val_iter) for _ in range(SETTLE_SCORE_BATCHES)], loss_fn)
        chosen = [dict(search.selection(score).index)]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # every replica scored its own validation batches: rank 0's network for all
            torch.distributed.broadcast_object_list(chosen, src=0)
        search.settled = chosen[0]
    search.step += 1
    optimizer.zero_grad()
    with sn.fixed(search.tables.choice_to_layers(search.settled)):
        loss = _backward(sn, net, x, y, loss_fn, search.step, "the settled network's training loss")
    optimizer.step()
    return loss


def _keep_settled_within_budget(search: Search) -> None:
    """The weight-aware tables move while the settled network trains (more non-zero weights,
    more signed digits). If it no longer meets a budget, repair it at this epoch's end, so that
    the remaining settle steps train the network ``derive()`` returns instead of cutting bit
    widths after training (the jet benchmark's 20% budget: 1-3 widths cut after settling,
    weights never trained at them; docs/design.md, "Settling")."""
    from connas4ml_torch.search.select import repair

    fixed, repairs = repair(search, dict(search.settled))
    if repairs:
        search.settled = fixed


def fit(search: Search, train_loader: Iterable, val_loader: Iterable, loss_fn: Callable,
        optimizer: torch.optim.Optimizer, epochs: int = 1, *, progress: bool = True,
        checkpoint: str | Path | None = None, checkpoint_every: int | None = None,
        resume: bool = False, on_step: Callable[[int], None] | None = None,
        model: nn.Module | None = None, scheduler: Any = None) -> Search:
    """Alternate architecture steps (validation batches, cycled) and weight steps (training
    batches) for ``epochs``; see :meth:`connas4ml_torch.Search.fit`. ``model`` runs the weight
    steps (a ``DistributedDataParallel`` wrapper of the supernet under torch.distributed);
    ``scheduler`` (a ``torch.optim.lr_scheduler`` of ``optimizer``) steps after every weight
    step and is checkpointed with it."""
    from tqdm.auto import tqdm

    sn = search.supernet
    net = model if model is not None else sn
    start_epoch = 0
    if resume:
        if checkpoint is None or not Path(checkpoint).is_file():
            raise FileNotFoundError(f"resume: no checkpoint at {checkpoint}")
        state = load_checkpoint(checkpoint)
        search.load_state_dict(state["search"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        start_epoch = int(state["epoch"])
        for loader, key in ((train_loader, "train_loader"), (val_loader, "val_loader")):
            if isinstance(loader, TensorBatches) and state.get(key) is not None:
                loader.load_state_dict(state[key])
    every = checkpoint_every if checkpoint_every else None
    if torch.distributed.is_available() and torch.distributed.is_initialized() \
            and torch.distributed.get_rank() != 0:
        checkpoint = None  # the replicas are identical: one process writes the checkpoint
    val_iter = _cycle(val_loader)
    widest = sn.widest_choices()  # fixed by the space: computed once, not on every step
    # the weight steps differentiate the weights only (arch_step sets the logits' gradients),
    # unless DDP expects a gradient for every parameter or the optimizer also steps the logits
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    weights_only = net is sn and not any(id(p) in held for p in sn.arch_parameters())
    settle = search.settings.settle_steps
    if settle and search.settle_at is None:  # a fresh run (a resumed one has it saved)
        if not hasattr(train_loader, "__len__"):
            raise ValueError("Search(settle_steps=...) needs a training loader with len() to know "
                             "where the last steps begin; give one, or settle_steps=0")
        steps = epochs * len(train_loader)
        if settle >= steps:
            raise ValueError(f"Search(settle_steps={settle}) leaves no step to search in: fit() runs "
                             f"{steps} steps ({epochs} epochs of {len(train_loader)} batches); "
                             "give fewer settle steps or more epochs")
        search.settle_at = search.step + steps - settle
    for epoch in range(start_epoch, epochs):
        total = len(train_loader) if hasattr(train_loader, "__len__") else None
        bar = tqdm(train_loader, total=total, desc=f"search epoch {epoch + 1}/{epochs}",
                   disable=not progress, leave=False)
        for x, y in bar:
            if settle and search.step >= search.settle_at:
                loss = _settled_step(search, net, val_iter, loss_fn, optimizer, x, y)
            else:
                xv, yv = next(val_iter)
                search.arch_step(lambda xv=xv, yv=yv: loss_fn(sn(xv), yv))
                optimizer.zero_grad()
                with search.weight_pass() if weights_only else contextlib.nullcontext():
                    if search.sandwich:
                        _widest_backward(sn, net, widest, x, y, loss_fn, search.step)
                    loss = _backward(sn, net, x, y, loss_fn, search.step)
                optimizer.step()
            if scheduler is not None:
                scheduler.step()
            if progress:
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}", **search.short_postfix())
            if checkpoint is not None and every and search.step % every == 0:
                atomic_save(_state(search, optimizer, train_loader, val_loader, epoch, scheduler),
                            checkpoint)
            if on_step is not None:
                on_step(search.step)
        if search.settings.weight_aware:  # the tables follow the trained weights
            search.refresh_costs()
        if search.settled is not None and epoch + 1 < epochs:  # a last-epoch move stays a
            _keep_settled_within_budget(search)                # repair the selection reports
        if checkpoint is not None:
            atomic_save(_state(search, optimizer, train_loader, val_loader, epoch + 1, scheduler),
                        checkpoint)
    return search
