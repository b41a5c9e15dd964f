"""The search step's fast paths (issue 15, "Speed") change nothing the search computes.

``arch_step`` runs its validation passes with the weights' ``requires_grad`` off, its second
sampled pass under ``"auto"`` reads the first one's quantized weights, quantizers skip what only
a backward pass reads when no gradient can be taken, width draws skip ``torch.multinomial``'s
checks, the architecture optimizer is a ``foreach`` Adam, and ``fit``'s weight steps leave the
logits out of the backward pass (``Search.weight_pass``). Each is checked here against the plain
path, bit for bit, over whole searches.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import connas4ml_torch as cn
from connas4ml_torch.kinds import _searchable, _weights
from connas4ml_torch.quant import fused, fused_fake_quant, mixed_fake_quant
from connas4ml_torch.search import search as search_module
from connas4ml_torch.training import TensorBatches

HLS = cn.HLSConfig(backend="Vitis", part="xcvu13p-flga2577-2-e", io_type="io_parallel",
                   strategy="Latency", reuse_factor=1)


@pytest.fixture(scope="module")
def cost():
    return cn.ResourceModel.default()


@pytest.mark.parametrize("n", [3000, 70_000])  # stacked, and in blocks
@pytest.mark.parametrize("index", [None, 1])
def test_quantizer_without_gradient_gives_the_autograd_values(n, index):
    torch.manual_seed(n)
    x = (torch.randn(n) * 3).requires_grad_()
    t = torch.tensor(0.3, requires_grad=True)
    p = torch.softmax(torch.randn(3), 0).requires_grad_()
    i = None if index is None else torch.tensor(index)
    with_grad = mixed_fake_quant(x, t, (2, 4, 8), p, True, True, index=i)
    one = fused_fake_quant(x, t, 5, True)
    with torch.no_grad():
        plain = mixed_fake_quant(x, t, (2, 4, 8), p, True, True, index=i)
        plain_one = fused_fake_quant(x, t, 5, True)
    assert with_grad.grad_fn is not None and plain.grad_fn is None
    assert torch.equal(plain, with_grad.detach()) and torch.equal(plain_one, one.detach())


def test_width_draw_is_the_multinomial_draw():
    for seed in range(50):
        p = torch.softmax(torch.randn(2 + seed % 5), 0)
        torch.manual_seed(seed)
        ref = [int(torch.multinomial(p, 1)[0]) for _ in range(10)]
        torch.manual_seed(seed)
        assert [int(_searchable._draw(p)) for _ in range(10)] == ref


def _plain(monkeypatch) -> None:
    """Every fast path of the search step off (the arithmetic as before issue 15's work)."""
    monkeypatch.setattr(search_module, "requires_grad_off", lambda params: contextlib.nullcontext())
    monkeypatch.setattr(_weights.SearchableWeight, "_quantized",
                        lambda self: (self.quant_weight(), self.quant_bias()))
    monkeypatch.setattr(fused, "_apply", lambda x, t, p, bits, signed, narrow, index:
                        fused._MixedFakeQuant.apply(x, t, p, bits, signed, narrow, index))
    monkeypatch.setattr(_searchable, "_draw", lambda p: torch.multinomial(p, 1)[0])


def _model(conv: bool) -> nn.Module:
    if conv:  # a folded BatchNorm: the second pass quantizes its weights again
        return nn.Sequential(nn.Conv1d(1, 8, 3, padding=1), nn.BatchNorm1d(8), nn.ReLU(),
                             nn.Flatten(), nn.Linear(128, 5))
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 24), nn.ReLU(),
                         nn.Linear(24, 5))


def _search(cost, mode: str, conv: bool, plain: bool, steps: int = 12):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(512, *((1, 16) if conv else (16,)), generator=g)
    y = torch.randint(0, 5, (512,), generator=g)
    width = {"0": [4, 8]} if conv else {"0": [8, 16, 32], "2": [12, 24]}
    space = cn.SearchSpace(width=width, weight_bits=[2, 4, 8], act_bits=[3, 5, 8])
    sn = cn.searchable(_model(conv), space, example_input=x[:64])
    sn.set_sampling(mode)
    lut = 1.2 * cn.Search(sn, cost, HLS).minimum["LUT"]  # a budget that binds
    s = cn.Search(sn, cost, HLS, constraints={"LUT": lut}, arch_lr=0.05, dual_lr=0.5,
                  temperature=(1.0, 0.5), anneal_steps=20)
    if plain:  # the optimizer without foreach
        s.arch_optimizer = torch.optim.Adam(sn.arch_parameters(), lr=0.05, betas=(0.5, 0.999))
    opt = torch.optim.Adam(sn.weight_parameters(), 1e-2)
    s.fit(TensorBatches(x[:384], y[:384], 64, torch.Generator().manual_seed(2)),
          TensorBatches(x[384:], y[384:], 64, torch.Generator().manual_seed(3)),
          F.cross_entropy, opt, epochs=steps // 6, progress=False)
    return sn, s


@pytest.mark.parametrize("mode,conv", [("auto", False), ("auto", True), ("softmax", False),
                                       ("reinforce", False)])
def test_fast_search_steps_equal_the_plain_ones(cost, monkeypatch, mode, conv):
    fast_sn, fast = _search(cost, mode, conv, plain=False)
    with monkeypatch.context() as m:
        _plain(m)
        plain_sn, plain = _search(cost, mode, conv, plain=True)
    for (name, a), b in zip(fast_sn.state_dict().items(), plain_sn.state_dict().values()):
        assert torch.equal(a, b), name
    assert fast.history == plain.history and torch.equal(fast.lambdas, plain.lambdas)
    assert float(fast.lambdas.max()) > 0  # the dual ascent ran
    assert fast.selection().choices == plain.selection().choices
    assert all(p.requires_grad for p in fast_sn.parameters())  # every switch set back


def test_arch_step_leaves_the_weights_alone_and_weight_pass_the_logits(cost):
    sn, s = _search(cost, "auto", False, plain=False, steps=6)
    x, y = torch.randn(64, 16), torch.randint(0, 5, (64,))
    sn.zero_grad(set_to_none=True)
    s.arch_step(lambda: F.cross_entropy(sn(x), y))
    assert all(p.grad is None for p in sn.weight_parameters())
    ref = {}
    for wp in (False, True):
        sn.zero_grad(set_to_none=True)
        torch.manual_seed(5)
        with s.weight_pass() if wp else contextlib.nullcontext():
            assert all(p.requires_grad != wp for p in sn.arch_parameters())
            F.cross_entropy(sn(x), y).backward()
        assert all(p.requires_grad for p in sn.arch_parameters())
        grads = [p.grad for p in sn.weight_parameters()]
        if wp:
            assert all(p.grad is None for p in sn.arch_parameters())
            assert all(torch.equal(a, b) for a, b in zip(grads, ref))
        ref = grads
