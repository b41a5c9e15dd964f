"""What the weight kinds (Dense, Conv1D, Conv2D) share: the searchable weight layer, its
derivation into a Brevitas layer, its export checks and its one-layer build.

A searchable weight layer runs ONE matmul/conv however many choices it has (FBNetV2 + EdMIPS):

* width: output channel ``c`` is scaled by ``m_c = sum_k p_k [c < w_k]`` (channel masking);
* weight bits: the layer runs on ``sum_b p_b Q_b(W)`` (composite weights, conv is linear in W);
* kernel size: a centre-cropped super-kernel, ``W * sum_k p_k M_k``.

With one-hot probabilities each of these is exactly one discrete network, which ``derive``
builds with real Brevitas layers; the equality is the central test of the space package.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from connas4ml_torch.errors import ExportError
from connas4ml_torch.kinds.base import LayerKind, Searchable, arch_param, mix_rows, quant_mix
from connas4ml_torch.quant import (
    FIX,
    FixedPointAct,
    FixedPointBias,
    FixedPointWeight,
    fused_fake_quant,
    log2_threshold_for,
    refuse_float_scale,
)

__all__ = ["SearchableWeight", "WeightKind", "set_threshold", "quant_kwargs", "label"]


def label(name: str) -> str:
    return repr(name) if name else "the model itself"


class SearchableWeight(Searchable):
    """Shared machinery of searchable Linear/Conv layers: shared weights, masks, quantizers."""

    def _setup(self, weight: Tensor, bias: Tensor | None, widths, wbits, bias_bits: int,
               kernels=None) -> None:
        out_ch = weight.shape[0]
        self.widths = tuple(widths)
        self.weight_bits = tuple(wbits)
        self.bias_bits = int(bias_bits)
        self.kernels = tuple(kernels) if kernels else ()
        self.weight = nn.Parameter(weight.detach().clone())
        b = bias.detach().clone() if bias is not None else torch.zeros(out_ch)
        self.bias = nn.Parameter(b)
        self.has_bias = bias is not None
        w_max = float(self.weight.detach().abs().max())
        b_max = float(self.bias.detach().abs().max()) if self.has_bias else 1.0
        self.weight_log2_threshold = nn.Parameter(torch.tensor(log2_threshold_for(w_max)))
        self.bias_log2_threshold = nn.Parameter(torch.tensor(log2_threshold_for(b_max)))
        self.alpha_width = arch_param(len(self.widths))
        self.alpha_weight_bits = arch_param(len(self.weight_bits))
        self.alpha_kernel = arch_param(len(self.kernels))
        # [K, C] indicator of "channel c is active under width choice k"
        ind = torch.stack([(torch.arange(out_ch) < w).float() for w in self.widths])
        self.register_buffer("width_masks", ind, persistent=False)
        if len(self.kernels) > 1:
            full = weight.shape[2:]
            masks = []
            for k in self.kernels:
                m = torch.zeros(full)
                sl = tuple(slice((f - k) // 2, (f - k) // 2 + k) for f in full)
                m[sl] = 1.0
                masks.append(m)
            self.register_buffer("kernel_masks", torch.stack(masks), persistent=False)

    def choice_values(self) -> dict[str, tuple[int, ...]]:
        out = {"width": self.widths, "weight_bits": self.weight_bits}
        if self.kernels:
            out["kernel"] = self.kernels
        return out

    def quant_weight(self) -> Tensor:
        wq = quant_mix(self.weight, self.weight_log2_threshold, self.alpha_weight_bits, self.ctl,
                       self.name, "weight_bits", self.weight_bits, signed=True, narrow=True)
        if self.alpha_kernel is not None:
            wq = wq * mix_rows(self.kernel_masks, *self.ctl.choose(self.alpha_kernel, self.name,
                                                                    "kernel"))
        return wq

    def quant_bias(self) -> Tensor:
        if not self.has_bias:
            return self.bias * 0.0
        return fused_fake_quant(self.bias, self.bias_log2_threshold, self.bias_bits, True)

    def width_mask(self) -> Tensor | None:
        """``m_c = sum_k p_k [c < w_k]`` per output channel (``None``: the width is fixed)."""
        if self.alpha_width is None:
            return None
        return mix_rows(self.width_masks, *self.ctl.choose(self.alpha_width, self.name, "width"))

    def masked_weight_and_bias(self) -> tuple[Tensor, Tensor]:
        """Quantized weight and bias with the width mask folded in: ``conv(x, m W, m b)`` is
        ``m * conv(x, W, b)``, and masking the weight costs far fewer multiplies than masking
        the output (a batch of feature maps), forward and backward."""
        wq, bq = self.quant_weight(), self.quant_bias()
        m = self.width_mask()
        if m is None:
            return wq, bq
        return wq * m.view(-1, *([1] * (wq.dim() - 1))), bq * m

    def _mask(self, y: Tensor) -> Tensor:
        """The width mask applied to an output ``y`` (channels in dimension 1)."""
        m = self.width_mask()
        if m is None:
            return y
        return y * m.view(1, -1, *([1] * (y.dim() - 2)))


def set_threshold(quant_module: nn.Module, value: Tensor) -> None:
    """Copy a learned log2 threshold into a Brevitas quantizer's PARAMETER scaling."""
    for name, p in quant_module.named_parameters():
        if name.endswith("scaling_impl.value"):
            p.data.copy_(value.detach().reshape(p.shape))
            return
    raise RuntimeError(f"no scaling parameter found in {type(quant_module).__name__}")


