"""The models hls4ml users write, as a new user runs them: ``searchable -> Search (5 steps) ->
derive -> export_to_hls`` with the C simulation compared row by row, 100% bit-exact.

One g++ compile per model (each ``slow`` + ``hls``); the refusals (functions hls4ml lacks,
float-scale Brevitas quantizers, pooling the export cannot write) compile nothing. Every compile
test also checks that the derived model equals the one-hot supernet exactly (eval mode), so the
search evaluated the network that is deployed.

The last test adds a layer kind through the registry alone (inside this file) and runs it the
same way.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import (
    Int8ActPerTensorFixedPoint,
    Int8WeightPerTensorFixedPoint,
    Uint8ActPerTensorFixedPoint,
)
from torch import nn

import connas4ml_torch as cn
from connas4ml_torch.errors import UnsupportedLayerError
from connas4ml_torch.kinds import LayerKind, kind_named, kind_of, register
from connas4ml_torch.kinds.nonlinear import SigmoidTable, TanhTable

N_ROWS = 256
HLS = cn.HLSConfig(backend="Vitis", io_type="io_parallel")


@pytest.fixture(scope="module")
def cost():
    return cn.ResourceModel.default()


def _labels(x: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Classes from a fixed random linear teacher (learnable, every class present)."""
    g = torch.Generator().manual_seed(7)
    flat = x.flatten(1)
    return (flat @ torch.randn(flat.shape[1], n_classes, generator=g)).argmax(1)


def run(model: nn.Module, x: torch.Tensor, space: cn.SearchSpace, cost, tmp_path, *,
        loss=F.cross_entropy, target: torch.Tensor | None = None, n_classes: int = 3,
        hls: cn.HLSConfig = HLS):
    """wrap -> Search (5 architecture + 5 weight steps) -> derive -> export; bit-exact."""
    torch.manual_seed(0)
    y = _labels(x, n_classes) if target is None else target
    sn = cn.searchable(model, space, example_input=x[:64])
    search = cn.Search(sn, cost, hls, arch_lr=0.05)
    opt = torch.optim.Adam(sn.weight_parameters(), 1e-2)
    half = x.shape[0] // 2
    for _ in range(5):
        search.arch_step(lambda: loss(sn(x[:half]), y[:half]))
        opt.zero_grad()
        loss(sn(x[half:]), y[half:]).backward()
        opt.step()
    derived = search.derive().eval()
    sn.eval()
    with torch.no_grad(), sn.fixed(derived.choices):
        a = sn(x)
    with torch.no_grad():
        b = derived(x)
    assert torch.equal(a, b), (a - b).abs().max()  # the searched network is the deployed one
    prj = cn.export_to_hls(derived, hls, tmp_path / "prj", x, progress=False, strict=True)
    v = prj.verification
    assert v.n_rows == N_ROWS and v.bit_exact and v.bit_exact_rows == N_ROWS, str(v)
    assert v.max_abs_diff == 0.0 and v.outputs_vary
    assert v.argmax_agreement in (None, 1.0)
    return sn, derived, prj


# ------------------------------------------------------------------------------------------------
# the three that worked before
# ------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.hls
def test_conv1d_classifier(cost, tmp_path):
    # (with an AvgPool1d too: hls4ml's 1-D pooling parser needs the same fix as for MaxPool1d)
    model = nn.Sequential(nn.Conv1d(4, 16, 5), nn.ReLU(), nn.MaxPool1d(2),
                          nn.Conv1d(16, 8, 3, stride=2), nn.ReLU(), nn.AvgPool1d(2),
                          nn.Flatten(), nn.Linear(8 * 3, 3))
    x = torch.randn(N_ROWS, 4, 32)
    space = cn.SearchSpace(width={"0": [8, 16]}, weight_bits=[4, 6], act_bits=[4, 6, 8])
    run(model, x, space, cost, tmp_path)


@pytest.mark.slow
@pytest.mark.hls
def test_dense_autoencoder(cost, tmp_path):
    model = nn.Sequential(nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 4), nn.ReLU(),
                          nn.Linear(4, 12), nn.ReLU(), nn.Linear(12, 16))
    x = torch.randn(N_ROWS, 16)
    space = cn.SearchSpace(width={"0": [8, 12], "4": [8, 12]}, weight_bits=[4, 8],
                           act_bits=[6, 8])
    run(model, x, space, cost, tmp_path, loss=F.mse_loss, target=x)


