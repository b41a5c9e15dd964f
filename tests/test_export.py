"""Export to hls4ml: real Brevitas models, real QONNX, real hls4ml projects compiled with g++.

Every compile test asserts 100% bit-exact rows on >= 200 inputs and that the outputs vary across
rows (a constant model would be bit-exact vacuously). Cases are combined to save compiles:
MLP + mixed 2..8 bits + Vivado + io_parallel + per-layer reuse override; Conv2d CNN + MaxPool2d +
padding + io_stream + Vitis; Conv1d CNN + MaxPool1d + io_parallel + Vitis + Resource strategy;
the CLI on the MLP with io_stream + Vivado.

The model builders below have the shape of ``derive()``'s output (an input ``QuantIdentity``,
``QuantLinear``/``QuantConv`` with power-of-two weight and bias quantizers, ``QuantReLU``, max
pooling, flatten, nesting and custom forward code); :func:`calibrate` randomizes weights and sets
every threshold from data so that outputs are non-trivial.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from brevitas.nn import QuantConv1d, QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from torch import nn

from connas4ml_torch.export import BitExactnessWarning, export_to_hls
from connas4ml_torch.hardware.config import HLSConfig
from connas4ml_torch.quant import (
    FixedPointAct,
    FixedPointBias,
    FixedPointUnsignedAct,
    FixedPointWeight,
)


def qlinear(n_in: int, n_out: int, wb: int, bb: int = 8) -> QuantLinear:
    return QuantLinear(n_in, n_out, bias=True, weight_quant=FixedPointWeight, weight_bit_width=wb,
                       weight_scaling_init=1.0, bias_quant=FixedPointBias, bias_bit_width=bb,
                       bias_scaling_init=1.0)


def qconv(dims: int, c_in: int, c_out: int, k: int, wb: int, bb: int = 8, **kw) -> nn.Module:
    cls = QuantConv1d if dims == 1 else QuantConv2d
    return cls(c_in, c_out, k, bias=True, weight_quant=FixedPointWeight, weight_bit_width=wb,
               weight_scaling_init=1.0, bias_quant=FixedPointBias, bias_bit_width=bb,
               bias_scaling_init=1.0, **kw)


def qrelu(bits: int) -> QuantReLU:
    return QuantReLU(act_quant=FixedPointUnsignedAct, bit_width=bits, max_val=1.0)


def qinput(bits: int) -> QuantIdentity:
    return QuantIdentity(act_quant=FixedPointAct, bit_width=bits, min_val=-1.0, max_val=1.0,
                         return_quant_tensor=False)


class JetMLP(nn.Module):
    """16-64-32-32-5 with per-layer bits; nested Sequential and custom forward code."""

    def __init__(self, wbits=(6, 4, 3, 2), abits=(8, 5, 3, 7), bbits=(8, 6, 4, 8)) -> None:
        super().__init__()
        self.inp = qinput(abits[0])
        self.fc1 = qlinear(16, 64, wbits[0], bbits[0])
        self.act1 = qrelu(abits[1])
        self.body = nn.Sequential(qlinear(64, 32, wbits[1], bbits[1]), qrelu(abits[2]),
                                  nn.Sequential(qlinear(32, 32, wbits[2], bbits[2]), qrelu(abits[3])))
        self.out = qlinear(32, 5, wbits[3], bbits[3])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(self.act1(self.fc1(self.inp(x)))))


class CNN2d(nn.Module):
    """Conv2d(pad 1)-ReLU-MaxPool2d-Conv2d-ReLU-MaxPool2d-flatten-Linear-ReLU-Linear on 2x12x12."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = qinput(8)
        self.features = nn.Sequential(
            qconv(2, 2, 6, 3, wb=5, padding=1), qrelu(6), nn.MaxPool2d(2),
            qconv(2, 6, 8, 3, wb=4), qrelu(5), nn.MaxPool2d(2),
        )
        self.fc = qlinear(8 * 2 * 2, 10, 6)
        self.act = qrelu(6)
        self.head = qlinear(10, 4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.inp(x))
        return self.head(self.act(self.fc(x.flatten(1))))


