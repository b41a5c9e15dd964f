"""Constrained differentiable search with the shipped cost model (issue 5)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import connas4ml_torch as cn
from connas4ml_torch.export.specs import layer_specs
from connas4ml_torch.search import InfeasibleBudgetError

HLS = cn.HLSConfig(backend="Vitis", part="xcvu13p-flga2577-2-e", io_type="io_parallel",
                   strategy="Latency", reuse_factor=1)


@pytest.fixture(scope="module")
def cost():
    return cn.ResourceModel.default()


def task(seed: int = 0, n: int = 2048):
    """Five Gaussian classes in 16 features, a little overlapping (a jet-like toy)."""
    g = torch.Generator().manual_seed(1234)
    centres = torch.randn(5, 16, generator=g) * 1.2
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 5, (n,), generator=g)
    x = centres[y] + torch.randn(n, 16, generator=g)
    return x, y


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                         nn.Linear(32, 5))


SPACE = dict(width={"0": [8, 16, 32, 64], "2": [8, 16, 32]}, weight_bits=[2, 3, 4, 6, 8],
             act_bits=[3, 4, 6, 8])


def one_step(search, sn, opt, x, y, step: int) -> None:
    """Architecture step on a validation batch, then a weight step on a training batch."""
    i = (step * 64) % 1024
    xb, yb, xv, yv = x[i:i + 64], y[i:i + 64], x[1024 + i:1088 + i], y[1024 + i:1088 + i]
    search.arch_step(lambda: F.cross_entropy(sn(xv), yv))
    opt.zero_grad()
    F.cross_entropy(sn(xb), yb).backward()
    opt.step()


def run_search(seed: int, constraints=None, weights=None, steps: int = 120, cost_model=None,
               checkpoint_at: int | None = None, **kw):
    torch.manual_seed(seed)
    x, y = task(seed)
    sn = cn.searchable(mlp(), cn.SearchSpace(**SPACE), example_input=x[:256])
    search = cn.Search(sn, cost_model, HLS, constraints=constraints, weights=weights,
                       arch_lr=0.05, dual_lr=0.2, warmup_steps=10, temperature=(1.0, 0.3),
                       anneal_steps=steps, **kw)
    opt = torch.optim.Adam(sn.weight_parameters(), 5e-3)
    saved = None
    for step in range(steps):
        if checkpoint_at is not None and step == checkpoint_at:
            saved = copy.deepcopy({"search": search.state_dict(), "opt": opt.state_dict()})
        one_step(search, sn, opt, x, y, step)
    return search, x, saved


def widest_lut(cost_model) -> float:
    x, _ = task()
    sn = cn.searchable(mlp(), cn.SearchSpace(**SPACE), example_input=x[:8])
    s = cn.Search(sn, cost_model, HLS)
    widest = {v: len(var.values) - 1 for v, var in enumerate(s.tables.variables)}
    return float(s.tables.cost_at(widest)[0]), s.minimum["LUT"]


def test_budget_met_in_five_of_five_seeds(cost):
    hi, lo = widest_lut(cost)
    budget = lo + 0.25 * (hi - lo)
    for seed in range(5):
        search, x, _ = run_search(seed, {"LUT": budget}, steps=40, cost_model=cost)
        sel = search.selection()
        model = search.derive(sel)
        assert sel.resources["LUT"] <= budget
        assert model.choices == sel.choices
        # independent check: the derived Brevitas model's own layer specs through the cost model
        specs = list(layer_specs(model, x[:4], HLS).values())
        total = cost.predict_network(specs)["LUT"]
        assert total <= budget * 1.001, (seed, total, budget)


def test_infeasible_budget_raises_before_training_with_minimum(cost):
    x, _ = task()
    sn = cn.searchable(mlp(), cn.SearchSpace(**SPACE), example_input=x[:8])
    before = copy.deepcopy(sn.state_dict())
    with pytest.raises(InfeasibleBudgetError, match=r"LUT: budget 10, minimum achievable [\d,]+") as e:
        cn.Search(sn, cost, HLS, constraints={"LUT": 10, "DSP": "50%"})
    assert "minimum achievable of each resource" in str(e.value)
    assert all(torch.equal(before[k], v) for k, v in sn.state_dict().items())


def test_percent_budget_uses_the_part(cost):
    from connas4ml_torch.hardware.resources import part_resources

    x, _ = task()
    sn = cn.searchable(mlp(), cn.SearchSpace(**SPACE), example_input=x[:8])
    s = cn.Search(sn, cost, HLS, constraints={"LUT": "5%"})
    assert s.budgets["LUT"] == pytest.approx(0.05 * part_resources(HLS.part)["LUT"])
    with pytest.raises(ValueError, match="'ten'"):
        cn.Search(sn, cost, HLS, constraints={"LUT": "ten"})
    with pytest.raises(ValueError, match="unknown resource 'LUTS'"):
        cn.Search(sn, cost, HLS, constraints={"LUTS": 5})


def test_looser_budget_gives_equal_or_larger_network(cost):
    hi, lo = widest_lut(cost)
    tight, _, _ = run_search(0, {"LUT": lo + 0.1 * (hi - lo)}, steps=80, cost_model=cost)
    loose, _, _ = run_search(0, {"LUT": lo + 0.6 * (hi - lo)}, steps=80, cost_model=cost)
    t, lo_sel = tight.selection(), loose.selection()
    assert lo_sel.resources["LUT"] >= t.resources["LUT"]
    assert t.resources["LUT"] <= lo + 0.1 * (hi - lo)


def test_resume_equals_uninterrupted_run(cost):
    hi, lo = widest_lut(cost)
    budget = {"LUT": lo + 0.3 * (hi - lo)}
    full, _, saved = run_search(3, budget, steps=50, cost_model=cost, checkpoint_at=25)
    # a fresh process would rebuild everything, then load the checkpoint and go on
    torch.manual_seed(99)  # the checkpoint restores the RNG: this must not matter
    x, y = task(3)
    sn = cn.searchable(mlp(), cn.SearchSpace(**SPACE), example_input=x[:256])
    resumed = cn.Search(sn, cost, HLS, constraints=budget, arch_lr=0.05, dual_lr=0.2,
                        warmup_steps=10, temperature=(1.0, 0.3), anneal_steps=50)
    opt = torch.optim.Adam(sn.weight_parameters(), 5e-3)
    resumed.load_state_dict(saved["search"])
    opt.load_state_dict(saved["opt"])
    for step in range(25, 50):
        one_step(resumed, sn, opt, x, y, step)
    assert resumed.supernet.choices() == full.supernet.choices()
    for (n, a), (_, b) in zip(full.supernet.state_dict().items(), sn.state_dict().items()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), n
    assert torch.equal(resumed.lambdas, full.lambdas)
    assert resumed.temperature == full.temperature and resumed.step == full.step


def test_nan_loss_stops_without_touching_the_architecture(cost):
    x, _ = task()
    sn = cn.searchable(mlp(), cn.SearchSpace(**SPACE), example_input=x[:8])
    s = cn.Search(sn, cost, HLS, constraints={"LUT": 1e9})
    before = [p.detach().clone() for p in sn.arch_parameters()]
    lam = s.lambdas.clone()
    with pytest.raises(FloatingPointError, match="validation loss is nan"):
        s.arch_step(lambda: sn(x[:4]).sum() * float("nan"))
    assert all(torch.equal(a, b) for a, b in zip(before, sn.arch_parameters()))
    assert torch.equal(lam, s.lambdas)


def test_repair_steps_down_until_within_budget_and_reports(cost):
    hi, lo = widest_lut(cost)
    budget = lo + 0.2 * (hi - lo)
    x, _ = task()
    sn = cn.searchable(mlp(), cn.SearchSpace(**SPACE), example_input=x[:8])
    s = cn.Search(sn, cost, HLS, constraints={"LUT": budget})
    with torch.no_grad():  # make the widest, most precise network the argmax
        for p in sn.arch_parameters():
            p.copy_(torch.linspace(0, 1, p.numel()))
    assert s.argmax_resources()["LUT"] > budget
    sel = s.selection()
    model = s.derive(sel)
    assert sel.repairs and sel.resources["LUT"] <= budget
    assert all(r.new < r.old for r in sel.repairs)
    assert isinstance(model, nn.Module)
    assert s.selection() == sel  # pure: asking twice gives the same network
    # a safety margin: the upper quantile must fit too
    sq = cn.Search(sn, cost, HLS, constraints={"LUT": budget}, margin_quantile=0.9)
    sq_sel = sq.selection()
    upper = sq.tables.cost_at(sq_sel.index, upper=True)
    assert float(upper[0]) <= budget
    assert sq_sel.resources["LUT"] <= sel.resources["LUT"]


def test_trade_off_weight_shrinks_the_network(cost):
    free, _, _ = run_search(1, None, {"LUT": 0.0}, steps=80, cost_model=cost)
    heavy, _, _ = run_search(1, None, {"LUT": 20.0}, steps=80, cost_model=cost)
    assert heavy.argmax_resources()["LUT"] < free.argmax_resources()["LUT"]


def test_expected_resources_are_differentiable_and_match_one_hot(cost):
    x, _ = task()
    sn = cn.searchable(mlp(), cn.SearchSpace(**SPACE), example_input=x[:8])
    s = cn.Search(sn, cost, HLS)
    e = s.expected_resources()["LUT"]
    e.backward()
    assert all(p.grad is not None for p in sn.arch_parameters() if p.numel() > 1)
    with torch.no_grad():  # very sharp probabilities: expected -> argmax
        for p in sn.arch_parameters():
            p.copy_(torch.nn.functional.one_hot(torch.tensor(1), p.numel()) * 60.0)
    assert float(s.expected_resources()["LUT"]) == pytest.approx(s.argmax_resources()["LUT"], rel=1e-4)
    assert "LUT" in s.summary() and "budget" in s.summary()


def random_architectures(sn, n: int):
    """Set the architecture logits to ``n`` random draws in turn (seeded), yielding after each."""
    g = torch.Generator().manual_seed(0)
    for _ in range(n):
        with torch.no_grad():
            for p in sn.arch_parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 3)
        yield


def test_argmax_cost_equals_the_cost_model_on_the_derived_network(cost):
    """Tables + network-level term == predict_network() of the derived model's own specs."""
    x, _ = task()
    sn = cn.searchable(mlp(), cn.SearchSpace(**SPACE), example_input=x[:8])
    s = cn.Search(sn, cost, HLS)
    for _ in random_architectures(sn, 4):
        a = s.argmax_resources()
        specs = list(layer_specs(sn.derive(), x[:4], HLS).values())
        net = cost.predict_network(specs)
        for r, target in (("LUT", "LUT"), ("FF", "FF"), ("DSP", "DSP"), ("latency", "latency_cycles")):
            assert a[r] == pytest.approx(net[target], rel=1e-4, abs=1e-3), r