@pytest.mark.slow
@pytest.mark.hls
def test_conv2d_maxpool_cnn_io_stream(cost, tmp_path):
    model = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(8 * 2 * 2, 4))
    x = torch.randn(N_ROWS, 2, 12, 12)
    space = cn.SearchSpace(width={"0": [4, 8]}, weight_bits=[4, 6], act_bits=[4, 8])
    run(model, x, space, cost, tmp_path, n_classes=4,
        hls=cn.HLSConfig(backend="Vitis", io_type="io_stream"))


# ------------------------------------------------------------------------------------------------
# BatchNorm: searched with the layer under it, folded at derive
# ------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.hls
def test_linear_batchnorm_relu_mlp(cost, tmp_path):
    model = nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.ReLU(),
                          nn.Linear(16, 8, bias=False), nn.BatchNorm1d(8), nn.ReLU(),
                          nn.Linear(8, 3))
    x = torch.randn(N_ROWS, 10) * 3 + 1
    space = cn.SearchSpace(width={"0": [8, 16]}, weight_bits=[4, 6], act_bits=[4, 8])
    sn, derived, _ = run(model, x, space, cost, tmp_path)
    assert isinstance(derived.net[1], nn.Identity) and isinstance(derived.net[4], nn.Identity)
    bn = sn.net[1].bn
    assert bn.num_batches_tracked > 0 and not torch.equal(bn.running_mean, torch.zeros(16))


def test_batchnorm_statistics_follow_the_width_and_conv2d_folds():
    """Per-channel statistics: a narrower width keeps the first channels' ones; BatchNorm2d
    after a Conv2d folds the same way (one-hot supernet == derived, eval mode)."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8 * 6 * 6, 2))
    x = torch.randn(32, 3, 6, 6) * 2
    sn = cn.searchable(model, cn.SearchSpace(width={"0": [4, 8]}), example_input=x)
    sn.train()
    for _ in range(3):
        sn(x).square().mean().backward()
    sn.eval()
    for width in (4, 8):
        ch = {"0": {"width": width}}
        derived = sn.derive(ch).eval()
        with torch.no_grad(), sn.fixed(ch):
            assert torch.equal(sn(x), derived(x))
        assert derived.net[0].weight.shape[0] == width


# ------------------------------------------------------------------------------------------------
# sums and average pooling: a quantizer inserted where the grid is left
# ------------------------------------------------------------------------------------------------
class Residual(nn.Module):
    """``out(h + f(h))``, then a sum with a bare Linear's accumulator (signed)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.relu1 = nn.Linear(12, 16), nn.ReLU()
        self.f = nn.Sequential(nn.Linear(16, 16), nn.ReLU())
        self.g = nn.Linear(16, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu1(self.fc1(x))
        h = h + self.f(h)
        return self.out(h + self.g(h))


@pytest.mark.slow
@pytest.mark.hls
def test_residual_sum_feeding_a_linear(cost, tmp_path):
    x = torch.randn(N_ROWS, 12)
    space = cn.SearchSpace(width={"fc1": [8, 16], "f.0": [8, 16], "g": [8, 16]},
                           weight_bits=[4, 6], act_bits={"out.input_quant": [6, 8], "*": [4, 8]})
    sn, derived, prj = run(Residual(), x, space, cost, tmp_path)
    q = sn.searchable_modules()["out.input_quant"]
    assert q.bits == (6, 8) and q.signed  # h + g(h): g's accumulator may be negative
    assert sn.graph.layers["out"].in_quant == "out.input_quant"
    assert sn.net.fc1.alpha_width is sn.net.g.alpha_width  # tied by the sums
    assert derived.net.out.input_quant.is_quant_enabled
    assert any(layer.class_name == "Merge" for layer in prj.hls_model.get_layers())


@pytest.mark.slow
@pytest.mark.hls
def test_conv2d_stride2_relu_avgpool2d_flatten_linear(cost, tmp_path):
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 8, 3, stride=2)
            self.relu = nn.ReLU()
            self.pool = nn.AvgPool2d(2)
            self.conv2 = nn.Conv2d(8, 8, 1)
            self.relu2 = nn.ReLU()
            self.gap = nn.AdaptiveAvgPool2d(1)  # 2x2 -> 1: a window of 4, written as AvgPool2d
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            h = self.relu2(self.conv2(self.pool(self.relu(self.conv(x)))))
            return self.fc(self.gap(h).flatten(1))

    x = torch.randn(N_ROWS, 2, 9, 9)
    space = cn.SearchSpace(width={"conv": [4, 8]}, weight_bits=[4, 6],
                           act_bits={"pool": [4, 6, 8], "*": [6, 8]})
    sn, derived, prj = run(Net(), x, space, cost, tmp_path)
    pool = sn.searchable_modules()["pool"]
    assert pool.bits == (4, 6, 8) and not pool.signed  # an average of ReLU outputs
    assert isinstance(derived.net.pool.op, nn.AvgPool2d)
    assert isinstance(derived.net.gap.op, nn.AvgPool2d) and derived.net.gap.op.kernel_size == (2, 2)
    pools = [layer for layer in prj.hls_model.get_layers()
             if layer.class_name == "Pooling2D" and layer.get_attr("pool_op") == "Average"]
    assert len(pools) == 2


