"""The fused fast-path quantizer must equal Brevitas' fixed-point quantizers bit for bit."""

import pytest
import torch
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU

from connas4ml_torch.quant import (
    FixedPointAct,
    FixedPointBias,
    FixedPointUnsignedAct,
    FixedPointWeight,
    QuantGrid,
    fake_quant,
)


@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8])
@pytest.mark.parametrize("threshold", [0.03, 0.7, 1.0, 3.0])
def test_weight_and_bias_match_brevitas(bits, threshold):
    torch.manual_seed(bits)
    layer = QuantLinear(
        12, 7, bias=True, weight_quant=FixedPointWeight, weight_bit_width=bits,
        weight_scaling_init=threshold, bias_quant=FixedPointBias, bias_bit_width=bits,
        bias_scaling_init=threshold / 2,
    )
    with torch.no_grad():
        layer.weight.mul_(3)
        layer.bias.mul_(2)
    t_w = layer.weight_quant.tensor_quant.scaling_impl.value
    t_b = layer.bias_quant.tensor_quant.scaling_impl.value
    ref_w = layer.quant_weight().value
    ref_b = layer.quant_bias().value
    assert torch.equal(fake_quant(layer.weight, t_w, bits, True, narrow=True), ref_w)
    assert torch.equal(fake_quant(layer.bias, t_b, bits, True, narrow=False), ref_b)


@pytest.mark.parametrize("bits", [2, 4, 5, 8])
@pytest.mark.parametrize("max_val", [0.4, 1.0, 6.0])
def test_activations_match_brevitas(bits, max_val):
    torch.manual_seed(0)
    x = torch.randn(64, 9) * 4
    relu = QuantReLU(act_quant=FixedPointUnsignedAct, bit_width=bits, max_val=max_val)
    t = relu.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl.value
    assert torch.equal(fake_quant(torch.relu(x), t, bits, signed=False), relu(x))
    ident = QuantIdentity(act_quant=FixedPointAct, bit_width=bits, min_val=-max_val, max_val=max_val)
    t = ident.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl.value
    assert torch.equal(fake_quant(x, t, bits, signed=True), ident(x))


def test_round_half_even_and_saturation():
    t = torch.tensor(0.0)  # threshold 1 -> 4-bit signed step 1/8
    x = torch.tensor([1 / 16, 3 / 16, -1 / 16, 5.0, -5.0])
    out = fake_quant(x, t, 4, signed=True)
    assert out.tolist() == [0.0, 0.25, 0.0, 7 / 8, -1.0]


def test_gradients_reach_input_and_threshold():
    x = torch.randn(32, requires_grad=True)
    t = torch.tensor(0.3, requires_grad=True)
    fake_quant(x * 4, t, 3, signed=True).sum().backward()
    assert x.grad is not None and t.grad is not None and torch.isfinite(t.grad)


def test_grid_to_hls_type():
    g = QuantGrid.from_threshold(1.0, 8, signed=True)  # threshold 2 -> step 2/128
    assert g.hls_type("RND_CONV", "SAT") == "fixed<8,2,RND_CONV,SAT>"
    assert QuantGrid.from_threshold(2.0, 6, signed=False).hls_type() == "ufixed<6,2>"


@pytest.mark.parametrize("n", [4000, 100_000])  # stacked and in-place paths
@pytest.mark.parametrize("signed,narrow", [(True, True), (True, False), (False, False)])
def test_fused_mixed_quant_equals_composed_values_and_gradients(signed, narrow, n):
    from connas4ml_torch.quant import mixed_fake_quant

    torch.manual_seed(0)
    bits = (2, 4, 6, 8)
    x0 = torch.randn(n) * 3
    t0, a0 = torch.tensor(0.4), torch.randn(4)
    outs, grads = [], []
    for fused in (False, True):
        x = x0.clone().requires_grad_()
        t = t0.clone().requires_grad_()
        alpha = a0.clone().requires_grad_()
        p = torch.softmax(alpha, 0)
        if fused:
            y = mixed_fake_quant(x, t, bits, p, signed, narrow)
        else:
            y = sum(p[k] * fake_quant(x, t, b, signed, narrow) for k, b in enumerate(bits))
        (y * torch.linspace(-1, 1, n)).sum().backward()
        outs.append(y.detach())
        grads.append((x.grad, t.grad, alpha.grad))
    assert torch.allclose(outs[0], outs[1], atol=1e-6)
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n", [1000, 100_000])
def test_fused_mixed_quant_one_hot_is_exact(n):
    from connas4ml_torch.quant import mixed_fake_quant

    x = torch.randn(n) * 2
    t = torch.tensor(0.2)
    p = torch.tensor([0.0, 1.0, 0.0])
    assert torch.equal(mixed_fake_quant(x, t, (3, 5, 8), p, True), fake_quant(x, t, 5, True))
