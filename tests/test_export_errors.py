"""Fast refusal tests of the export: nothing compiled, nothing written (each well under 2 s)."""

from __future__ import annotations

import pytest
import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from test_export import CNN2d, JetMLP, calibrate, qconv, qinput, qlinear, qrelu
from torch import nn

from connas4ml_torch.export import ExportError, convert, export_to_hls, fold_batchnorm, layer_specs
from connas4ml_torch.export.checks import check_exportable
from connas4ml_torch.export.precision import required_result_type, result_type_covers
from connas4ml_torch.hardware.config import HLSConfig
from connas4ml_torch.quant import FixedPointBias, FixedPointWeight


def _refused(model: nn.Module, x: torch.Tensor, tmp_path, *must_contain: str) -> str:
    out = tmp_path / "prj"
    with pytest.raises(ExportError) as info:
        export_to_hls(model, HLSConfig(), out, x, progress=False)
    assert not out.exists(), "a refused export must not write anything"
    msg = str(info.value)
    for s in must_contain:
        assert s in msg, f"{s!r} not in {msg!r}"
    return msg


def test_float_scale_quantizers_refused(tmp_path):
    # Brevitas' default QuantLinear quantizer has a float scale: hls4ml would silently go to chance
    model = nn.Sequential(qinput(8), QuantLinear(16, 5, bias=True, bias_quant=FixedPointBias,
                                                  bias_bit_width=8, bias_scaling_init=1.0))
    _refused(model, torch.randn(8, 16), tmp_path, "'1'", "float scale", "FixedPointWeight")


def test_float_batchnorm_refused_and_fold_named(tmp_path):
    model = nn.Sequential(qinput(8), qlinear(16, 8, 4), nn.BatchNorm1d(8), qrelu(4), qlinear(8, 3, 4))
    _refused(model, torch.randn(8, 16), tmp_path, "'2'", "BatchNorm", "fold_batchnorm")


@pytest.mark.parametrize(
    "layer, name, why",
    [(nn.GELU(), "GELU", "no bit-exact hls4ml implementation"),
     (nn.AvgPool1d(3), "AvgPool1d", "not a power of two"),
     (nn.AdaptiveAvgPool1d(2), "AdaptiveAvgPool1d", "derive() writes"),
     (nn.LSTM(8, 8), "LSTM", "not supported")],
)
def test_unsupported_layer_refused(tmp_path, layer, name, why):
    model = nn.Sequential(qinput(8), qlinear(16, 8, 4), qrelu(4))
    model.add_module("odd", layer)
    _refused(model, torch.randn(8, 16), tmp_path, "'odd'", name, why, "Fix")


def test_float_sigmoid_is_refused_the_table_module_is_not(tmp_path):
    # a float nn.Sigmoid is not hls4ml's lookup table; derive() writes the table module
    from connas4ml_torch.kinds.activation import grid_quantizer
    from connas4ml_torch.kinds.nonlinear import SigmoidTable

    model = nn.Sequential(qinput(8), qlinear(16, 8, 4), nn.Sigmoid())
    _refused(model, torch.randn(8, 16), tmp_path, "'2'", "Sigmoid", "lookup table", "Fix")
    model[2] = SigmoidTable()
    model.add_module("3", grid_quantizer(0.0, 6, signed=False))
    model.add_module("4", qlinear(8, 2, 4))
    trace = check_exportable(model, torch.randn(8, 16))
    assert [t.input.bits for t in trace.layers] == [8, 6]