def test_sum_of_conv_feature_maps_is_refused_naming_the_op():
    class ConvResidual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.r1 = nn.Conv1d(3, 4, 3, padding=1), nn.ReLU()
            self.c2, self.r2 = nn.Conv1d(4, 4, 3, padding=1), nn.ReLU()
            self.fc = nn.Linear(4 * 8, 2)

        def forward(self, x):
            h = self.r1(self.c1(x))
            return self.fc(self.r2(h + self.c2(h)).flatten(1))

    with pytest.raises(UnsupportedLayerError, match=r"^the op 'add' of two feature maps "
                       r"\(4, 4, 8\) in forward\(\) \(feeding 'r2'\) cannot be exported: qonnx"):
        cn.searchable(ConvResidual(), cn.SearchSpace(), example_input=torch.randn(4, 3, 8))


def test_pooling_the_export_cannot_write_is_refused_at_searchable():
    x = torch.randn(4, 2, 9, 9)

    def net(pool, n_in=16):
        return nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), pool, nn.Flatten(), nn.Linear(n_in, 2))

    with pytest.raises(UnsupportedLayerError, match=r"'2' \(AvgPool2d\).*not a power of two"):
        cn.searchable(net(nn.AvgPool2d(3)), cn.SearchSpace(), example_input=x)
    with pytest.raises(UnsupportedLayerError, match=r"'2' \(AvgPool2d\) uses padding=1"):
        cn.searchable(net(nn.AvgPool2d(2, padding=1)), cn.SearchSpace(), example_input=x)
    with pytest.raises(UnsupportedLayerError, match=r"'2' \(AdaptiveAvgPool2d\) pools \(7, 7\)"):
        cn.searchable(net(nn.AdaptiveAvgPool2d(2)), cn.SearchSpace(), example_input=x)
    # functional average pooling: the error names the op, then the layer it feeds
    with pytest.raises(UnsupportedLayerError,
                       match=r"^the op 'avg_pool2d' in forward\(\) \(feeding 'b\.1'\)"):
        cn.searchable(Around(nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU()),
                             lambda h: F.avg_pool2d(h, 2),
                             nn.Sequential(nn.Flatten(), nn.Linear(36, 2))),
                      cn.SearchSpace(), example_input=x)


class Around(nn.Module):
    """User code: ``b(fn(a(x)))`` with ``fn`` a functional op in ``forward()``."""

    def __init__(self, a: nn.Module, fn, b: nn.Module | None = None) -> None:
        super().__init__()
        self.a, self.b, self.fn = a, b or nn.Identity(), fn

    def forward(self, x):
        return self.b(self.fn(self.a(x)))