def test_arch_every_updates_the_architecture_on_every_kth_step_only(cost):
    x, y = task()
    sn = cn.searchable(mlp(), cn.SearchSpace(**SPACE), example_input=x[:8])
    s = cn.Search(sn, cost, HLS, warmup_steps=2, arch_every=3)
    calls = []

    def closure():
        calls.append(s.step)
        return F.cross_entropy(sn(x[:64]), y[:64])

    for _ in range(11):
        s.arch_step(closure)
    # the default sampling scores two sampled networks per architecture step
    assert calls == [3, 3, 6, 6, 9, 9] and s.arch_steps == 3
    with pytest.raises(ValueError, match="arch_every"):
        cn.Search(sn, cost, HLS, arch_every=0)


@pytest.mark.parametrize("mode", ["reinforce", "auto"])
@pytest.mark.parametrize("target,expected", [(8.0, 8), (2.0, 2)])
def test_reinforce_moves_the_architecture_towards_the_better_network(cost, target, expected, mode):
    """Every channel of fc1 adds one to the output: the loss (out - target)^2 names the best
    width, and the score-function estimate alone (weights frozen) must find it."""
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    with torch.no_grad():
        net[0].weight.fill_(0.25)
        net[0].bias.zero_()
        net[2].weight.fill_(1.0)
        net[2].bias.zero_()
    x = torch.ones(16, 4)
    sn = cn.searchable(net, cn.SearchSpace(width={"0": [2, 4, 8]}, weight_bits=[8], act_bits=[8]),
                       example_input=x)
    sn.set_sampling(mode)
    search = cn.Search(sn, cost, HLS, arch_lr=0.1)
    torch.manual_seed(0)
    for _ in range(60):
        stats = search.arch_step(lambda: ((sn(x) - target) ** 2).mean())
    assert sn.choices()["0"]["width"] == expected
    assert float(sn.probabilities()["0"]["width"].max()) > 0.8
    assert stats["task_loss"] >= 0