def quant_kwargs(weight_bits: int, bias_bits: int) -> dict[str, Any]:
    """Brevitas keyword arguments of an exactly exportable weight layer (always a quantized bias:
    the exact export requires one, zeros when the original had none)."""
    return dict(bias=True, weight_quant=FixedPointWeight, weight_bit_width=weight_bits,
                weight_scaling_init=1.0, bias_quant=FixedPointBias, bias_bit_width=bias_bits,
                bias_scaling_init=1.0)


class WeightKind(LayerKind):
    """Base of the weight kinds: derivation by slicing, cost axes, export checks, builds."""

    role = "weight"
    dims = 0  # spatial dimensions of kernel and output (0: Dense)

    def cost_axes(self, module: SearchableWeight, node: Any) -> dict[str, tuple[str, str]]:
        axes = {"out": (module.name, "width"), "wbits": (module.name, "weight_bits"),
                "abits": (node.in_quant, "bits")}
        if node.producer is not None:
            axes["in"] = (node.producer, "width")
        if module.kernels:
            axes["kernel"] = (module.name, "kernel")
        return axes

    def sliced(self, mod: SearchableWeight, ch: dict[str, int], in_width: int | None, block: int
               ) -> tuple[Tensor, Tensor]:
        """The chosen rows (output channels) and input columns of the shared weight and bias."""
        w = mod.weight.detach()[:ch["width"]]
        if in_width is not None:  # input features kept when the producer keeps its first channels
            w = w.index_select(1, torch.arange(in_width * block))
        b = mod.bias.detach()[:ch["width"]]
        return w, (b if mod.has_bias else torch.zeros_like(b))

    def finish(self, new: nn.Module, mod: SearchableWeight, w: Tensor, b: Tensor) -> nn.Module:
        """Copy sliced weights and learned thresholds into a freshly built Brevitas layer."""
        with torch.no_grad():
            new.weight.copy_(w)
            new.bias.copy_(b)
        set_threshold(new.weight_quant, mod.weight_log2_threshold)
        set_threshold(new.bias_quant, mod.bias_log2_threshold)
        return new

    # ---- export ------------------------------------------------------------------------------
    def check_export(self, name: str, m: nn.Module) -> None:
        where = f"module {label(name)} ({type(m).__name__})"
        if not self.is_brevitas(m):
            brev = self.brevitas_types[0] if self.brevitas_types else "a Brevitas layer"
            raise ExportError(
                f"{where} is not quantized: hls4ml would give it a default fixed<16,6> precision "
                f"and the project would not match PyTorch. Fix: use brevitas.nn.{brev} and "
                f"{FIX['weight']}; {FIX['bias']}.")
        if not m.weight_quant.is_quant_enabled:
            raise ExportError(f"{where} has float (unquantized) weights. Fix: {FIX['weight']}.")
        if m.bias is None:
            raise ExportError(f"{where} has no bias; the export is verified with quantized biases "
                              f"only. Fix: {FIX['bias']}.")
        if not m.bias_quant.is_quant_enabled:
            raise ExportError(f"{where} has a float bias: hls4ml truncates it to the default "
                              f"precision (max diff 0.3-1.1 seen). Fix: {FIX['bias']}.")
        refuse_float_scale(where, "weight", m.weight_quant, FIX["weight"])
        refuse_float_scale(where, "bias", m.bias_quant, FIX["bias"])
        for role in ("input", "output"):
            proxy = getattr(m, f"{role}_quant")
            if proxy.is_quant_enabled:
                refuse_float_scale(where, role, proxy,
                                   f"remove the {role}_quant or use a fixed-point one")

    def hls_layer_config(self, name: str, hls: Any) -> dict[str, Any]:
        return dict(hls.for_layer(name))

    def build_layer(self, spec: Any, seed: int, bias_bits: int) -> tuple[nn.Module, Tensor]:
        """``QuantIdentity`` (``input_bits``, range [-1, 1]) then this kind's layer with weights
        uniform in [-1, 1) from ``seed``; batch-1 example input."""
        from brevitas.nn import QuantIdentity

        gen = torch.Generator().manual_seed(seed)
        layer, shape = self.one_layer(spec, quant_kwargs(spec.weight_bits, bias_bits))
        with torch.no_grad():
            layer.weight.copy_(torch.rand(layer.weight.shape, generator=gen) * 2 - 1)
            layer.bias.copy_(torch.rand(layer.bias.shape, generator=gen) - 0.5)
        ident = QuantIdentity(act_quant=FixedPointAct, bit_width=spec.input_bits, min_val=-1.0,
                              max_val=1.0, return_quant_tensor=True)
        model = nn.Sequential(ident, layer).eval()
        return model, torch.rand(shape, generator=gen) * 2 - 1

    def one_layer(self, spec: Any, q: dict[str, Any]) -> tuple[nn.Module, tuple[int, ...]]:
        """The bare Brevitas layer of ``spec`` and its input shape (batch 1)."""
        raise NotImplementedError