# ------------------------------------------------------------------------------------------------
# activations hls4ml computes with tables / fixed point
# ------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.hls
def test_sigmoid_tanh_leakyrelu_mlp(cost, tmp_path):
    model = nn.Sequential(nn.Linear(10, 16), nn.Sigmoid(), nn.Linear(16, 16), nn.Tanh(),
                          nn.Linear(16, 12), nn.LeakyReLU(), nn.Linear(12, 3))
    x = torch.randn(N_ROWS, 10) * 2
    # 12-bit quantizers after the tables: the tables' 16 fraction bits all matter
    space = cn.SearchSpace(width={"2": [8, 16]}, weight_bits=[6, 8],
                           act_bits={"1": [6, 12], "3": [6, 12], "*": [8]})
    sn, derived, prj = run(model, x, space, cost, tmp_path)
    assert isinstance(derived.net[1].op, SigmoidTable) and isinstance(derived.net[3].op, TanhTable)
    assert derived.net[5].op.negative_slope == 41 / 4096  # 0.01 on 8 significant bits
    acts = {layer.get_attr("activation") for layer in prj.hls_model.get_layers()}
    assert {"sigmoid", "tanh"} <= {str(a).lower() for a in acts}
    assert not sn.searchable_modules()["1"].signed and sn.searchable_modules()["3"].signed


TABLES_CPP = r"""
#include "ap_fixed.h"
#include "nnet_utils/nnet_activation.h"
#include <cstdio>
struct act : nnet::activ_config { typedef ap_fixed<18,2> table_t; };
struct smx : nnet::activ_config {
    static const unsigned exp_table_size = 1024, inv_table_size = 1024;
    static constexpr float exp_scale = 1.0;
    typedef ap_ufixed<18,1> exp_table_t; typedef ap_ufixed<18,1,AP_TRN,AP_SAT> inv_table_t;
    typedef ap_ufixed<21,4> inv_inp_t; typedef ap_ufixed<10,4,AP_TRN,AP_SAT> inp_norm_t; };
int main() {
    static act::table_t s[1024], t[1024]; static smx::exp_table_t e[1024];
    static smx::inv_table_t v[1024];
    nnet::init_sigmoid_table<act, 1024>(s); nnet::init_tanh_table<act, 1024>(t);
    nnet::init_exp_table<smx::inp_norm_t, smx>(e, true);
    nnet::init_invert_table<smx::inv_inp_t, smx>(v);
    for (int i = 0; i < 1024; i++)
        printf("%.17g %.17g %.17g %.17g\n", s[i].to_double(), t[i].to_double(), e[i].to_double(),
               v[i].to_double());
}
"""


@pytest.mark.hls
def test_tables_equal_hls4ml_cpp_entry_by_entry(tmp_path):
    """Every entry of the sigmoid, tanh and softmax (n=5) tables as hls4ml's C++ builds them."""
    import shutil
    import subprocess
    from pathlib import Path

    import hls4ml
    import numpy as np

    from connas4ml_torch.kinds.nonlinear import hls_table
    from connas4ml_torch.kinds.softmax import softmax_tables

    if shutil.which("g++") is None:
        pytest.skip("no g++")
    inc = Path(hls4ml.__file__).parent / "templates" / "vivado"
    (tmp_path / "t.cpp").write_text(TABLES_CPP)
    subprocess.run(["g++", "-O1", "-std=c++17", f"-I{inc}", f"-I{inc / 'ap_types'}", "t.cpp",
                    "-o", "t"], cwd=tmp_path, check=True, capture_output=True)
    out = subprocess.run([str(tmp_path / "t")], check=True, capture_output=True, text=True).stdout
    c = np.array([[float(v) for v in line.split()] for line in out.splitlines()])
    exp_table, inv_table = softmax_tables(5)
    assert np.array_equal(hls_table("sigmoid"), c[:, 0])
    assert np.array_equal(hls_table("tanh"), c[:, 1])
    assert np.array_equal(exp_table, c[:, 2])
    assert np.array_equal(inv_table[1:], c[1:, 3])  # entry 0 (1/0) is never read


def test_table_activation_trains_through_the_smooth_derivative():
    t = SigmoidTable()
    x = torch.linspace(-3, 3, 7, requires_grad=True)
    t(x).sum().backward()
    s = torch.sigmoid(x.detach())
    assert torch.allclose(x.grad, s * (1 - s))
    assert torch.equal(t(torch.tensor([0.0])), torch.tensor([0.5]))


