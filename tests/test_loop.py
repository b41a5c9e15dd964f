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


def _search(cost, seed: int = 5, settle_steps: int = 0, weight_aware: bool = True):
    from connas4ml_torch.search.settings import SearchSettings

    torch.manual_seed(seed)
    x, y = task(seed, n=1536)
    sn = cn.searchable(mlp(), cn.SearchSpace(**SPACE), example_input=x[:256])
    settings = SearchSettings(arch_lr=0.05, dual_lr=0.2, warmup_steps=4, temperature=(1.0, 0.3),
                              anneal_steps=30, settle_steps=settle_steps, weight_aware=weight_aware)
    search = cn.Search(sn, cost, HLS, constraints={"LUT": 4e4}, settings=settings)
    opt = torch.optim.Adam(sn.weight_parameters(), 5e-3)
    train = TensorBatches(x[:1024], y[:1024], 64, torch.Generator().manual_seed(seed))
    val = TensorBatches(x[1024:], y[1024:], 64, torch.Generator().manual_seed(seed + 1))
    return search, opt, train, val


def test_a_settled_network_pushed_past_its_budget_is_repaired_before_it_trains_on():
    """The weight-aware tables can move while the settled network trains; at an epoch's end a
    settled network past a budget is repaired, and the settle steps left train the repaired
    one, so that the selection returns it trained and unrepaired. (The tables' move is played
    by lowering the budget just below the settled network's cost.)"""
    cost = cn.ResourceModel.default()
    search, opt, tr, va = _search(cost, settle_steps=32)  # settles over epochs 2 and 3
    sn = search.supernet
    seen = {}

    def at_step(step: int) -> None:
        if step == 17:  # the settle phase's first step chose the network
            seen["first"] = dict(search.settled)
            lut = float(search.tables.cost_at(search.settled)[search.resources.index("LUT")])
            search.budgets["LUT"] = 0.97 * lut
        if step == 33:  # the first step after epoch 2's end
            seen["weights"] = [p.detach().clone() for p in sn.weight_parameters()]

    search.fit(tr, va, F.cross_entropy, opt, epochs=3, progress=False, on_step=at_step)
    assert search.settled != seen["first"]
    sel = search.selection()
    assert sel.candidate == "settled" and not sel.repairs
    assert sel.resources["LUT"] <= search.budgets["LUT"]
    assert any(not torch.equal(w, p) for w, p in zip(seen["weights"], sn.weight_parameters()))
    # a move in the last epoch leaves no steps to train: the selection makes and reports it
    search2, opt2, tr2, va2 = _search(cost, settle_steps=32)

    def late(step: int) -> None:
        if step == 40:
            lut = float(search2.tables.cost_at(search2.settled)[search2.resources.index("LUT")])
            search2.budgets["LUT"] = 0.97 * lut

    search2.fit(tr2, va2, F.cross_entropy, opt2, epochs=3, progress=False, on_step=late)
    assert search2.selection().repairs


@pytest.mark.parametrize("settle", [0, 16], ids=["search", "interrupted while settling"])
def test_resume_after_interruption_is_bit_for_bit_the_uninterrupted_run(tmp_path, settle):
    cost = cn.ResourceModel.default()
    full, opt, tr, va = _search(cost, settle_steps=settle)
    full.fit(tr, va, F.cross_entropy, opt, epochs=3, progress=False)

    ckpt = tmp_path / "ckpt.pt"
    first, opt, tr, va = _search(cost, settle_steps=settle)

    def stop_at_37(step: int) -> None:  # mid-epoch (16 steps an epoch), after a checkpoint at 35
        if step == 37:
            raise Stop

    with pytest.raises(Stop):
        first.fit(tr, va, F.cross_entropy, opt, epochs=3, progress=False, checkpoint=ckpt,
                  checkpoint_every=5, on_step=stop_at_37)
    state = load_checkpoint(ckpt)  # the interrupted run left a readable checkpoint
    assert state["search"]["step"] == 35 and state["epoch"] == 2

    torch.manual_seed(1234)  # a new process: its RNG state must not matter
    resumed, opt, tr, va = _search(cost, settle_steps=settle)
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
    assert (resumed.settled is not None) == bool(settle) and resumed.settled == full.settled


