"""The one search loop (``Search.fit``): checkpoints, exact resumption, non-finite losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from test_search import HLS, SPACE, mlp, task

import connas4ml_torch as cn
from connas4ml_torch.search.loop import load_checkpoint
from connas4ml_torch.training import TensorBatches


class Stop(Exception):
    """Raised from ``on_step`` at a chosen step: a synchronised interruption, not a timed one."""


def _search(cost, seed: int = 5):
    torch.manual_seed(seed)
    x, y = task(seed, n=1536)
    sn = cn.searchable(mlp(), cn.SearchSpace(**SPACE), example_input=x[:256])
    search = cn.Search(sn, cost, HLS, constraints={"LUT": 4e4}, arch_lr=0.05, dual_lr=0.2,
                       warmup_steps=4, temperature=(1.0, 0.3), anneal_steps=30)
    opt = torch.optim.Adam(sn.weight_parameters(), 5e-3)
    train = TensorBatches(x[:1024], y[:1024], 64, torch.Generator().manual_seed(seed))
    val = TensorBatches(x[1024:], y[1024:], 64, torch.Generator().manual_seed(seed + 1))
    return search, opt, train, val


def test_resume_after_interruption_is_bit_for_bit_the_uninterrupted_run(tmp_path):
    cost = cn.ResourceModel.default()
    full, opt, tr, va = _search(cost)
    full.fit(tr, va, F.cross_entropy, opt, epochs=3, progress=False)

    ckpt = tmp_path / "ckpt.pt"
    first, opt, tr, va = _search(cost)

    def stop_at_37(step: int) -> None:  # mid-epoch (16 steps an epoch), after a checkpoint at 35
        if step == 37:
            raise Stop

    with pytest.raises(Stop):
        first.fit(tr, va, F.cross_entropy, opt, epochs=3, progress=False, checkpoint=ckpt,
                  checkpoint_every=5, on_step=stop_at_37)
    state = load_checkpoint(ckpt)  # the interrupted run left a readable checkpoint
    assert state["search"]["step"] == 35 and state["epoch"] == 2

    torch.manual_seed(1234)  # a new process: its RNG state must not matter
    resumed, opt, tr, va = _search(cost)
    resumed.fit(tr, va, F.cross_entropy, opt, epochs=3, progress=False, checkpoint=ckpt,
                checkpoint_every=5, resume=True)
    assert resumed.step == full.step == 48
    assert resumed.supernet.choices() == full.supernet.choices()
    a, b = full.supernet.state_dict(), resumed.supernet.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert torch.equal(resumed.lambdas, full.lambdas)
    assert resumed.selection() == full.selection()


def test_checkpoint_is_replaced_atomically(tmp_path):
    cost = cn.ResourceModel.default()
    search, opt, tr, va = _search(cost)
    ckpt = tmp_path / "ckpt.pt"
    search.fit(tr, va, F.cross_entropy, opt, epochs=1, progress=False, checkpoint=ckpt,
               checkpoint_every=4)
    assert load_checkpoint(ckpt)["search"]["step"] == 16
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
    ckpt.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable search checkpoint"):
        load_checkpoint(ckpt)


def test_nonfinite_training_loss_names_the_module():
    cost = cn.ResourceModel.default()
    search, opt, tr, va = _search(cost)
    with torch.no_grad():
        search.supernet.net[2].weight[0, 0] = float("nan")
    before = [p.detach().clone() for p in search.supernet.arch_parameters()]
    with pytest.raises(FloatingPointError, match=r"step 1: .* first non-finite output at module "
                                                 r"'net\.2'"):
        search.fit(tr, va, F.cross_entropy, opt, epochs=1, progress=False)
    # warm-up steps do not move the architecture; nothing was derived
    assert all(torch.equal(p, q) for p, q in zip(before, search.supernet.arch_parameters()))