@pytest.mark.slow
@pytest.mark.hls
def test_softmax_output(cost, tmp_path):
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 5), nn.Softmax(dim=-1))
    x = torch.randn(N_ROWS, 10) * 2

    def nll(p, y):
        return F.nll_loss(torch.log(p.clamp_min(1e-4)), y)

    space = cn.SearchSpace(width={"0": [8, 16]}, weight_bits=[4, 6],
                           act_bits={"3": [8, 12], "*": [4, 8]})
    sn, derived, prj = run(model, x, space, cost, tmp_path, loss=nll, n_classes=5)
    assert [layer.class_name for layer in prj.hls_model.get_layers()][-1] == "Softmax"
    with torch.no_grad():
        p = derived(x)
    assert torch.all(p >= 0) and float((p.sum(1) - 1).abs().max()) < 0.05  # a distribution


def test_softmax_and_functions_hls4ml_lacks_are_refused_clearly():
    with pytest.raises(UnsupportedLayerError, match=r"'3' \(Softmax\) has dim=0"):
        cn.searchable(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(0)),
                      cn.SearchSpace())
    with pytest.raises(UnsupportedLayerError, match=r"^the op 'softmax' in forward\(\) \(feeding "
                                                    r"'the model output'\)"):
        cn.searchable(Around(nn.Linear(4, 3), lambda h: F.softmax(h, 1)), cn.SearchSpace(),
                      example_input=torch.randn(4, 4))
    for act in (nn.GELU(), nn.SiLU(), nn.ELU()):
        name = type(act).__name__
        with pytest.raises(UnsupportedLayerError,
                           match=rf"'1' \({name}\): {name} has no bit-exact"):
            cn.searchable(nn.Sequential(nn.Linear(4, 8), act, nn.Linear(8, 2)), cn.SearchSpace())
    with pytest.raises(UnsupportedLayerError,
                       match=r"^the op 'gelu' in forward\(\) \(feeding 'b'\)"):
        cn.searchable(Around(nn.Linear(4, 8), F.gelu, nn.Linear(8, 2)), cn.SearchSpace(),
                      example_input=torch.randn(4, 4))


# ------------------------------------------------------------------------------------------------
# a user's Brevitas model as the starting point
# ------------------------------------------------------------------------------------------------
def brevitas_mlp() -> nn.Sequential:
    return nn.Sequential(
        QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=8),
        QuantLinear(10, 16, bias=True, weight_quant=Int8WeightPerTensorFixedPoint,
                    weight_bit_width=5),
        QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=6),
        QuantLinear(16, 3, bias=True, weight_quant=Int8WeightPerTensorFixedPoint,
                    weight_bit_width=7),
    )


@pytest.mark.slow
@pytest.mark.hls
def test_brevitas_model_is_a_starting_point(cost, tmp_path):
    x = torch.randn(N_ROWS, 10)
    start = brevitas_mlp()
    w1 = start[1].weight.detach().clone()
    sn = cn.searchable(brevitas_mlp(), cn.SearchSpace(), example_input=x[:8])
    # its bit widths are the default choices, its weights and weight thresholds the start
    assert sn.choices()["1"]["weight_bits"] == 5 and sn.choices()["3"]["weight_bits"] == 7
    assert sn.choices()["2"]["bits"] == 6 and sn.choices()["0"]["bits"] == 8
    assert kind_of(sn.net[0]).name == "Quantizer" and kind_of(sn.net[2]).name == "ReLU"
    mine = brevitas_mlp()
    with torch.no_grad():
        mine[1].weight.copy_(w1)
    t = float(mine[1].weight_quant.scale().detach().log2()) + 4  # 5 bits, signed: scale * 2**4
    sn2 = cn.searchable(mine, cn.SearchSpace(), example_input=x[:8])  # (converts it in place)
    assert torch.equal(sn2.net[1].weight, w1)
    assert float(sn2.net[1].weight_log2_threshold) == t
    # a space that names the layers searches them from there
    space = cn.SearchSpace(weight_bits={"1": [4, 5]}, act_bits={"2": [4, 6]})
    run(brevitas_mlp(), x, space, cost, tmp_path)


