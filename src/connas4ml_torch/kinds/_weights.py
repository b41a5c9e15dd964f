"""What the weight kinds (Dense, Conv1D, Conv2D) share: the searchable weight layer, its
derivation into a Brevitas layer, its export checks and its one-layer build.

A searchable weight layer runs ONE matmul/conv however many choices it has (FBNetV2 + EdMIPS):

* width: output channel ``c`` is scaled by ``m_c = sum_k p_k [c < w_k]`` (channel masking);
* weight bits: the layer runs on ``sum_b p_b Q_b(W)`` (composite weights, conv is linear in W);
* kernel size: a centre-cropped super-kernel, ``W * sum_k p_k M_k``.

With one-hot probabilities each of these is exactly one discrete network, which ``derive``
builds with real Brevitas layers; the equality is the central test of the space package.

Two things a weight layer may own besides its weights (both set by ``Supernet.analyse``):

* an input quantizer (``<layer>.input_quant``, searchable bits), when its input is exact but off
  the grid (a residual sum): derived as the Brevitas layer's own ``input_quant``;
* a BatchNorm folded into it (quantization-aware folding): the layer quantizes
  ``W * gamma / sigma`` and ``beta + (b - mu) * gamma / sigma``, with the batch statistics in
  training (and the running ones updated, as BatchNorm does) and the running statistics in
  eval mode; ``derive`` folds the same way, so the one-hot supernet equals the derived model.

A user's Brevitas ``QuantLinear``/``QuantConv`` is a starting point: its weight bit width is the
default choice, its weights and weight threshold the start (:func:`brevitas_start`).
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
    FixedPointUnsignedAct,
    FixedPointWeight,
    fused_fake_quant,
    log2_threshold_for,
    refuse_float_scale,
)

__all__ = ["SearchableWeight", "WeightKind", "set_threshold", "quant_kwargs", "label",
           "brevitas_start", "user_input_quant", "fold_factors"]


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

    def start_from(self, log2_threshold: float | None) -> SearchableWeight:
        """Start from a known weight threshold (a Brevitas layer's) instead of the weights' max."""
        if log2_threshold is not None:
            with torch.no_grad():
                self.weight_log2_threshold.fill_(float(log2_threshold))
        return self

    # ---- an input quantizer of its own (its input is a sum) --------------------------------
    @property
    def input_quant(self) -> nn.Module | None:
        return self._modules.get("input_quant")

    def attach_input_quant(self, quant: nn.Module) -> None:
        """Quantize the input first (a pre-hook: ``forward`` is unchanged); the derived Brevitas
        layer gets it as its ``input_quant``."""
        self.input_quant = quant
        self.register_forward_pre_hook(_quantize_input, prepend=True)  # before a BatchNorm fold

    # ---- a BatchNorm folded into it ---------------------------------------------------------
    def fold(self, bn: nn.Module) -> None:
        """Fold ``bn`` (a ``SearchableBatchNorm``) into this layer from now on."""
        self._bn = [bn]  # a list: nn.Module must not register it twice
        self._fold_now = None
        self.register_forward_pre_hook(_batch_fold)
        self.register_forward_hook(_fold_done)

    @property
    def bn(self) -> nn.Module | None:
        bn = getattr(self, "_bn", None)
        return bn[0] if bn else None

    def effective_weight(self) -> Tensor:
        """The weight the layer quantizes: its own, or with a BatchNorm folded into it."""
        bn = self.bn
        if bn is None:
            return self.weight
        scale, _ = self._fold_now if self._fold_now is not None else fold_factors(bn.bn)
        return self.weight * scale.view(-1, *([1] * (self.weight.dim() - 1)))

    def effective_bias(self) -> Tensor:
        bn = self.bn
        if bn is None:
            return self.bias
        scale, mean = self._fold_now if self._fold_now is not None else fold_factors(bn.bn)
        b = self.bias if self.has_bias else torch.zeros_like(self.bias)
        beta = bn.bn.bias if bn.bn.affine else torch.zeros_like(b)
        return beta + (b - mean) * scale

    def raw(self, x: Tensor, w: Tensor) -> Tensor:
        """The layer's linear operation with weight ``w`` and no bias (batch statistics)."""
        raise NotImplementedError

    def quant_weight(self) -> Tensor:
        wq = quant_mix(self.effective_weight(), self.weight_log2_threshold,
                       self.alpha_weight_bits, self.ctl,
                       self.name, "weight_bits", self.weight_bits, signed=True, narrow=True)
        if self.alpha_kernel is not None:
            wq = wq * mix_rows(self.kernel_masks, *self.ctl.choose(self.alpha_kernel, self.name,
                                                                    "kernel"))
        return wq

    def quant_bias(self) -> Tensor:
        if not self.has_bias and self.bn is None:
            return self.bias * 0.0
        return fused_fake_quant(self.effective_bias(), self.bias_log2_threshold, self.bias_bits, True)

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


def _quantize_input(mod: SearchableWeight, args: tuple) -> tuple:
    return (mod.input_quant(args[0]), *args[1:])


def fold_factors(bn: nn.Module, mean: Tensor | None = None, var: Tensor | None = None
                 ) -> tuple[Tensor, Tensor]:
    """``(gamma / sqrt(var + eps), mean)`` of a BatchNorm (its running statistics unless given);
    the one formula the supernet and ``derive`` share, so that both fold to the same floats."""
    mean = bn.running_mean if mean is None else mean
    var = bn.running_var if var is None else var
    gamma = bn.weight if bn.affine else torch.ones_like(mean)
    return gamma / torch.sqrt(var + bn.eps), mean


def _batch_fold(mod: SearchableWeight, args: tuple) -> None:
    """In training, fold with this batch's statistics (from the float layer, gradients through
    them as in BatchNorm) and update the running statistics; in eval mode, the running ones."""
    bn = mod.bn.bn
    if not mod.training:
        mod._fold_now = None
        return
    z = mod.raw(args[0], mod.weight)  # the input quantizer's pre-hook, if any, ran before
    if mod.has_bias:
        z = z + mod.bias.view(1, -1, *([1] * (z.dim() - 2)))
    dims = [0] + list(range(2, z.dim()))
    mean = z.mean(dims)
    var = z.var(dims, unbiased=False)
    with torch.no_grad():
        n = z.numel() // z.shape[1]
        bn.num_batches_tracked += 1
        m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
        bn.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
        bn.running_var.mul_(1 - m).add_(var.detach() * n / max(n - 1, 1), alpha=m)
    mod._fold_now = fold_factors(bn, mean, var)


def _fold_done(mod: SearchableWeight, args: tuple, out: Tensor) -> None:
    mod._fold_now = None  # batch statistics belong to one forward pass (and would not deepcopy)


def brevitas_start(name: str, module: nn.Module, space: Any
                   ) -> tuple[tuple[int, ...], float | None]:
    """``(weight bit choices, log2 weight threshold)`` of a user's Brevitas weight layer.

    Its weight bit width is the choice unless ``SearchSpace.weight_bits`` names the layer; a
    float-scale weight quantizer, an output quantizer or a disabled weight quantizer are refused
    naming the layer.
    """
    from connas4ml_torch.errors import UnsupportedLayerError
    from connas4ml_torch.kinds.activation import brevitas_grid

    where = f"module {label(name)} ({type(module).__name__})"
    if not module.weight_quant.is_quant_enabled:
        return space.weight_bits_for(name), None
    if module.output_quant.is_quant_enabled:
        raise UnsupportedLayerError(
            f"searchable(): {where} has an output quantizer; the search quantizes activations "
            "with modules. Fix: remove output_quant and put a QuantIdentity (or QuantReLU) after "
            "the layer.")
    bits, t, _ = brevitas_grid(where, module.weight_quant,
                               "use weight_quant=connas4ml_torch.quant.FixedPointWeight (or "
                               "brevitas.quant.Int8WeightPerTensorFixedPoint)")
    return space.weight_bits_for(name, (bits,)), t


def user_input_quant(name: str, module: nn.Module, new: SearchableWeight, space: Any,
                     ctl: Any) -> SearchableWeight:
    """Keep a user's Brevitas layer's own input quantizer (as ``<name>.input_quant``)."""
    from connas4ml_torch.kinds.activation import SearchableAct, brevitas_grid

    if not module.input_quant.is_quant_enabled:
        return new
    where = f"module {label(name)} ({type(module).__name__})"
    bits, t, signed = brevitas_grid(where, module.input_quant,
                                    "use input_quant=connas4ml_torch.quant.FixedPointAct")
    qname = f"{name}.input_quant"
    q = SearchableAct(qname, ctl, space.act_bits_for(qname, (bits,)), relu=not signed)
    new.attach_input_quant(q.start_from(t))
    return new


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

    def weight_stats(self, mod: SearchableWeight, ctx: Any) -> dict[str, float]:
        """``n_nonzero_weights`` and ``csd_digits`` of the weights one choice of the layer would
        export (the first ``out`` rows, the producer's first ``in`` channels, the cropped
        kernel, on the ``wbits`` grid of the learned threshold): under the Latency strategy
        hls4ml bakes the weights in as constants, so these set the multipliers' cost."""
        import math

        import numpy as np

        from connas4ml_torch.hardware.weights import csd_digits
        from connas4ml_torch.quant import int_range

        v = ctx.values
        ch = {"width": int(v["out"])}
        w, _ = self.sliced(mod, ch, v.get("in"), ctx.block)
        k = v.get("kernel")
        if k is not None and w.dim() > 2 and k != w.shape[-1]:
            lo = (w.shape[-1] - k) // 2
            w = w[(slice(None), slice(None)) + (slice(lo, lo + k),) * (w.dim() - 2)]
        bits = int(v["wbits"])
        scale = 2.0 ** (math.ceil(float(mod.weight_log2_threshold.detach())) - (bits - 1))
        lo_i, hi_i = int_range(bits, signed=True, narrow=True)
        q = torch.clamp(torch.round(w.double() / scale), lo_i, hi_i).to(torch.int64).numpy()
        nz = q[q != 0]
        return {"n_nonzero_weights": int(nz.size), "csd_digits": float(np.sum(csd_digits(nz)))}

    def export_weight_stats(self, t: Any) -> dict[str, float]:
        """:meth:`weight_stats` of a traced Brevitas layer's quantized weights (the constants
        the exported project holds)."""
        import numpy as np

        from connas4ml_torch.hardware.weights import csd_digits

        with torch.no_grad():
            q = t.module.quant_weight()
            ints = torch.round(q.value / q.scale).to(torch.int64).cpu().numpy()
        nz = ints[ints != 0]
        return {"n_nonzero_weights": int(nz.size), "csd_digits": float(np.sum(csd_digits(nz)))}

    def sliced(self, mod: SearchableWeight, ch: dict[str, int], in_width: int | None, block: int
               ) -> tuple[Tensor, Tensor]:
        """The chosen rows (output channels) and input columns of the shared weight and bias
        (a folded BatchNorm folded in with its running statistics, as in eval mode)."""
        if mod.bn is not None:
            mod._fold_now = None  # the running statistics, as in eval mode
        with torch.no_grad():
            w_full, b_full = mod.effective_weight().detach(), mod.effective_bias().detach()
        w = w_full[:ch["width"]]
        if in_width is not None:  # input features kept when the producer keeps its first channels
            w = w.index_select(1, torch.arange(in_width * block))
        b = b_full[:ch["width"]]
        return w, (b if mod.has_bias or mod.bn is not None else torch.zeros_like(b))

    def input_kwargs(self, mod: SearchableWeight, choices: dict[str, dict[str, int]]
                     ) -> dict[str, Any]:
        """Brevitas keyword arguments of the layer's own input quantizer (none without one)."""
        q = mod.input_quant
        if q is None:
            return {}
        quant = FixedPointAct if q.signed else FixedPointUnsignedAct
        kw = dict(input_quant=quant, input_bit_width=choices[q.name]["bits"], input_max_val=1.0)
        if q.signed:
            kw["input_min_val"] = -1.0
        return kw

    def finish(self, new: nn.Module, mod: SearchableWeight, w: Tensor, b: Tensor) -> nn.Module:
        """Copy sliced weights and learned thresholds into a freshly built Brevitas layer."""
        with torch.no_grad():
            new.weight.copy_(w)
            new.bias.copy_(b)
        set_threshold(new.weight_quant, mod.weight_log2_threshold)
        set_threshold(new.bias_quant, mod.bias_log2_threshold)
        if mod.input_quant is not None:
            set_threshold(new.input_quant, mod.input_quant.log2_threshold)
        return new

    def check_traced(self, name: str, module: nn.Module, node: Any) -> None:
        return None

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