def test_activations_and_tables_are_costed_like_the_derived_network(cost):
    """A sigmoid's lookup tables (BRAM) and the ReLUs are in the search's cost, and the search's
    cost of a network equals the cost model's prediction for the derived network's own specs."""
    x, _ = task()
    net = nn.Sequential(nn.Linear(16, 32), nn.Sigmoid(), nn.Linear(32, 16), nn.ReLU(),
                        nn.Linear(16, 5))
    sn = cn.searchable(net, cn.SearchSpace(weight_bits=[4, 8], act_bits=[6, 8]), example_input=x[:64])
    s = cn.Search(sn, cost, HLS)
    names = [lt.name for lt in s.tables.layers]
    assert "1" in names and "3" in names  # the sigmoid and the ReLU
    sel = s.selection()
    assert sel.breakdown["1"]["BRAM_18K"] > 0 or sel.breakdown["1"]["LUT"] > 0
    specs = layer_specs(sn.derive(sel.choices), x[:4], HLS)
    assert {"net.1.op", "net.3"} <= set(specs) and specs["net.1.op"].activation == "sigmoid"
    total = cost.predict_network(list(specs.values()))
    for r in ("LUT", "FF", "BRAM_18K", "DSP"):
        assert sel.resources[r] == pytest.approx(total[r], rel=1e-4, abs=1e-3), r


