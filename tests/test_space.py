"""Searchable layers: supernet == derived Brevitas model for one-hot choices, and the rest of issue 2."""

from __future__ import annotations

import math
import socket

import pytest
import torch
import torch.nn.functional as F
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from torch import nn

import connas4ml_torch as cn
from connas4ml_torch.kinds import Searchable as _Searchable


def jet_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                         nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 5))


class SmallCNN(nn.Module):
    """Conv2d CNN with pooling and custom forward code (functional flatten)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 5, padding=2)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = self.pool(self.relu1(self.conv1(x)))
        x = self.pool(self.relu2(self.conv2(x)))
        return self.fc(torch.flatten(x, 1))


class Conv1dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv1d(4, 24, 3), nn.ReLU(), nn.MaxPool1d(2),
                                      nn.Conv1d(24, 12, 3), nn.ReLU(), nn.Flatten())
        self.head = nn.Linear(12 * 5, 3)

    def forward(self, x):
        return self.head(self.features(x))


def mlp_space():
    return cn.SearchSpace(width={"0": [16, 32, 64], "2": [8, 16, 32], "4": [8, 16, 32]},
                          weight_bits=[2, 3, 4, 8], act_bits=[3, 6, 8])


def _random_arch(sn, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in sn.arch_parameters():
            p.copy_(torch.randn(p.shape, generator=g))


def _one_hot_equal(sn, x, choices=None):
    sn.eval()
    model = sn.derive(choices).eval()
    with torch.no_grad(), sn.fixed(choices):
        a = sn(x)
    with torch.no_grad():
        b = model(x)
    return a, b, model


CASES = [
    ("mlp", jet_mlp, mlp_space, (512, 16)),
    ("cnn2d", SmallCNN, lambda: cn.SearchSpace(
        width={"conv1": [4, 8, 16], "conv2": [8, 16]}, kernel={"conv1": [3, 5]},
        weight_bits=[2, 4, 8], act_bits=[4, 8]), (64, 3, 16, 16)),
    ("cnn1d", Conv1dNet, lambda: cn.SearchSpace(
        width={"features.0": [8, 16, 24], "features.3": [6, 12]}, weight_bits=[3, 5, 8],
        act_bits=[2, 4, 8]), (128, 4, 16)),
]


@pytest.mark.parametrize("name,factory,space,shape", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_hot_supernet_equals_derived_exactly(name, factory, space, shape, seed):
    """Tolerance: none. The fixed-point arithmetic is exact in float32 for these sizes."""
    torch.manual_seed(seed)
    x = torch.randn(*shape) * 2
    sn = cn.searchable(factory(), space(), example_input=x)
    sn.train()
    for _ in range(2):  # move weights/thresholds off their initial values
        sn(x).square().mean().backward()
        with torch.no_grad():
            for p in sn.weight_parameters():
                p -= 0.05 * p.grad
                p.grad = None
    _random_arch(sn, seed)
    a, b, _ = _one_hot_equal(sn, x)
    assert a.std() > 0  # not a constant output
    assert torch.equal(a, b), (a - b).abs().max()


def test_explicit_choices_and_parameter_count():
    x = torch.randn(64, 16)
    sn = cn.searchable(jet_mlp(), mlp_space(), example_input=x)
    choices = {"0": {"width": 16, "weight_bits": 3}, "2": {"width": 32, "weight_bits": 8},
               "4": {"width": 8, "weight_bits": 2}, "6": {"weight_bits": 4}, "1": {"bits": 3}}
    a, b, model = _one_hot_equal(sn, x, choices)
    assert torch.equal(a, b)
    n = sum(p.numel() for n_, p in model.named_parameters() if n_.endswith(("weight", "bias")))
    assert n == (16 * 16 + 16) + (16 * 32 + 32) + (32 * 8 + 8) + (8 * 5 + 5)
    layers = [m for m in model.modules() if isinstance(m, QuantLinear)]
    assert [m.weight_quant.bit_width().item() for m in layers] == [3, 8, 2, 4]
    relus = [m for m in model.modules() if isinstance(m, QuantReLU)]
    assert relus[0].act_quant.bit_width().item() == 3


def test_derived_model_has_no_search_machinery():
    x = torch.randn(8, 3, 16, 16)
    sn = cn.searchable(SmallCNN(), CASES[1][2](), example_input=x)
    model = sn.derive()
    assert not any(isinstance(m, _Searchable) for m in model.modules())
    assert not any("alpha" in n for n, _ in model.named_parameters())
    assert isinstance(model.input_quant, QuantIdentity)
    assert isinstance(model.net.conv1, QuantConv2d)
    assert model.net.conv1.kernel_size == (sn.choices()["conv1"]["kernel"],) * 2


def test_gradients_reach_every_architecture_parameter():
    for _name, factory, space, shape in CASES:
        x = torch.randn(*shape)
        sn = cn.searchable(factory(), space(), example_input=x)
        sn.set_sampling("softmax")  # the relaxation: every choice on the gradient path
        _random_arch(sn, 0)
        sn(x).square().mean().backward()
        names = [n for n, _ in sn.named_arch_parameters()]
        assert names, "no architecture parameters"
        for n, p in sn.named_arch_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, n


def test_arch_and_weight_parameters_are_disjoint_and_complete():
    sn = cn.searchable(jet_mlp(), mlp_space(), example_input=torch.randn(4, 16))
    arch = {id(p) for p in sn.arch_parameters()}
    weights = {id(p) for p in sn.weight_parameters()}
    assert arch and weights and not arch & weights
    assert arch | weights == {id(p) for p in sn.parameters()}


def test_probabilities_temperature_and_gumbel():
    sn = cn.searchable(jet_mlp(), mlp_space(), example_input=torch.randn(4, 16))
    _random_arch(sn, 3)
    p1 = sn.probabilities()["0"]["width"]
    sn.set_temperature(0.1)
    p2 = sn.probabilities()["0"]["width"]
    assert torch.allclose(p1.sum(), torch.tensor(1.0)) and p2.max() > p1.max()
    assert sn.choices()["0"]["width"] == [16, 32, 64][int(p1.argmax())]
    sn.set_sampling("gumbel")
    torch.manual_seed(0)
    y1 = sn(torch.ones(2, 16))
    y2 = sn(torch.ones(2, 16))
    assert not torch.equal(y1, y2)  # sampled architectures differ
    sn.set_sampling("gumbel_hard")  # one real architecture per forward, gradients still flow
    sn(torch.ones(2, 16)).sum().backward()
    assert all(p.grad is not None for p in sn.arch_parameters())
    with pytest.raises(ValueError, match="temperature"):
        sn.set_temperature(0)


class CustomForward(nn.Module):
    """Custom forward with Python control flow and a residual add (ties widths)."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(8, 32)
        self.act0 = nn.ReLU()
        self.blocks = nn.ModuleList([nn.Linear(32, 32) for _ in range(2)])
        self.acts = nn.ModuleList([nn.ReLU() for _ in range(2)])
        self.out = nn.Linear(32, 2)
        self.depth = 2

    def forward(self, x):
        h = self.act0(self.inp(x))
        for i in range(self.depth):
            h = self.acts[i](self.blocks[i](h) + h) if i % 2 == 0 else self.acts[i](self.blocks[i](h))
        return self.out(h)