class CNN1d(nn.Module):
    """Conv1d-ReLU-MaxPool1d-Conv1d-ReLU-Flatten-Linear on 3x32."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            qinput(6), qconv(1, 3, 8, 5, wb=3), qrelu(4), nn.MaxPool1d(2),
            qconv(1, 8, 4, 3, wb=7, stride=2), qrelu(8), nn.Flatten(), qlinear(4 * 6, 3, 4),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _threshold_param(m: nn.Module) -> torch.nn.Parameter:
    if isinstance(m, (QuantReLU, QuantIdentity)):
        return m.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl.value
    raise TypeError(type(m))


@torch.no_grad()
def calibrate(model: nn.Module, x: torch.Tensor, seed: int = 0) -> nn.Module:
    """Random weights and biases; every threshold set from the data (log2 of the max seen)."""
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (QuantLinear, QuantConv1d, QuantConv2d)):
            fan_in = m.weight[0].numel()
            m.weight.normal_(0, 1.5 / math.sqrt(fan_in))
            m.bias.uniform_(-0.3, 0.3)
            m.weight_quant.tensor_quant.scaling_impl.value.fill_(math.log2(float(m.weight.abs().max())))
            m.bias_quant.tensor_quant.scaling_impl.value.fill_(math.log2(float(m.bias.abs().max())))

    handles = []

    def pre(m: nn.Module, args: tuple) -> None:  # threshold from the input the quantizer sees
        v = args[0].value if hasattr(args[0], "value") else args[0]
        top = float(v.abs().max()) if not isinstance(m, QuantReLU) else float(v.clamp(min=0).max())
        _threshold_param(m).fill_(math.log2(max(top, 2.0**-8)))

    for m in model.modules():
        if isinstance(m, (QuantReLU, QuantIdentity)):
            handles.append(m.register_forward_pre_hook(pre))
    model.eval()
    model(x)
    for h in handles:
        h.remove()
    return model


# ------------------------------------------------------------------------------------------------
# compile tests (g++; run serially)
# ------------------------------------------------------------------------------------------------
N_ROWS = 256


def _assert_exact(prj, n_rows: int = N_ROWS) -> None:
    v = prj.verification
    assert v is not None and v.n_rows == n_rows >= 200
    assert v.bit_exact and v.bit_exact_rows == n_rows and v.bit_exact_fraction == 1.0, str(v)
    assert v.max_abs_diff == 0.0
    assert v.outputs_vary
    assert v.argmax_agreement == 1.0


def _assert_nontrivial(model: nn.Module, x: torch.Tensor, min_distinct: float = 0.5) -> None:
    with torch.no_grad():
        y = model(x)
    distinct = torch.unique(y, dim=0).shape[0]
    assert distinct >= min_distinct * y.shape[0], f"only {distinct} distinct output rows"
    assert torch.unique(y.argmax(1)).numel() >= 2, "every row predicts the same class"


class _Linear:
    """A stand-in ResourceModel: predicts from the LayerSpec physics (a real object, no mock)."""

    def __init__(self) -> None:
        self.seen: list = []

    def predict(self, specs):
        import pandas as pd

        self.seen = list(specs)
        return pd.DataFrame([{"LUT": s.mults_per_initiation * s.bit_product, "FF": 0.0,
                              "BRAM_18K": 0.0, "DSP": 0.0, "latency_cycles": 1.0,
                              "II": float(s.reuse_factor)} for s in specs])


@pytest.mark.hls
def test_mlp_mixed_precision_vivado_io_parallel(tmp_path):
    # per-layer weight bits 6,4,3,2 ; activation bits 8,5,3,7 ; bias bits 8,6,4,8 (2..8 covered)
    torch.manual_seed(0)
    model = JetMLP()
    x = torch.randn(N_ROWS, 16) * 1.5
    calibrate(model, x)
    _assert_nontrivial(model, x)
    cfg = HLSConfig(backend="Vivado", io_type="io_parallel", reuse_factor=1,
                    layers={"body.0": {"ReuseFactor": 4}, "out": {"Strategy": "Resource"}})
    rm = _Linear()
    prj = export_to_hls(model, cfg, tmp_path / "mlp", x, resource_model=rm, progress=False)
    _assert_exact(prj)
    assert prj.layer_names == {"fc1": "Dense_MatMul_0", "body.0": "Dense_MatMul_1",
                               "body.2.0": "Dense_MatMul_2", "out": "Dense_MatMul_3"}
    hm = prj.hls_model
    assert hm.graph["Dense_MatMul_1"].get_attr("reuse_factor") == 4
    assert hm.graph["Dense_MatMul_0"].get_attr("reuse_factor") == 1
    assert str(hm.graph["Dense_MatMul_3"].get_attr("strategy")).lower() == "resource"
    assert prj.layer_specs["body.0"].reuse_factor == 4
    assert prj.layer_specs["out"].strategy == "Resource"
    assert [s.weight_bits for s in prj.layer_specs.values()] == [6, 4, 3, 2]
    assert [s.input_bits for s in prj.layer_specs.values()] == [8, 5, 3, 7]
    # the input is rounded half-even and saturated onto the input QuantIdentity's grid
    assert prj.input_precision.startswith("fixed<8,") and prj.input_precision.endswith("RND_CONV,SAT>")
    assert hm.config.get_config_value("Backend") == "Vivado"
    assert hm.config.get_config_value("IOType") == "io_parallel"
    assert list(prj.predicted.index) == list(prj.layer_specs) and len(rm.seen) == 4
    assert (tmp_path / "mlp" / "firmware" / "myproject.cpp").is_file()
    assert "bit-exact" in prj.summary() and "Dense_MatMul_1" in prj.summary()


@pytest.mark.hls
def test_cnn2d_maxpool_io_stream_vitis(tmp_path):
    torch.manual_seed(1)
    model = CNN2d()
    x = torch.randn(N_ROWS, 2, 12, 12)  # NCHW, as torch; hls4ml transposes inside
    calibrate(model, x)
    _assert_nontrivial(model, x)
    cfg = HLSConfig(backend="Vitis", io_type="io_stream", part="xcu250-figd2104-2L-e",
                    clock_period=4)
    prj = export_to_hls(model, cfg, tmp_path / "cnn", x, progress=False)
    _assert_exact(prj)
    assert prj.layer_names["features.0"] == "Conv2D_Conv_0"
    assert prj.layer_specs["features.3"].out_size == (4, 4)
    hm = prj.hls_model
    assert hm.config.get_config_value("Backend") == "Vitis"
    assert hm.config.get_config_value("IOType") == "io_stream"
    assert hm.config.get_config_value("Part") == "xcu250-figd2104-2L-e"
    assert float(hm.config.get_config_value("ClockPeriod")) == 4


@pytest.mark.hls
def test_cnn1d_maxpool1d_io_parallel_resource(tmp_path):
    torch.manual_seed(2)
    model = CNN1d()
    x = torch.randn(N_ROWS, 3, 32)
    calibrate(model, x)
    _assert_nontrivial(model, x)
    cfg = HLSConfig(backend="Vitis", io_type="io_parallel", strategy="Resource", reuse_factor=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prj = export_to_hls(model, cfg, tmp_path / "c1", x, progress=False, strict=True)
    _assert_exact(prj)
    assert not [w for w in caught if issubclass(w.category, BitExactnessWarning)]
    # RF 2 is not valid for net.1 (3 channels x kernel 5): hls4ml falls back, we say so and record it
    assert any("reuse factor of 'net.1' from 2 to 1" in str(w.message) for w in caught)
    assert prj.layer_specs["net.1"].reuse_factor == 1
    assert [s.layer_type for s in prj.layer_specs.values()] == ["Conv1D", "Conv1D", "Dense"]
    assert all(s.strategy == "Resource" for s in prj.layer_specs.values())


@pytest.mark.hls
def test_cli_export_mlp_io_stream_vivado(tmp_path, capsys):
    from connas4ml_torch.cli import main

    torch.manual_seed(3)
    model = JetMLP(wbits=(8, 2, 5, 3), abits=(6, 8, 2, 4), bbits=(4, 8, 2, 6))
    x = torch.randn(N_ROWS, 16)
    calibrate(model, x)
    _assert_nontrivial(model, x)
    # Brevitas models do not pickle whole: a factory file + state_dict is the saved form
    (tmp_path / "nets.py").write_text(
        "from test_export import JetMLP\n\n\ndef build():\n"
        "    return JetMLP(wbits=(8, 2, 5, 3), abits=(6, 8, 2, 4), bbits=(4, 8, 2, 6))\n")
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    np.save(tmp_path / "x.npy", x.numpy())
    (tmp_path / "hls.yaml").write_text("backend: Vivado\nio_type: io_stream\nreuse_factor: 1\n")
    rc = main(["export", f"{tmp_path / 'nets.py'}:build", "--weights", str(tmp_path / "weights.pt"),
               "--example", str(tmp_path / "x.npy"),
               "--config", str(tmp_path / "hls.yaml"), "--out", str(tmp_path / "prj"),
               "--strict", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"{N_ROWS}/{N_ROWS} rows bit-exact" in out
    assert (tmp_path / "prj" / "firmware" / "myproject.cpp").is_file()


def test_build_without_vendor_tool_leaves_complete_project(tmp_path, capsys, monkeypatch):
    # a PATH without vitis-run / vivado_hls, also on machines that have them (no compile: fast)
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    model = calibrate(JetMLP(), torch.randn(64, 16))
    prj = export_to_hls(model, HLSConfig(backend="Vitis"), tmp_path / "prj", torch.randn(64, 16),
                        verify=False, compile=False, build=True, progress=False)
    out = capsys.readouterr().out
    assert "synthesis skipped" in out and "vitis-run" in out and str(tmp_path / "prj") in out
    assert prj.synthesized is None and prj.verification is None
    for f in ("build_prj.tcl", "firmware/myproject.cpp", "firmware/parameters.h"):
        assert (tmp_path / "prj" / f).is_file(), f


def test_compare_predicted_with_synthesized():
    import pandas as pd

    from connas4ml_torch.export.synthesis import compare

    pred = pd.DataFrame({"LUT": [100.0, 50.0], "FF": [10.0, 10.0], "BRAM_18K": [0.0, 0.0],
                         "DSP": [1.0, 0.0], "latency": [2.0, 3.0], "II": [1.0, 1.0]})
    synth = pd.DataFrame({"level": ["layer", "model"], "LUT": [1.0, 300.0], "FF": [1.0, 40.0],
                          "BRAM_18K": [0.0, 0.0], "DSP": [0.0, 2.0], "latency": [1.0, 5.0],
                          "II": [1.0, 1.0]})
    t = compare(pred, synth)
    assert t.loc["LUT", "predicted"] == 150.0 and t.loc["LUT", "synthesized"] == 300.0
    assert t.loc["LUT", "predicted/synthesized"] == 0.5
    assert t.loc["DSP", "predicted/synthesized"] == 0.5