def test_settle_phase_trains_the_selected_network_with_the_architecture_frozen():
    """settle_steps: the last steps of fit() train the network the selection picks at their
    start, alone; the architecture does not move; selection()/derive() return that network,
    whose outputs are the supernet's fixed at it. (The cost tables are held fixed: with one
    settle epoch there is no epoch end at which a network the weight-aware tables pushed past
    its budget is repaired; that path is the test above.)"""
    cost = cn.ResourceModel.default()
    search, opt, tr, va = _search(cost, settle_steps=16, weight_aware=False)
    sn = search.supernet
    seen = {}

    def at_step(step: int) -> None:
        if step == 32:  # the last step before the settle phase (3 epochs of 16 batches)
            seen["arch"] = [p.detach().clone() for p in sn.arch_parameters()]
            seen["weights"] = [p.detach().clone() for p in sn.weight_parameters()]

    search.fit(tr, va, F.cross_entropy, opt, epochs=3, progress=False, on_step=at_step)
    assert search.step == 48 and search.settle_at == 32 and search.settled is not None
    assert all(torch.equal(a, p) for a, p in zip(seen["arch"], sn.arch_parameters()))
    assert any(not torch.equal(w, p) for w, p in zip(seen["weights"], sn.weight_parameters()))
    sel = search.selection()
    assert sel.candidate == "settled" and "settle phase" in sel.note and not sel.repairs
    assert sel.choices == search.tables.choice_to_layers(search.settled)
    assert all(sel.resources[r] <= b for r, b in search.budgets.items())
    x, _ = task(9, n=64)
    derived = search.derive(sel).eval()
    sn.eval()
    with torch.no_grad(), sn.fixed(sel.choices):
        assert torch.allclose(derived(x), sn(x), atol=1e-5)
    with pytest.raises(ValueError, match="settle_steps=48.*48 steps"):
        s2, opt2, tr2, va2 = _search(cost, settle_steps=48)
        s2.fit(tr2, va2, F.cross_entropy, opt2, epochs=3, progress=False)


def test_a_scheduler_steps_with_every_weight_step_and_resumes_exactly(tmp_path):
    """fit(scheduler=...): a learning-rate schedule over the search's steps (the QAT baseline's
    cosine, say) steps after every weight step, settle steps included, and an interrupted run
    resumes it from the checkpoint to the uninterrupted run's weights, bit for bit."""
    cost = cn.ResourceModel.default()
    ckpt = tmp_path / "ckpt.pt"

    def run(stop=None, resume=False):
        search, opt, tr, va = _search(cost, settle_steps=16)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=48)
        search.fit(tr, va, F.cross_entropy, opt, epochs=3, progress=False, scheduler=sched,
                   checkpoint=ckpt, checkpoint_every=5, on_step=stop, resume=resume)
        return search, opt, sched

    full, opt, sched = run()
    assert sched.last_epoch == 48 and opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)

    def stop_at_37(step: int) -> None:
        if step == 37:
            raise Stop

    with pytest.raises(Stop):
        run(stop_at_37)
    assert load_checkpoint(ckpt)["scheduler"]["last_epoch"] == 35
    resumed, opt2, sched2 = run(resume=True)
    assert sched2.last_epoch == 48
    for a, b in zip(full.supernet.weight_parameters(), resumed.supernet.weight_parameters()):
        assert torch.equal(a, b)


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


DDP_SEARCH = """
import datetime, os, sys
import torch, torch.distributed as dist, torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
sys.path.insert(0, sys.argv[3])
from test_loop import run_search

def worker(rank, world, port, out):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=60))
    torch.set_num_threads(1)
    search = run_search(rank, world, ddp=True)
    if rank == 0:
        torch.save({"choices": search.supernet.choices(),
                    "state": search.supernet.state_dict()}, out)
    dist.barrier()
    os._exit(0)  # gloo's C++ teardown intermittently aborts in torch 2.13 after the work is done

if __name__ == "__main__":
    import torch.multiprocessing as mp
    mp.spawn(worker, args=(2, int(sys.argv[1]), sys.argv[2]), nprocs=2, join=True)
"""