def test_custom_forward_with_residual_ties_widths():
    x = torch.randn(64, 8)
    space = cn.SearchSpace(width={"inp": [16, 32], "blocks.0": [16, 32], "blocks.1": [8, 32]},
                           weight_bits=[4, 8], act_bits=[4, 8])
    sn = cn.searchable(CustomForward(), space, example_input=x)
    mods = sn.searchable_modules()
    assert mods["inp"].alpha_width is mods["blocks.0"].alpha_width  # tied by the add
    assert mods["blocks.1"].alpha_width is not mods["inp"].alpha_width
    _random_arch(sn, 1)
    with pytest.raises(ValueError, match="tied widths"):
        sn.derive({"inp": {"width": 16}, "blocks.0": {"width": 32}})
    with torch.no_grad():
        mods["inp"].alpha_width.copy_(torch.tensor([3.0, 0.0]))  # width 16 for both
        mods["blocks.1"].alpha_width.copy_(torch.tensor([3.0, 0.0]))
    a, b, model = _one_hot_equal(sn, x)
    assert torch.equal(a, b)
    assert model.net.blocks[0].weight.shape == (16, 16)
    assert model.net.blocks[1].weight.shape == (8, 16)
    assert model.net.out.weight.shape == (2, 8)


def test_residual_with_different_choices_is_refused_by_name():
    space = cn.SearchSpace(width={"inp": [16, 32], "blocks.0": [8, 32]})
    with pytest.raises(ValueError, match=r"blocks\.0.*inp|inp.*blocks\.0"):
        cn.searchable(CustomForward(), space, example_input=torch.randn(4, 8))