def test_functional_sigmoid_is_refused_at_export_naming_its_scope(tmp_path):
    class Tail(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp, self.fc = qinput(8), qlinear(16, 4, 4)

        def forward(self, x):
            return torch.sigmoid(self.fc(self.inp(x)))  # the float function, not the table

    _refused(Tail(), torch.randn(16, 16), tmp_path, "Sigmoid", "model's own forward()",
             "lookup-table")


def test_unquantized_linear_and_relu_refused(tmp_path):
    _refused(nn.Sequential(qinput(8), nn.Linear(16, 4)), torch.randn(4, 16), tmp_path,
             "'1'", "not quantized", "QuantLinear")
    _refused(nn.Sequential(qinput(8), qlinear(16, 4, 4), nn.ReLU(), qlinear(4, 2, 4)),
             torch.randn(4, 16), tmp_path, "'2'", "unquantized activation", "QuantReLU")


def test_float_bias_refused(tmp_path):
    lin = QuantLinear(16, 4, bias=True, weight_quant=FixedPointWeight, weight_bit_width=4,
                      weight_scaling_init=1.0)
    _refused(nn.Sequential(qinput(8), lin), torch.randn(4, 16), tmp_path, "float bias",
             "FixedPointBias")


def test_unquantized_input_refused(tmp_path):
    _refused(nn.Sequential(qlinear(16, 4, 4), qrelu(4), qlinear(4, 2, 4)), torch.randn(4, 16),
             tmp_path, "'0'", "unquantized network input", "QuantIdentity")


def test_float_code_in_forward_refused(tmp_path):
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp, self.fc = qinput(8), qlinear(16, 4, 4)

        def forward(self, x):
            return self.fc(self.inp(x) * 0.3)  # off the input grid

    _refused(Scaled(), torch.randn(16, 16), tmp_path, "'fc'", "not on the grid")


def test_custom_op_in_exported_graph_refused(tmp_path):
    class Tail(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp, self.fc = qinput(8), qlinear(16, 4, 4)

        def forward(self, x):
            return torch.sigmoid(self.fc(self.inp(x)))

    _refused(Tail(), torch.randn(16, 16), tmp_path, "Sigmoid")


def test_grouped_conv_refused(tmp_path):
    conv = QuantConv2d(4, 4, 3, groups=2, bias=True, weight_quant=FixedPointWeight,
                       weight_bit_width=4, weight_scaling_init=1.0, bias_quant=FixedPointBias,
                       bias_bit_width=8, bias_scaling_init=1.0)
    _refused(nn.Sequential(qinput(8), conv), torch.randn(2, 4, 6, 6), tmp_path, "groups=2")


def test_distributed_arithmetic_refused(tmp_path):
    cfg = HLSConfig()
    cfg.strategy = "distributed_arithmetic"  # HLSConfig refuses it; a mutated one must not pass
    with pytest.raises(ExportError, match="distributed_arithmetic"):
        convert(JetMLP(), cfg, tmp_path / "prj", torch.randn(4, 16))
    assert not (tmp_path / "prj").exists()


def test_bad_example_input_refused(tmp_path):
    _refused(JetMLP(), torch.randn(4, 12), tmp_path, "example_input", "(4, 12)")


def test_fold_batchnorm_float_sequential_and_custom_forward():
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 4 * 4, 3, bias=False), nn.BatchNorm1d(3))
    x = torch.randn(16, 2, 6, 6)
    seq.train()
    for _ in range(3):  # non-trivial running statistics
        seq(x * 3 + 1)
    seq.eval()
    ref = seq(x)
    fold_batchnorm(seq)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in seq.modules())
    torch.testing.assert_close(seq(x), ref, rtol=1e-5, atol=1e-5)

    class Custom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.bn = nn.Linear(5, 3), nn.BatchNorm1d(3)

        def forward(self, x):
            return self.bn(self.fc(x)).relu()

    c = Custom()
    c.bn.running_mean.uniform_(-1, 1)
    c.bn.running_var.uniform_(0.5, 2)
    c.eval()
    xi = torch.randn(7, 5)
    ref = c(xi)
    with pytest.raises(ExportError, match="example_input"):
        fold_batchnorm(c)  # not in a Sequential: needs the forward pass to find the pair
    fold_batchnorm(c, xi)
    assert isinstance(c.bn, nn.Identity)
    torch.testing.assert_close(c(xi), ref, rtol=1e-5, atol=1e-5)


def test_fold_batchnorm_brevitas_then_checks_pass():
    model = nn.Sequential(qinput(8), qlinear(16, 8, 6), nn.BatchNorm1d(8), qrelu(6), qlinear(8, 3, 6))
    x = torch.randn(32, 16)
    with pytest.raises(ExportError, match="fold_batchnorm"):
        check_exportable(model, x)
    fold_batchnorm(model, x)
    check_exportable(model, x)


def test_fold_batchnorm_not_after_linear_refused():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.BatchNorm1d(4))
    with pytest.raises(ExportError, match="'2'"):
        fold_batchnorm(model, torch.randn(3, 4))


def test_layer_specs_mlp_and_cnn():
    cfg = HLSConfig(backend="Vivado", reuse_factor=2, io_type="io_stream",
                    layers={"body.0": {"ReuseFactor": 8, "Strategy": "Resource"}})
    specs = layer_specs(JetMLP(), torch.randn(8, 16), cfg)
    assert list(specs)[:4] == ["fc1", "body.0", "body.2.0", "out"]  # weight layers in call order
    acts = {n: s for n, s in specs.items() if s.layer_type == "Activation"}
    assert acts and all(s.activation == "relu" for s in acts.values())  # then the ReLUs
    s = specs["body.0"]
    assert (s.layer_type, s.n_in, s.n_out, s.weight_bits, s.input_bits) == ("Dense", 64, 32, 4, 5)
    assert (s.reuse_factor, s.strategy, s.io_type, s.backend) == (8, "Resource", "io_stream", "Vivado")
    assert specs["fc1"].input_bits == 8 and specs["out"].input_bits == 7
    assert specs["fc1"].reuse_factor == 2 and specs["fc1"].strategy == "Latency"

    specs = layer_specs(CNN2d(), torch.randn(2, 2, 12, 12), HLSConfig())
    c0, c1 = specs["features.0"], specs["features.3"]
    assert (c0.layer_type, c0.n_in, c0.n_out, c0.kernel, c0.out_size) == ("Conv2D", 2, 6, (3, 3), (12, 12))
    assert (c1.kernel, c1.out_size, c1.input_bits, c1.weight_bits) == ((3, 3), (4, 4), 6, 4)
    assert specs["fc"].n_in == 32 and specs["head"].input_bits == 6