def _pool_net(dims: int) -> tuple[nn.Module, torch.Tensor]:
    """Conv - ReLU - MaxPool - Conv - ReLU - Flatten - Linear, 1-D or 2-D (io_parallel)."""
    conv, pool = (nn.Conv1d, nn.MaxPool1d) if dims == 1 else (nn.Conv2d, nn.MaxPool2d)
    size = 6 if dims == 2 else 14
    net = nn.Sequential(conv(2, 8, 3), nn.ReLU(), pool(2), conv(8, 4, 1), nn.ReLU(),
                        nn.Flatten(), nn.Linear(4 * (size // 2) ** dims, 3))
    return net, torch.randn(32, 2, *(size + 2,) * dims)


@pytest.mark.parametrize("dims", [2, 1])
def test_max_pooling_is_costed_like_the_derived_network(cost, dims):
    """The max pool has a table over the feeding ReLU's bits and the conv's width, rising with
    both; at each argmax its spec and the network total equal the derived model's own."""
    net, x = _pool_net(dims)
    space = cn.SearchSpace(width={"0": [4, 8]}, weight_bits=[4, 8], act_bits=[4, 6, 8])
    sn = cn.searchable(net, space, example_input=x)
    s = cn.Search(sn, cost, HLS)
    t = s.tables
    pool = next(lt for lt in t.layers if lt.name == "2")
    assert pool.variables == [t._var_of[("1", "bits")], t._var_of[("0", "width")]]
    lut = pool.table[..., t.resources.index("LUT")]
    assert bool((lut[1:, :] > lut[:-1, :]).all()) and bool((lut[:, 1] > lut[:, 0]).all())
    for _ in random_architectures(sn, 4):
        choice = t.argmax_choice()
        specs = layer_specs(sn.derive(), x[:4], HLS)
        mine = t.specs_at(choice)["2"]
        assert specs["net.2"] == mine and mine.layer_type == f"Pooling{dims}D"
        assert mine.input_bits == mine.result_bits == sn.choices()["1"]["bits"]
        assert mine.n_in == sn.choices()["0"]["width"] and mine.activation == "max"
        total = cost.predict_network(list(specs.values()))
        for r, target in (("LUT", "LUT"), ("FF", "FF"), ("latency", "latency_cycles")):
            assert float(t.cost_at(choice)[t.resources.index(r)]) == pytest.approx(
                total[target], rel=1e-4, abs=1e-3), r


def test_io_parallel_cnn_lut_includes_the_max_pool(cost):
    """Conv2d - ReLU - MaxPool2d: the selection's LUT is the derived network's with the pool,
    well above the same network priced without it."""
    net, x = _pool_net(2)
    sn = cn.searchable(net, cn.SearchSpace(weight_bits=[6], act_bits=[8]), example_input=x)
    sel = cn.Search(sn, cost, HLS).selection()
    specs = layer_specs(sn.derive(sel.choices), x[:4], HLS)
    with_pool = cost.predict_network(list(specs.values()))["LUT"]
    without = cost.predict_network([sp for n, sp in specs.items() if n != "net.2"])["LUT"]
    assert sel.breakdown["2"]["LUT"] > 0
    assert sel.resources["LUT"] == pytest.approx(with_pool, rel=1e-4)
    assert with_pool > without + 0.5 * sel.breakdown["2"]["LUT"]


def test_a_max_pool_takes_the_bits_of_the_quantizer_before_it(cost):
    """Input and result bits of a max pool are the ReLU's before it, not the next one's; a max
    pool no quantizer feeds (right after a conv) is not costed, in the search as in the export."""
    net, x = _pool_net(2)
    space = cn.SearchSpace(weight_bits=[6], act_bits={"1": [4], "*": [7]})
    sn = cn.searchable(net, space, example_input=x)
    s = cn.Search(sn, cost, HLS)
    assert s.tables.specs_at(s.tables.argmax_choice())["2"].input_bits == 4
    assert layer_specs(sn.derive(), x[:4], HLS)["net.2"].input_bits == 4
    early = nn.Sequential(nn.Conv2d(2, 8, 3), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 9, 3))
    sn = cn.searchable(early, cn.SearchSpace(weight_bits=[6], act_bits=[7]), example_input=x)
    s = cn.Search(sn, cost, HLS)
    assert "1" not in [lt.name for lt in s.tables.layers]
    assert "net.1" not in layer_specs(sn.derive(), x[:4], HLS)


def test_weight_aware_costs_follow_the_weights(cost):
    """Under the Latency strategy zero weights are free: zeroing half of a layer's weights and
    refreshing the tables lowers that layer's predicted LUTs."""
    x, _ = task()
    sn = cn.searchable(mlp(), cn.SearchSpace(weight_bits=[6], act_bits=[8]), example_input=x[:64])
    s = cn.Search(sn, cost, HLS)
    before = s.selection().breakdown["0"]["LUT"]
    with torch.no_grad():
        w = sn.net[0].weight
        w[:, ::2] = 0.0
    s.refresh_costs()
    after = s.selection().breakdown["0"]["LUT"]
    assert after < 0.8 * before, (before, after)
    blind = cn.Search(sn, cost, HLS, settings=cn.SearchSettings(weight_aware=False))
    assert blind.selection().breakdown["0"]["LUT"] > after


def test_weight_aware_tables_match_the_derived_conv_network(cost):
    """The tables' weight statistics (prefix sums over rows and columns, kernels cropped, a
    Dense fed by a flatten) equal those of the derived network's own weights, choice by choice."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv1d(2, 8, 5, padding=2), nn.ReLU(), nn.Conv1d(8, 6, 3, padding=1),
                        nn.ReLU(), nn.Flatten(), nn.Linear(6 * 8, 4))
    x = torch.randn(16, 2, 8)
    space = cn.SearchSpace(width={"0": [4, 8], "2": [3, 6]}, kernel={"0": [3, 5]},
                           weight_bits=[2, 4, 6], act_bits=[4, 8])
    sn = cn.searchable(net, space, example_input=x)
    s = cn.Search(sn, cost, HLS)
    for _ in random_architectures(sn, 5):
        specs = layer_specs(sn.derive(), x[:4], HLS)
        assert sum(sp.csd_digits is not None for sp in specs.values()) == 3  # weight-aware
        net_cost = cost.predict_network(list(specs.values()))
        assert s.argmax_resources()["LUT"] == pytest.approx(net_cost["LUT"], rel=1e-4)


def _selection_search(cost, lut_fraction: float):
    """An untrained supernet with a LUT budget between its smallest and widest network."""
    x, _ = task()
    sn = cn.searchable(mlp(), cn.SearchSpace(**SPACE), example_input=x[:64])
    widest, smallest = widest_lut(cost)
    budget = smallest + lut_fraction * (widest - smallest)
    return cn.Search(sn, cost, HLS, constraints={"LUT": budget}), budget


def test_selection_fills_the_budget_and_says_why_when_it_keeps_a_smaller_network(cost):
    s, budget = _selection_search(cost, 0.5)
    with torch.no_grad():  # the argmax: the smallest network of the space
        for p in s.supernet.arch_parameters():
            p.zero_()
            p[0] = 5.0
    argmax_lut = s.selection(fill_budget=False).resources["LUT"]
    grown = s.selection()  # no score: the network grown by the search's preference
    assert argmax_lut < 0.6 * budget
    assert 0.9 <= grown.budget_used <= 1.0 and grown.resources["LUT"] <= budget
    # a score that prefers the smallest network keeps the argmax and says so
    small = s.selection(lambda ch: float(sum(v for c in ch.values() for v in c.values())))
    assert small.resources["LUT"] == pytest.approx(argmax_lut)
    assert "not better on validation" in small.note and set(small.scores) >= {"argmax", "filled"}


def test_the_largest_uniform_network_that_fits_is_a_candidate(cost):
    s, budget = _selection_search(cost, 0.6)
    from connas4ml_torch.search.select import uniform

    even = uniform(s)
    rel = [even[v] / (len(var.values) - 1) for v, var in enumerate(s.tables.variables)
           if len(var.values) > 1]
    assert max(rel) - min(rel) < 0.34  # one relative place, floored per variable
    assert s.tables.cost_at(even)[0] <= budget
    layers = s.tables.choice_to_layers(even)
    chosen = s.selection(lambda ch: 0.0 if ch == layers else 1.0)  # validation prefers it
    assert chosen.choices == layers and chosen.candidate in chosen.scores
    assert chosen.scores[chosen.candidate] == 0.0 and "uniform" in chosen.scores


def test_a_broken_budget_is_also_repaired_evenly_and_validation_chooses(cost):
    """The argmax that breaks the budget is cut two ways: by cost saved per probability lost,
    and spread over the layers (the variable highest among its values first). Both, grown back
    to the budget, compete on validation; the winner's own repairs are reported."""
    from connas4ml_torch.search.select import fill, repair

    s, budget = _selection_search(cost, 0.3)
    with torch.no_grad():  # the widest, most precise network: far over the budget
        for p in s.supernet.arch_parameters():
            p.copy_(torch.linspace(0, 1, p.numel()))
    argmax = s.tables.argmax_choice()
    spread, steps = repair(s, argmax, evenly=True)
    assert steps and all(r.new < r.old for r in steps)
    assert float(s.tables.cost_at(spread)[0]) <= budget
    rel = [spread[v] / (len(var.values) - 1) for v, var in enumerate(s.tables.variables)
           if len(var.values) > 1]
    assert max(rel) - min(rel) <= 0.5  # spread: no layer cut far below the others
    grown = s.tables.choice_to_layers(fill(s, spread))
    seen = []
    chosen = s.selection(lambda ch: seen.append(ch) or (0.0 if ch == grown else 1.0))
    assert grown in seen  # it was scored on validation
    assert chosen.choices == grown and chosen.resources["LUT"] <= budget
    # (here it is also what the preferred cut grows back to, so it carries that name)
    assert chosen.candidate in chosen.scores and chosen.repairs
