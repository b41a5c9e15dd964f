"""The supernet's fast paths against the composed reference arithmetic (issue 15, "Speed").

The fused quantizer, the one-choice path, the folded width masks and the sync-free activation
state must give what the composed ``fake_quant`` path gives: the same values (exactly, where one
choice runs) and the same gradients. Gradient checks run in float64, where the fused and the
composed arithmetic agree to rounding; float32 checks bound the fused path's own rounding.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import connas4ml_torch as cn
from connas4ml_torch.kinds.activation import SearchableAct
from connas4ml_torch.kinds.base import mix_rows
from connas4ml_torch.quant import fake_quant, fused_fake_quant, mixed_fake_quant


def _composed(x, t, bits, p, signed, narrow):
    return sum(p[k] * fake_quant(x, t, b, signed, narrow) for k, b in enumerate(bits))


def _grads(fn, x0, t0, a0, g, dtype):
    """Output and gradients of x, the threshold and the choice weights p (a leaf here: the
    softmax backward would cancel digits of its own)."""
    x = x0.to(dtype).clone().requires_grad_()
    t = t0.to(dtype).clone().requires_grad_()
    p = torch.softmax(a0.to(dtype), 0).requires_grad_()
    y = fn(x, t, p)
    (y * g.to(dtype)).sum().backward()
    return [y.detach(), x.grad, t.grad, p.grad]


def _rel(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30))


CASES = [(n, signed, narrow) for n in (3000, 70_000)  # stacked and one-choice-at-a-time paths
         for signed, narrow in ((True, True), (True, False), (False, False))]


@pytest.mark.parametrize("n,signed,narrow", CASES)
def test_fused_gradients_equal_composed_in_float64(n, signed, narrow):
    """Same formulas: agreement to float64 rounding, for x, the threshold and the choices."""
    torch.manual_seed(n)
    bits = (2, 3, 5, 8)
    x0 = torch.randn(n) * 3
    if not signed:
        x0 = x0.relu()
    t0, a0, g = torch.tensor(0.4), torch.randn(4), torch.randn(n)
    ref = _grads(lambda x, t, p: _composed(x, t, bits, p, signed, narrow), x0, t0, a0, g,
                 torch.float64)
    new = _grads(lambda x, t, p: mixed_fake_quant(x, t, bits, p, signed, narrow), x0, t0, a0, g,
                 torch.float64)
    for a, b in zip(new, ref):
        assert _rel(a, b) < 1e-10


@pytest.mark.parametrize("n,signed,narrow", CASES)
def test_fused_float32_within_rounding_of_exact(n, signed, narrow):
    """float32 fused path against the exact (float64) values: rounding only. The threshold
    gradient is summed from exact per-element residuals, so it does not cancel."""
    torch.manual_seed(n + 1)
    bits = (4, 6, 8)
    x0 = torch.randn(n) * 2
    if not signed:
        x0 = x0.relu()
    t0, a0, g = torch.tensor(0.7), torch.randn(3), torch.randn(n)
    ref = _grads(lambda x, t, p: _composed(x, t, bits, p, signed, narrow), x0, t0, a0, g,
                 torch.float64)
    new = _grads(lambda x, t, p: mixed_fake_quant(x, t, bits, p, signed, narrow), x0, t0, a0, g,
                 torch.float32)
    # out, x, t, p: the sums accumulate in float64 (the quantizer before issue 15 summed in
    # float32, up to 5e-6 off for t and 2e-4 for p)
    tol = [1e-6, 1e-6, 1e-6, 1e-6]
    for a, b, tl in zip(new, ref, tol):
        assert _rel(a, b) < tl


@pytest.mark.parametrize("n", [500, 70_000])
@pytest.mark.parametrize("signed,narrow", [(True, True), (False, False)])
def test_one_choice_index_equals_one_hot(n, signed, narrow):
    """``index``: that choice alone, exactly; x and t get the one-hot gradients, the choice
    weights a zero gradient (what ``one_hot + 0 * p`` gives them)."""
    torch.manual_seed(0)
    bits = (2, 4, 8)
    x0 = torch.randn(n) * 2
    g = torch.randn(n)
    for k in range(3):
        outs = []
        for fast in (False, True):
            x = x0.clone().requires_grad_()
            t = torch.tensor(0.3, requires_grad=True)
            a = torch.randn(3, requires_grad=True)
            p = torch.softmax(a, 0)
            if fast:
                y = mixed_fake_quant(x, t, bits, p, signed, narrow, index=torch.tensor(k))
            else:
                y = mixed_fake_quant(x, t, bits, F.one_hot(torch.tensor(k), 3).float() + 0.0 * p,
                                     signed, narrow)
            (y * g).sum().backward()
            outs.append((y.detach(), x.grad, t.grad, a.grad))
        (y0, gx0, gt0, ga0), (y1, gx1, gt1, ga1) = outs
        assert torch.equal(y1, fake_quant(x0, torch.tensor(0.3), bits[k], signed, narrow))
        assert torch.equal(y0, y1) and torch.equal(gx0, gx1)
        assert torch.allclose(gt0, gt1, rtol=1e-5) and not ga1.any() and not ga0.any()


@pytest.mark.parametrize("n", [64, 70_000])
def test_fused_single_width_equals_fake_quant(n):
    torch.manual_seed(1)
    x0 = torch.randn(n) * 5
    g = torch.randn(n)
    res = []
    for fn in (fake_quant, fused_fake_quant):
        x = x0.double().requires_grad_()
        t = torch.tensor(-0.6, dtype=torch.float64, requires_grad=True)
        y = fn(x, t, 6, True, False)
        (y * g.double()).sum().backward()
        res.append((y.detach(), x.grad, t.grad))
    assert torch.equal(res[0][0], res[1][0]) and torch.equal(res[0][1], res[1][1])
    assert torch.allclose(res[0][2], res[1][2], rtol=1e-12)
    assert torch.equal(fused_fake_quant(x0, torch.tensor(-0.6), 6, True),
                       fake_quant(x0, torch.tensor(-0.6), 6, True))


def test_mix_rows_matches_the_probability_product():
    table = torch.rand(4, 7)
    a = torch.randn(4, requires_grad=True)
    p = torch.softmax(a, 0)
    assert torch.allclose(mix_rows(table, p, None), p @ table)
    i = torch.tensor(2)
    row = mix_rows(table, p, i)
    assert torch.equal(row, table[2])
    row.sum().backward()
    assert a.grad is not None and not a.grad.any()  # a zero gradient, as DDP expects


# ---- the whole supernet against a composed reference of the same network ---------------------
def _mlp():
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 24), nn.ReLU(),
                         nn.Linear(24, 5))


def _space():
    return cn.SearchSpace(width={"0": [8, 16, 32], "2": [12, 24]}, weight_bits=[2, 4, 8],
                          act_bits=[3, 5, 8])


def _reference_forward(sn, x):
    """The supernet's arithmetic written with composed ``fake_quant`` ops and output masks
    (the implementation before issue 15), reading the same choice weights."""
    ctl = sn.control

    def mix(mod, t, alpha, kind, bits, v, signed, narrow=False):
        if alpha is None:
            return fake_quant(v, t, bits[0], signed, narrow)
        return _composed(v, t, bits, ctl.probs(alpha, mod.name, kind), signed, narrow)

    iq = sn.input_quant
    h = mix(iq, iq.log2_threshold, iq.alpha_bits, "bits", iq.bits, x, True)
    for mod in sn.net:
        if isinstance(mod, SearchableAct):
            h = mix(mod, mod.log2_threshold, mod.alpha_bits, "bits", mod.bits, torch.relu(h),
                    False)
            continue
        w = mix(mod, mod.weight_log2_threshold, mod.alpha_weight_bits, "weight_bits",
                mod.weight_bits, mod.weight, True, True)
        b = fake_quant(mod.bias, mod.bias_log2_threshold, mod.bias_bits, True)
        h = F.linear(h, w, b)
        if mod.alpha_width is not None:
            h = h * (ctl.probs(mod.alpha_width, mod.name, "width") @ mod.width_masks)
    return h


@pytest.mark.parametrize("mode", ["softmax", "auto", "argmax", "reinforce", "gumbel_hard"])
def test_supernet_values_and_gradients_equal_composed_reference(mode):
    torch.manual_seed(0)
    x = torch.randn(64, 16) * 2
    sn = cn.searchable(_mlp(), _space(), example_input=x).double()
    x = x.double()
    with torch.no_grad():
        for p in sn.arch_parameters():
            p.copy_(torch.randn(p.shape))
    sn.set_sampling(mode)
    sn.train()
    for m in sn.modules():  # calibration done: the ranges are learned, not re-measured
        if isinstance(m, SearchableAct):
            m.calibration_left.fill_(0)
    res = []
    for fast in (True, False):
        sn.zero_grad()
        torch.manual_seed(3)  # the same draws (sampled widths, Gumbel noise) for both
        sn.control.samples.clear()
        y = sn(x) if fast else _reference_forward(sn, x)
        (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
        res.append((y.detach(), {n: p.grad.clone() if p.grad is not None else None
                                 for n, p in sn.named_parameters()}))
    (y1, g1), (y0, g0) = res
    assert torch.allclose(y1, y0, rtol=1e-12, atol=1e-12)
    for n in g0:
        if g0[n] is None:
            assert g1[n] is None or not g1[n].any(), n
            continue
        assert g1[n] is not None, n
        assert torch.allclose(g1[n], g0[n], rtol=1e-9, atol=1e-12), (n, g1[n], g0[n])


def test_one_hot_supernet_with_sampled_widths_equals_derived():
    """The folded width masks keep the derived network exact under the default sampling."""
    torch.manual_seed(2)
    x = torch.randn(128, 16) * 2
    sn = cn.searchable(_mlp(), _space(), example_input=x)
    sn.eval()
    for seed in range(4):
        torch.manual_seed(seed)
        with torch.no_grad():
            for p in sn.arch_parameters():
                p.copy_(torch.randn(p.shape) * 3)
        model = sn.derive().eval()
        with torch.no_grad(), sn.fixed():
            a = sn(x)
        with torch.no_grad():
            b = model(x)
        assert torch.equal(a, b)


# ---- activation state without device reads ---------------------------------------------------
def _act_threshold_after(sn, x):
    sn.train()
    sn(x)
    return {n: float(m.log2_threshold.detach()) for n, m in sn.searchable_modules().items()
            if isinstance(m, SearchableAct)}


def test_activation_state_follows_load_state_dict_and_copies():
    x = torch.randn(32, 16)
    sn = cn.searchable(_mlp(), _space(), example_input=x * 0.01)
    done = copy.deepcopy(sn)
    for m in done.modules():
        if isinstance(m, SearchableAct):
            m.calibration_left.fill_(0)
    before = _act_threshold_after(done, x * 100)
    after = _act_threshold_after(done, x * 1e4)
    assert before == after  # window closed: ranges only learned
    sn.load_state_dict(done.state_dict())  # loads calibration_left = 0 into sn
    t0 = {n: float(m.log2_threshold.detach()) for n, m in sn.searchable_modules().items()
          if isinstance(m, SearchableAct)}
    assert _act_threshold_after(sn, x * 1e4) == t0
    fresh = cn.searchable(_mlp(), _space(), example_input=x * 0.01)
    t1 = _act_threshold_after(fresh, x * 100)
    assert t1["1"] > t0["1"] + 5  # still calibrating: the range grows
    relu = fresh.searchable_modules()["1"]
    left = int(relu.calibration_left)
    assert left == relu.calibration_steps - 1  # forward() counts the window down
    moved = copy.deepcopy(fresh)
    moved.searchable_modules()["1"].calibration_left.fill_(0)
    assert int(fresh.searchable_modules()["1"].calibration_left) == left  # copies are apart


def test_threshold_init_matches_the_python_formula():
    from connas4ml_torch.quant import log2_threshold_for

    for v in (0.0, 1e-9, 0.37, 1.0, 3.0, 4.0, 1234.5):
        act = SearchableAct("a", cn.kinds.ArchControl(), (8,), relu=False)
        act.init_threshold(torch.tensor([v, -v / 2]))
        assert float(act.log2_threshold.detach()) == float(
            torch.tensor(log2_threshold_for(v), dtype=torch.float32))


def test_nan_batch_does_not_move_a_calibrated_range():
    act = SearchableAct("a", cn.kinds.ArchControl(), (4, 8), relu=True)
    act.train()
    act(torch.ones(8))
    t = float(act.log2_threshold.detach())
    act(torch.full((8,), float("nan")))
    assert float(act.log2_threshold.detach()) == t


@pytest.mark.slow
def test_compiled_kernels_equal_the_eager_quantizer():
    """``compile_quantizers()``: the inductor kernels give the eager quantizer's values (one
    choice: exactly fake_quant) and gradients; sizes are dynamic (no recompilation)."""
    from torch._dynamo.utils import counters

    from connas4ml_torch import quant

    was = quant._COMPILED["on"]
    try:
        for on in (False, True):
            quant.compile_quantizers(on)
            res = []
            for n in (40_000, 70_000, 90_000):
                torch.manual_seed(n)
                x0, g = torch.randn(n) * 2, torch.randn(n)
                res.append(_grads(lambda x, t, p: mixed_fake_quant(x, t, (2, 4, 8), p, True, True),
                                  x0, torch.tensor(0.2), torch.randn(3), g, torch.float32))
                one = mixed_fake_quant(x0, torch.tensor(0.2), (2, 4, 8), None, True, True,
                                       index=torch.tensor(1))
                assert torch.equal(one, fake_quant(x0, torch.tensor(0.2), 4, True, True))
                if n == 40_000:
                    graphs = counters["stats"]["unique_graphs"]
            assert counters["stats"]["unique_graphs"] == graphs  # other sizes: no new graph
            if not on:
                eager = res
        for a_case, b_case in zip(res, eager):
            for a, b in zip(a_case, b_case):
                assert _rel(a, b) < 1e-6
    finally:
        quant.compile_quantizers(was)


@pytest.mark.slow
def test_torch_compiled_supernet_equals_eager():
    """``torch.compile(supernet)``: a graph or two per sampling mode (no recompilation from step
    to step, calibration included), the eager supernet's values and gradients, and still exactly
    the derived network for one choice. (``fallback_random``: the compiled width draws use
    eager's random stream, so both draw the same networks.)"""
    import torch._inductor.config as inductor_config
    from torch._dynamo.utils import counters

    with inductor_config.patch(fallback_random=True):
        _compiled_supernet_equals_eager(counters)


def _compiled_supernet_equals_eager(counters):
    torch.manual_seed(0)
    x = torch.randn(64, 16) * 2
    y = torch.randint(0, 5, (64,))
    sn = cn.searchable(_mlp(), _space(), example_input=x * 0.1)
    with torch.no_grad():
        for p in sn.arch_parameters():
            p.copy_(torch.randn(p.shape))
    ref = copy.deepcopy(sn)
    compiled = torch.compile(sn)
    graphs = counters["stats"]["unique_graphs"]
    for mode in ("softmax", "auto"):
        for model in (sn, ref):
            model.set_sampling(mode)
            model.train()
        for step in range(3):  # calibrating: the ranges grow with the larger inputs
            res = []
            for model in (compiled, ref):
                torch.manual_seed(step)
                out = model(x * (step + 1))
                F.cross_entropy(out, y).backward()
                res.append(out.detach())
            assert torch.allclose(res[0], res[1], rtol=1e-5, atol=1e-6)
            for (n, a), b in zip(sn.named_parameters(), ref.parameters()):
                assert (a.grad is None) == (b.grad is None), n
                if a.grad is not None:
                    assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-6), n
            with torch.no_grad():
                for a, b in zip(sn.parameters(), ref.parameters()):
                    if a.grad is not None:
                        a -= 0.1 * a.grad
                        b -= 0.1 * b.grad
                    a.grad = b.grad = None
            for a, b in zip(sn.buffers(), ref.buffers()):
                assert torch.equal(a, b)
    # softmax: one graph; auto: two (the sample record is empty on the first call only)
    assert counters["stats"]["unique_graphs"] - graphs <= 3
    sn.eval()
    model = sn.derive().eval()
    with torch.no_grad(), sn.fixed():
        assert torch.equal(compiled(x), model(x))
