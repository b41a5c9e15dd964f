"""What the weight kinds (Dense, Conv1D, Conv2D) share on the supernet side: the searchable weight
layer, BatchNorm folding, Brevitas layers as starting points (``_weight_kind.py`` holds the
registry side: derivation, cost axes, export checks, one-layer builds).

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

from connas4ml_torch.kinds.base import Searchable, arch_param, mix_rows, quant_mix
from connas4ml_torch.quant import (
    FixedPointBias,
    FixedPointWeight,
    fused_fake_quant,
    log2_threshold_for,
)

__all__ = ["SearchableWeight", "set_threshold", "quant_kwargs", "label",
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

    def _quantized(self) -> tuple[Tensor, Tensor]:
        """``(quant_weight(), quant_bias())``; in the second pass of an architecture step under
        ``"auto"`` (``ArchControl.memo``), the first pass's values (nothing they depend on has
        changed; a folded BatchNorm depends on the batch, so its layer computes them again)."""
        memo = self.ctl.memo
        if memo is None or self.bn is not None or torch.compiler.is_compiling():
            return self.quant_weight(), self.quant_bias()
        hit = memo.get(self.name)
        if hit is not None and not torch.is_grad_enabled():
            return hit
        wq, bq = self.quant_weight(), self.quant_bias()
        memo[self.name] = (wq.detach(), bq.detach())
        return wq, bq

    def width_mask(self) -> Tensor | None:
        """``m_c = sum_k p_k [c < w_k]`` per output channel (``None``: the width is fixed)."""
        if self.alpha_width is None:
            return None
        return mix_rows(self.width_masks, *self.ctl.choose(self.alpha_width, self.name, "width"))

    def masked_weight_and_bias(self) -> tuple[Tensor, Tensor]:
        """Quantized weight and bias with the width mask folded in: ``conv(x, m W, m b)`` is
        ``m * conv(x, W, b)``, and masking the weight costs far fewer multiplies than masking
        the output (a batch of feature maps), forward and backward."""
        wq, bq = self._quantized()
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