def test_unsupported_layers_and_bad_choices_name_the_module():
    bad = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 2))
    with pytest.raises(ValueError, match=r"'1'.*GELU has no bit-exact hls4ml"):
        cn.searchable(bad, cn.SearchSpace())
    # a BatchNorm is folded into the layer it follows: nothing may come in between
    bn = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.BatchNorm1d(8), nn.Linear(8, 2))
    with pytest.raises(ValueError, match=r"'2' \(BatchNorm1d\) does not directly follow"):
        cn.searchable(bn, cn.SearchSpace(), example_input=torch.randn(4, 4))
    with pytest.raises(ValueError, match="matches no searchable module"):
        cn.searchable(jet_mlp(), cn.SearchSpace(width={"fc9": [4, 8]}))
    with pytest.raises(ValueError, match=r"exceed the module's 64"):
        cn.searchable(jet_mlp(), cn.SearchSpace(width={"0": [32, 128]}))
    with pytest.raises(ValueError, match="output"):
        cn.searchable(jet_mlp(), cn.SearchSpace(width={"6": [2, 5]}), example_input=torch.randn(2, 16))
    sn = cn.searchable(jet_mlp(), mlp_space(), example_input=torch.randn(2, 16))
    with pytest.raises(ValueError, match=r"0\.width=48 is not one of \[16, 32, 64\]"):
        sn.derive({"0": {"width": 48}})
    with pytest.raises(ValueError, match="unknown layer 'fc1'"):
        sn.derive({"fc1": {"width": 16}})


class Functional(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.a = nn.Linear(4, 8)
        self.b = nn.Linear(8, 2)
        self.fn = fn

    def forward(self, x):
        return self.b(self.fn(self.a(x)))


def test_functional_op_hls4ml_cannot_reproduce_is_refused_naming_the_op():
    # the error names the op first, then the layer it feeds, then the module form to use
    with pytest.raises(ValueError,
                       match=r"^the op 'tanh' in forward\(\) \(feeding 'b'\).*nn\.Tanh"):
        cn.searchable(Functional(torch.tanh), cn.SearchSpace(), example_input=torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"^the op 'mul' in forward\(\) \(feeding 'b'\)"):
        cn.searchable(Functional(lambda h: h * 0.3), cn.SearchSpace(),
                      example_input=torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"^the op 'add' with a constant"):
        cn.searchable(Functional(lambda h: h + 0.5), cn.SearchSpace(),
                      example_input=torch.randn(2, 4))


def test_functional_relu_before_a_layer_gets_an_input_quantizer():
    # F.relu of an accumulator is exact in hls4ml (Relu, then the layer's input quantizer)
    sn = cn.searchable(Functional(F.relu), cn.SearchSpace(act_bits={"b.input_quant": [3, 6]}),
                       example_input=torch.randn(16, 4))
    q = sn.searchable_modules()["b.input_quant"]
    assert q.bits == (3, 6) and not q.signed  # a ReLU's output: unsigned grid
    assert sn.graph.layers["b"].in_quant == "b.input_quant"
    a, b, model = _one_hot_equal(sn, torch.randn(16, 4))
    assert torch.equal(a, b)
    assert model.net.b.input_quant.is_quant_enabled


class HardCodedView(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 8, 3)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(8 * 6, 2)

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).view(-1, 8 * 6))