def test_float_scale_brevitas_layers_are_refused_naming_the_layer():
    model = nn.Sequential(QuantIdentity(bit_width=8), QuantLinear(10, 4, bias=True),
                          QuantReLU(bit_width=4), QuantLinear(4, 2, bias=True))
    with pytest.raises(UnsupportedLayerError) as info:
        cn.searchable(model, cn.SearchSpace(), example_input=torch.randn(4, 10))
    msg = str(info.value)
    assert "module '0' (QuantIdentity)" in msg and "float scale" in msg
    assert "Int8ActPerTensorFixedPoint" in msg and "sentinel" not in msg
    model[0] = QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=8)
    with pytest.raises(UnsupportedLayerError, match=r"module '1' \(QuantLinear\).*float scale"
                                                    r".*Int8WeightPerTensorFixedPoint"):
        cn.searchable(model, cn.SearchSpace(), example_input=torch.randn(4, 10))


# ------------------------------------------------------------------------------------------------
# a new layer kind through the registry alone
# ------------------------------------------------------------------------------------------------
class AdaptiveMaxPool1dKind(LayerKind):
    """``nn.AdaptiveMaxPool1d`` with an input length that is a multiple of its output length.

    Why it is genuinely exact: a max of values on a quantizer's grid is one of those values, so
    the tensor stays on the grid (``grid_ops``: no quantizer needed after it), and hls4ml's max
    pooling compares in the input type. With a whole number of inputs per output the windows are
    uniform, and the TorchScript ONNX exporter writes it as a plain ``MaxPool`` (kernel = stride
    = input / output), which hls4ml maps one to one (the MaxPool kind's 1-D parser fix and
    max-pool types apply). ``check_traced`` refuses, from the traced sizes, the lengths that
    would give windows of different sizes, so the search accepts exactly what the export writes.
    (A clamp like ReLU6 would not do: 6 is not on every grid; a rounding op would not either.)
    Replacing the registry's refused kind of the same name is the whole change.
    """

    name = "AdaptiveMaxPool"
    role = "passive"
    torch_types = (nn.AdaptiveMaxPool1d,)
    onnx_ops = ("MaxPool",)
    grid_ops = ("adaptive_max_pool1d",)

    def to_searchable(self, name, module, space, ctl):
        if module.return_indices:
            raise UnsupportedLayerError(f"{name}: return_indices=True is not exported")
        return None

    def check_traced(self, name, module, node):
        n_in, n_out = node.shape[-1], node.out_shape[-1]
        if len(node.shape) != 3 or n_in % n_out:
            raise UnsupportedLayerError(f"{name!r} (AdaptiveMaxPool1d): {n_in} -> {n_out} is not "
                                        "a whole number of inputs per output")


@pytest.mark.slow
@pytest.mark.hls
def test_a_new_kind_through_the_registry_alone(cost, tmp_path):
    model = nn.Sequential(nn.Conv1d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool1d(4),
                          nn.Flatten(), nn.Linear(8 * 4, 3))
    x = torch.randn(N_ROWS, 3, 16)
    refused = kind_named("AdaptiveMaxPool")
    assert refused.role == "refused"
    with pytest.raises(UnsupportedLayerError, match="adaptive max pooling"):
        cn.searchable(model, cn.SearchSpace())
    register(AdaptiveMaxPool1dKind())  # replaces the refused kind of the same name
    try:
        with pytest.raises(UnsupportedLayerError, match=r"'2' \(AdaptiveMaxPool1d\): 15 -> 4"):
            cn.searchable(nn.Sequential(nn.Conv1d(3, 8, 2), nn.ReLU(), nn.AdaptiveMaxPool1d(4),
                                        nn.Flatten(), nn.Linear(32, 3)),
                          cn.SearchSpace(), example_input=x[:4])
        space = cn.SearchSpace(width={"0": [4, 8]}, weight_bits=[4, 6], act_bits=[4, 8])
        _, derived, prj = run(model, x, space, cost, tmp_path)
        assert isinstance(derived.net[2], nn.AdaptiveMaxPool1d)
        assert any(layer.get_attr("pool_op") == "Max" for layer in prj.hls_model.get_layers())
    finally:
        register(refused)
    assert kind_named("AdaptiveMaxPool") is refused

