"""The search on a CUDA device: supernet, cost tables, joint search, selection and derivation
all stay on the supernet's device (run on a GPU machine; skipped where torch sees no CUDA)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import connas4ml_torch as cn
from connas4ml_torch.training import TensorBatches

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

HLS = cn.HLSConfig(backend="Vitis", part="xcvu13p-flga2577-2-e", io_type="io_parallel",
                   strategy="Latency", reuse_factor=1)


def _task(n: int = 1024):
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(5, 16, generator=g) * 1.2
    y = torch.randint(0, 5, (n,), generator=g)
    return centres[y] + torch.randn(n, 16, generator=g), y


@pytest.mark.parametrize("sampling,settle", [("softmax", 0), ("reinforce", 0), ("softmax", 8)])
def test_search_and_derive_stay_on_the_gpu(sampling, settle):
    x, y = _task()
    dev = torch.device("cuda")
    x, y = x.to(dev), y.to(dev)
    net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                        nn.Linear(16, 5))
    space = cn.SearchSpace(width={"0": [8, 16, 32], "2": [8, 16]}, weight_bits=[3, 5, 8],
                           act_bits=[4, 8])
    sn = cn.searchable(net, space, example_input=x[:64].cpu()).to(dev)
    cost = cn.ResourceModel.default()
    probe = cn.Search(sn, cost, HLS)
    budget = probe.minimum["LUT"] * 3
    search = cn.Search(sn, cost, HLS, constraints={"LUT": budget}, warmup_steps=4,
                       settle_steps=settle)
    sn.set_sampling(sampling)
    opt = torch.optim.Adam(sn.weight_parameters(), 3e-3)
    train = TensorBatches(x[:768], y[:768], 64, torch.Generator().manual_seed(1))
    val = TensorBatches(x[768:], y[768:], 64, torch.Generator().manual_seed(2))
    search.fit(train, val, F.cross_entropy, opt, 2, progress=False)
    sel = search.selection(search.validation_score(val, F.cross_entropy))
    model = search.derive(sel)
    assert (sel.candidate == "settled") == bool(settle)
    assert {p.device.type for p in model.parameters()} == {"cuda"}
    assert sel.resources["LUT"] <= budget
    sn.eval(), model.eval()
    with torch.no_grad(), sn.fixed(sel.choices):
        assert torch.equal(model(x[:128]), sn(x[:128]))  # derived == one-hot supernet


def test_a_model_on_the_gpu_exports_bit_exact_and_stays_there(tmp_path):
    """export_to_hls works from a CPU copy; the user's model is left on its device."""
    x, _ = _task(256)
    net = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 5))
    space = cn.SearchSpace(weight_bits=[6], act_bits=[8])
    model = cn.searchable(net, space, example_input=x[:64]).derive().to("cuda").eval()
    prj = cn.export_to_hls(model, cn.HLSConfig(backend="Vitis", io_type="io_parallel"),
                           tmp_path / "prj", example_input=x, progress=False)
    assert prj.verification.bit_exact
    assert {p.device.type for p in model.parameters()} == {"cuda"}


def test_the_run_pipeline_on_the_gpu(tmp_path):
    """A config with ``device: cuda``: baseline, search, selection, fine-tune and export."""
    from connas4ml_torch import configs
    from connas4ml_torch.run import load_config, run

    demo = Path(configs.__file__).parent / "jet_demo.yaml"
    cfg = load_config(demo).replace(device="cuda", output=str(tmp_path),
                                                       progress=False)
    cfg.schedule.epochs = cfg.schedule.baseline_epochs = 2
    cfg.schedule.warmup_epochs, cfg.schedule.finetune_epochs = 0, 1
    cfg.schedule.max_steps_per_epoch = 6
    result = run(cfg)
    assert {p.device.type for p in result.model.parameters()} == {"cuda"}
    assert result.bit_exact is True
    for r, b in result.budgets.items():
        assert result.rows["searched"][r] <= b, r