def test_hard_coded_view_gives_a_clear_error_at_derive():
    sn = cn.searchable(HardCodedView(), cn.SearchSpace(width={"conv": [4, 8]}),
                       example_input=torch.randn(2, 2, 8))
    with pytest.raises(ValueError, match="hard-codes a size"):
        sn.derive({"conv": {"width": 4}})


def test_state_dict_round_trip():
    x = torch.randn(32, 16)
    sn = cn.searchable(jet_mlp(), mlp_space(), example_input=x)
    _random_arch(sn, 5)
    sd = sn.state_dict()
    other = cn.searchable(jet_mlp(), mlp_space(), example_input=x * 0.1)
    other.load_state_dict(sd)
    assert other.choices() == sn.choices()
    sn.eval()
    other.eval()
    torch.manual_seed(0)  # the default sampling ("auto") draws the widths: draw the same ones
    a = sn(x)
    torch.manual_seed(0)
    assert torch.equal(a, other(x))


def test_lazy_analysis_on_first_forward():
    sn = cn.searchable(SmallCNN(), CASES[1][2]())
    assert sn.graph is None
    sn(torch.randn(4, 3, 16, 16))
    assert list(sn.graph.layers) == ["conv1", "conv2", "fc"]
    assert sn.graph.layers["fc"].block == 16 and sn.graph.layers["fc"].producer == "conv2"


DDP_SCRIPT = """
import datetime, os, sys
import torch, torch.distributed as dist, torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
import connas4ml_torch as cn
from connas4ml_torch.models import jet_mlp

def worker(rank, world, port, out):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=60))
    torch.manual_seed(0)
    space = cn.SearchSpace(width={"fc1": [16, 32, 64], "fc2": [8, 16, 32]},
                           weight_bits=[2, 4, 8], act_bits=[3, 6, 8])
    # different example inputs per rank: the activation ranges must still agree (all_reduce)
    sn = cn.searchable(jet_mlp(), space, example_input=torch.randn(32, 16) * (rank + 1))
    model = DDP(sn)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.manual_seed(rank)
    for _ in range(3):
        x, y = torch.randn(16, 16), torch.randint(0, 5, (16,))
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    # architecture steps: each rank scores its own batch and its own sampled networks, and
    # Search averages the architecture gradients over the processes
    sn.set_sampling("reinforce")
    search = cn.Search(sn, cn.ResourceModel.default(), cn.HLSConfig(), arch_lr=0.1)
    for _ in range(3):
        x, y = torch.randn(16, 16), torch.randint(0, 5, (16,))
        search.arch_step(lambda: F.cross_entropy(sn(x), y))
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    flat = torch.cat([p.detach().flatten() for p in sn.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    if rank == 0:
        torch.save(torch.stack(gathered), out)
    dist.barrier()
    # leave without running gloo's C++ teardown: in torch 2.13 it intermittently aborts with
    # "terminate called without an active exception" after all the work is done
    os._exit(0)

if __name__ == "__main__":
    import torch.multiprocessing as mp
    mp.spawn(worker, args=(2, int(sys.argv[1]), sys.argv[2]), nprocs=2, join=True)
"""


