"""A network derived from a supernet exports to a bit-exact hls4ml project (issues 2 + 3)."""

from __future__ import annotations

import pytest
import torch

import connas4ml_torch as cn
from connas4ml_torch.models import jet_mlp


@pytest.mark.hls
def test_derived_mixed_precision_mlp_is_bit_exact_in_hls4ml(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(512, 16)
    space = cn.SearchSpace(width={"fc1": [16, 32, 64], "fc2": [8, 16, 32], "fc3": [8, 32]},
                           weight_bits=[2, 3, 4, 6, 8], act_bits=[3, 5, 8])
    sn = cn.searchable(jet_mlp(), space, example_input=x)
    opt = torch.optim.Adam(sn.weight_parameters(), 1e-2)
    y = (x[:, :5] * torch.arange(1, 6)).argmax(1)
    for _ in range(30):  # a little training so that thresholds and weights move
        opt.zero_grad()
        torch.nn.functional.cross_entropy(sn(x), y).backward()
        opt.step()
    choices = {"input": {"bits": 8}, "fc1": {"width": 32, "weight_bits": 3}, "relu1": {"bits": 5},
               "fc2": {"width": 16, "weight_bits": 6}, "relu2": {"bits": 3},
               "fc3": {"width": 8, "weight_bits": 2}, "relu3": {"bits": 8}, "out": {"weight_bits": 4}}
    model = sn.derive(choices).eval()
    prj = cn.export_to_hls(model, cn.HLSConfig(backend="Vitis", io_type="io_parallel"),
                           tmp_path / "prj", example_input=x[:256], progress=False)
    v = prj.verification
    assert v.n_rows == 256 and v.bit_exact and v.bit_exact_fraction == 1.0
    assert v.max_abs_diff == 0.0 and v.argmax_agreement == 1.0
    with torch.no_grad(), sn.fixed(choices):
        sn.eval()
        ref = sn(x[:256])
    hls_out = torch.as_tensor(prj.hls_model.predict(x[:256].numpy())).reshape(ref.shape).float()
    assert torch.equal(hls_out, ref)  # hls4ml == derived Brevitas == one-hot supernet
    assert len(set(ref.argmax(1).tolist())) > 1