def test_sandwich_rule_trains_the_widest_network_the_sampling_leaves_out():
    """With the architecture pinned to the narrowest widths, the weights only the widest
    network uses learn under ``sandwich=True`` and stay put without it."""
    cost = cn.ResourceModel.default()
    moved = {}
    for sandwich in (False, True):
        torch.manual_seed(3)
        x, y = task(3, n=1536)
        sn = cn.searchable(mlp(), cn.SearchSpace(**SPACE), example_input=x[:256])
        sn.set_sampling("reinforce")
        with torch.no_grad():  # every sampled network is the narrowest one
            for m in sn.searchable_modules().values():
                if getattr(m, "alpha_width", None) is not None:
                    m.alpha_width.copy_(torch.tensor([60.0] + [0.0] * (len(m.alpha_width) - 1)))
        search = cn.Search(sn, cost, HLS, constraints={"LUT": 4e4}, arch_lr=0.0,
                           warmup_steps=100, sandwich=sandwich)
        w0 = sn.net[0].weight.detach().clone()
        opt = torch.optim.Adam(sn.weight_parameters(), 5e-3)
        train = TensorBatches(x[:512], y[:512], 64, torch.Generator().manual_seed(3))
        val = TensorBatches(x[1024:], y[1024:], 64, torch.Generator().manual_seed(4))
        search.fit(train, val, F.cross_entropy, opt, epochs=1, progress=False)
        delta = (sn.net[0].weight.detach() - w0).abs().sum(dim=1)
        moved[sandwich] = (float(delta[:8].sum()), float(delta[8:].sum()))
        assert sn.widest_choices()["0"]["width"] == 64
    assert moved[False][0] > 0 and moved[False][1] == 0  # only the 8 sampled rows learned
    assert moved[True][0] > 0 and moved[True][1] > 0     # the widest network's rows too


def test_sandwich_by_default_only_where_the_weight_step_samples():
    """``sandwich=None``: on for sampled widths (auto, reinforce), off for the relaxation and
    for a bits-only space under auto (relaxed: every path trains anyway); explicit wins."""
    cost = cn.ResourceModel.default()
    x, _ = task(2, n=256)
    bits_only = {k: v for k, v in SPACE.items() if k != "width"}
    expected = {("auto", True): True, ("reinforce", True): True, ("softmax", True): False,
                ("auto", False): False}
    for (mode, widths), on in expected.items():
        sn = cn.searchable(mlp(), cn.SearchSpace(**(SPACE if widths else bits_only)),
                           example_input=x)
        sn.set_sampling(mode)
        assert cn.Search(sn, cost, HLS, constraints={"LUT": 4e4}).sandwich is on, (mode, widths)
        assert cn.Search(sn, cost, HLS, constraints={"LUT": 4e4}, sandwich=not on).sandwich \
            is (not on)


def run_search(rank: int = 0, world: int = 1, ddp: bool = False):
    """A relaxed (softmax) search with a global batch of 64, split over ``world`` processes,
    with the sandwich rule (its extra backward accumulates without an all-reduce).

    In float64: a sum over two half batches differs from one over the whole batch in the last
    bits, and in float32 such differences flip a fixed-point rounding now and then, which Adam
    turns into visible differences of near-tied logits after a few dozen steps."""
    torch.manual_seed(11)
    x, y = task(11, n=1536)
    x = x.double()
    sn = cn.searchable(mlp().double(), cn.SearchSpace(**SPACE), example_input=x[:256]).double()
    sn.set_sampling("softmax")  # deterministic: no per-process draws
    search = cn.Search(sn, cn.ResourceModel.default(), HLS, constraints={"LUT": 4e4},
                       arch_lr=0.05, dual_lr=0.2, warmup_steps=4, temperature=(1.0, 0.3),
                       anneal_steps=30, sandwich=True)
    model = torch.nn.parallel.DistributedDataParallel(sn) if ddp else None
    opt = torch.optim.Adam(sn.weight_parameters(), 5e-3)
    train = TensorBatches(x[:1024], y[:1024], 64, torch.Generator().manual_seed(1), None,
                          rank, world)
    val = TensorBatches(x[1024:], y[1024:], 64, torch.Generator().manual_seed(2), None,
                        rank, world)
    search.fit(train, val, F.cross_entropy, opt, epochs=2, progress=False, model=model)
    return search


def test_two_processes_find_the_architecture_of_one_with_the_same_global_batch(tmp_path):
    import socket
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "ddp_search.py"
    script.write_text(DDP_SEARCH)
    out = tmp_path / "ddp.pt"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run([sys.executable, str(script), str(port), str(out),
                           str(Path(__file__).parent)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = torch.load(out)
    torch.set_num_threads(1)
    single = run_search()
    assert ddp["choices"] == single.supernet.choices()
    for k, v in single.supernet.state_dict().items():
        assert torch.allclose(ddp["state"][k].float(), v.float(), rtol=1e-4, atol=1e-5), k