def test_required_accumulator_is_exact_bound():
    model = calibrate(JetMLP(), torch.randn(64, 16))
    trace = check_exportable(model, torch.randn(64, 16))
    last = trace.layers[-1]
    frac, ib = required_result_type(last)
    assert frac == max(-(last.weight.log2_scale + last.input.log2_scale), -last.bias.log2_scale)
    # a type one integer bit too narrow is rejected, the exact one accepted
    class P:  # hls4ml FixedPrecisionType's relevant attributes
        def __init__(self, w, i, signed=True):
            self.width, self.integer, self.signed = w, i, signed
    assert result_type_covers(P(frac + ib, ib), frac, ib)
    assert not result_type_covers(P(frac + ib - 1, ib - 1), frac, ib)
    assert not result_type_covers(P(frac + ib - 1, ib), frac, ib)
    assert not result_type_covers(P(frac + ib, ib, signed=False), frac, ib)


def test_non_power_of_two_activation_refused(tmp_path):
    # QuantReLU's Brevitas default has a float scale
    model = nn.Sequential(qinput(8), qlinear(16, 4, 4), QuantReLU(bit_width=4), qlinear(4, 2, 4))
    _refused(model, torch.randn(8, 16), tmp_path, "'2'", "float scale")
    model = nn.Sequential(QuantIdentity(bit_width=8, return_quant_tensor=False), qlinear(16, 4, 4))
    _refused(model, torch.randn(8, 16), tmp_path, "'0'", "float scale", "FixedPointAct")


@pytest.mark.parametrize("x, words", [
    (torch.randn(16), ["shape (16,)", "batch dimension"]),
    (torch.randn(0, 16), ["is empty"]),
    (torch.randint(0, 5, (8, 16)), ["dtype torch.int64", "x.float()"]),
    (torch.tensor([[float("nan")] * 16] * 4), ["64 NaN/inf values"]),
    ([[0.0] * 16] * 4, ["must be a torch.Tensor"]),
])
def test_bad_example_inputs_say_what_is_wrong(tmp_path, x, words):
    msg = _refused(calibrate(JetMLP(), torch.randn(64, 16)), x, tmp_path)
    for w in words:
        assert w in msg, (w, msg)


def test_existing_project_is_not_overwritten_and_a_failed_export_leaves_nothing(tmp_path):
    out = tmp_path / "prj"
    (out / "firmware").mkdir(parents=True)
    edited = out / "firmware" / "myproject.cpp"
    edited.write_text("// the user's edits")
    model = calibrate(JetMLP(), torch.randn(64, 16))
    with pytest.raises(ExportError, match=r"exists and is not empty.*overwrite=True"):
        export_to_hls(model, HLSConfig(), out, torch.randn(8, 16), progress=False)
    assert edited.read_text() == "// the user's edits"
    # a refused model with overwrite=True: the old project survives, no temporary folder is left
    bad = nn.Sequential(qinput(8), qlinear(16, 8, 4), nn.BatchNorm1d(8), qrelu(4), qlinear(8, 3, 4))
    with pytest.raises(ExportError, match="BatchNorm"):
        export_to_hls(bad, HLSConfig(), out, torch.randn(8, 16), progress=False, overwrite=True)
    assert edited.read_text() == "// the user's edits"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prj"]


def test_sum_of_conv_feature_maps_refused_before_qonnx_loops(tmp_path):
    # qonnx 1.0's channels-last conversion never ends on such a sum: refuse it before
    class ConvResidual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp, self.c1, self.r1 = qinput(8), qconv(1, 3, 4, 3, 6, padding=1), qrelu(6)
            self.c2, self.r2, self.r3 = qconv(1, 4, 4, 3, 6, padding=1), qrelu(6), qrelu(6)
            self.fc = qlinear(4 * 8, 2, 6)

        def forward(self, x):
            h = self.r1(self.c1(self.inp(x)))
            return self.fc(self.r3(h + self.r2(self.c2(h))).flatten(1))

    _refused(ConvResidual(), torch.randn(8, 3, 8), tmp_path, "adds two feature maps",
             "channels-last", "Fix")