def test_supernet_under_ddp_gloo(tmp_path):
    """Two gloo processes train the supernet under DDP, then search it; replicas stay identical.

    Run in a fresh interpreter (not spawned from the test process) with a bounded wait.
    """
    import subprocess
    import sys

    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT)
    out = tmp_path / "params.pt"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run([sys.executable, str(script), str(port), str(out)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    both = torch.load(out)
    assert both.shape[0] == 2
    assert torch.equal(both[0], both[1])  # replicas stay identical (thresholds synced too)
    assert math.isfinite(float(both.abs().sum()))


def test_input_bits_are_searchable_by_the_input_key():
    space = cn.SearchSpace(act_bits={"input": [4, 8], "[135]": [3, 6]})
    sn = cn.searchable(jet_mlp(), space, example_input=torch.randn(8, 16))
    assert sn.input_quant.bits == (4, 8)
    assert sn.choices()["input"]["bits"] in (4, 8)


def test_activation_ranges_follow_growing_activations_during_calibration():
    sn = cn.searchable(jet_mlp(), cn.SearchSpace(), example_input=torch.randn(8, 16) * 0.01)
    relu = sn.searchable_modules()["1"]
    before = float(relu.log2_threshold)
    sn.train()
    sn(torch.randn(8, 16) * 100)  # within the calibration window: the range grows to cover it
    assert float(relu.log2_threshold) > before + 5
    relu.calibration_left.fill_(0)
    after = float(relu.log2_threshold)
    sn(torch.randn(8, 16) * 1e4)  # after the window the threshold is only learned
    assert float(relu.log2_threshold) == after


def test_untouched_choices_default_to_the_largest():
    sn = cn.searchable(jet_mlp(), mlp_space(), example_input=torch.randn(4, 16))
    assert sn.choices()["0"] == {"width": 64, "weight_bits": 8}
    assert sn.choices()["1"] == {"bits": 8}


def test_reinforce_sampling_runs_one_drawn_network_and_ties_share_the_draw():
    x = torch.randn(64, 8)
    space = cn.SearchSpace(width={"inp": [16, 32], "blocks.0": [16, 32], "blocks.1": [8, 32]},
                           weight_bits=[4, 8], act_bits=[4, 8])
    sn = cn.searchable(CustomForward(), space, example_input=x).eval()
    _random_arch(sn, 2)
    sn.set_sampling("reinforce")
    torch.manual_seed(0)
    drawn = set()
    for _ in range(12):
        with torch.no_grad():
            y = sn(x)
        s = sn.control.samples
        # inp and blocks.0 meet in an add: one logit vector, one draw
        assert s[("inp", "width")][1] == s[("blocks.0", "width")][1]
        choices: dict[str, dict[str, int]] = {}
        for (layer, kind), (alpha, i) in s.items():
            assert alpha is sn.searchable_modules()[layer].arch()[kind]
            choices.setdefault(layer, {})[kind] = sn.searchable_modules()[layer].choice_values()[kind][int(i)]
        drawn.add(tuple(sorted((k, tuple(sorted(v.items()))) for k, v in choices.items())))
        sn.set_sampling("softmax")
        with torch.no_grad(), sn.fixed(choices):
            assert torch.equal(y, sn(x))  # the forward pass was exactly that one network
        sn.set_sampling("reinforce")
    assert len(drawn) > 1  # and a fresh network is drawn on every pass
    sn.train()
    sn(x).sum().backward()  # a zero gradient reaches the logits: Search scores the draws instead
    assert all(p.grad is not None and not p.grad.any() for p in sn.arch_parameters())


def test_auto_sampling_draws_widths_and_relaxes_bits():
    sn = cn.searchable(jet_mlp(), mlp_space(), example_input=torch.randn(64, 16))
    _random_arch(sn, 4)
    sn.set_sampling("auto")
    sn(torch.randn(8, 16)).sum().backward()
    assert {kind for _, kind in sn.control.samples} == {"width"}
    mods = sn.searchable_modules()
    assert mods["0"].alpha_weight_bits.grad.abs().sum() > 0  # relaxed: a real gradient
    assert not mods["0"].alpha_width.grad.any()  # sampled: scored by Search instead
