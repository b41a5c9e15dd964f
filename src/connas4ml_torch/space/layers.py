"""Searchable layers: one weight tensor, one matmul/conv, however many choices (FBNetV2 + EdMIPS).

* width: output channel ``c`` is scaled by ``m_c = sum_k p_k [c < w_k]`` (channel masking);
* weight bits: the layer runs on ``sum_b p_b Q_b(W)`` (composite weights, conv is linear in W);
* kernel size: a centre-cropped super-kernel, ``W * sum_k p_k M_k``;
* activation bits: ``sum_b p_b Q_b(x)``.

With one-hot probabilities each of these is exactly one discrete network, which ``derive()``
builds with real Brevitas layers; the equality is the central test of this package.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from connas4ml_torch.quant import fake_quant, log2_threshold_for, mixed_fake_quant

__all__ = ["ArchControl", "SearchableAct", "SearchableLinear", "SearchableConv", "ARCH_PREFIX",
           "choice_argmax"]

ARCH_PREFIX = "alpha_"  # architecture parameters are the parameters whose name starts with this


@dataclass
class ArchControl:
    """How choice probabilities are computed; shared by every layer of one supernet.

    ``mode``: ``"softmax"`` (``softmax(alpha / tau)``), ``"gumbel"`` (Gumbel-softmax sample with
    temperature ``tau``), ``"gumbel_hard"`` (a one-hot sample in the forward pass, the soft
    sample's gradient in the backward pass: every step trains one real architecture, and a
    channel mask can no longer act as a learned gain), ``"reinforce"`` (a one-hot sample of
    ``softmax(alpha / tau)`` with no gradient; ``samples`` keeps ``(logits, drawn index)`` so that
    ``Search`` can score whole sampled networks against each other), ``"auto"`` (``"reinforce"``
    for widths, ``"softmax"`` for every other choice), or ``"argmax"`` (one-hot
    of the current argmax). ``fixed`` maps ``(layer, kind)`` to a forced choice index (used to
    evaluate one discrete network).
    """

    temperature: float = 1.0
    mode: str = "auto"
    fixed: dict[tuple[str, str], int] = field(default_factory=dict)
    samples: dict[tuple[str, str], tuple[Tensor, Tensor]] = field(default_factory=dict)

    def probs(self, alpha: Tensor, layer: str, kind: str) -> Tensor:
        key = (layer, kind)
        if key in self.fixed:
            return F.one_hot(torch.tensor(self.fixed[key], device=alpha.device),
                             alpha.numel()).to(alpha.dtype)
        if self.mode == "argmax":
            return F.one_hot(choice_argmax(alpha), alpha.numel()).to(alpha.dtype)
        if self.mode == "reinforce" or (self.mode == "auto" and kind == "width"):
            # layers tied to one choice (residual adds) share the logits and so the draw
            p = torch.softmax(alpha / self.temperature, dim=0)
            i = next((j for a, j in self.samples.values() if a is alpha), None)
            if i is None:  # the index stays a tensor: no device sync per layer
                i = torch.multinomial(p.detach(), 1)[0]
            self.samples[key] = (alpha, i)
            # "+ 0 * p": a zero gradient still reaches the logits, as DistributedDataParallel
            # expects of every parameter it holds (no find_unused_parameters needed)
            return F.one_hot(i, alpha.numel()).to(alpha.dtype) + 0.0 * p
        if self.mode in ("gumbel", "gumbel_hard"):
            return F.gumbel_softmax(alpha, tau=self.temperature, hard=self.mode == "gumbel_hard")
        return torch.softmax(alpha / self.temperature, dim=0)


def choice_argmax(alpha: Tensor) -> Tensor:
    """Index of the largest logit; ties go to the LAST choice (the widest / most precise).

    Logits start equal, so a plain argmax would pick the smallest network of the space for any
    choice the search has not moved yet; the largest is the accuracy-first default, and a budget
    then steps it down (dual ascent, repair).
    """
    a = alpha.detach()
    return a.numel() - 1 - torch.flip(a, (0,)).argmax()


def _arch_param(n: int) -> nn.Parameter | None:
    return nn.Parameter(torch.zeros(n)) if n > 1 else None


def _quant_mix(x: Tensor, t: Tensor, alpha: nn.Parameter | None, ctl: ArchControl, layer: str,
               kind: str, bits: tuple[int, ...], signed: bool, narrow: bool = False) -> Tensor:
    """``sum_b p_b Q_b(x)`` (fused); a single choice is a plain quantizer."""
    if alpha is None:
        return fake_quant(x, t, bits[0], signed, narrow)
    return mixed_fake_quant(x, t, bits, ctl.probs(alpha, layer, kind), signed, narrow)


class _Searchable(nn.Module):
    """Base: a name (the user's module name) and the shared ArchControl."""

    def __init__(self, name: str, ctl: ArchControl):
        super().__init__()
        self.name = name
        self._ctl = [ctl]  # in a list so nn.Module does not register or deepcopy-split it

    @property
    def ctl(self) -> ArchControl:
        return self._ctl[0]

    def arch(self) -> dict[str, nn.Parameter]:
        """This layer's architecture parameters by choice kind."""
        return {n[len(ARCH_PREFIX):]: p for n, p in self.named_parameters(recurse=False)
                if n.startswith(ARCH_PREFIX)}

    def choice_values(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError


class SearchableAct(_Searchable):
    """ReLU (unsigned) or input (signed) activation quantizer with searchable bit width.

    The log2 threshold is shared by all bit choices. It covers the largest magnitude seen in the
    first ``calibration_steps`` training batches (max over all processes under
    ``torch.distributed``; it only grows), then it is learned. Without that window the range of
    an untrained network's activations would cap a network that has to learn larger outputs.
    """

    calibration_steps = 100

    def __init__(self, name: str, ctl: ArchControl, bits: tuple[int, ...], relu: bool):
        super().__init__(name, ctl)
        self.bits = tuple(bits)
        self.relu = relu
        self.log2_threshold = nn.Parameter(torch.zeros(()))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.register_buffer("calibration_left", torch.tensor(self.calibration_steps))
        self.alpha_bits = _arch_param(len(self.bits))

    def choice_values(self) -> dict[str, tuple[int, ...]]:
        return {"bits": self.bits}

    @torch.no_grad()
    def init_threshold(self, x: Tensor, grow_only: bool = False) -> None:
        """Set the threshold to cover the largest magnitude of ``x``."""
        m = x.detach().abs().max().float()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(m, op=torch.distributed.ReduceOp.MAX)
        t = log2_threshold_for(float(m))
        if not grow_only or t > float(self.log2_threshold):
            self.log2_threshold.fill_(t)
        self.initialized.fill_(True)

    def forward(self, x: Tensor) -> Tensor:
        if self.relu:
            x = torch.relu(x)
        if not bool(self.initialized):
            self.init_threshold(x)
        elif self.training and int(self.calibration_left) > 0:
            self.init_threshold(x, grow_only=True)
            self.calibration_left -= 1
        return _quant_mix(x, self.log2_threshold, self.alpha_bits, self.ctl, self.name, "bits",
                          self.bits, signed=not self.relu)


class _SearchableWeight(_Searchable):
    """Shared machinery of searchable Linear/Conv layers."""

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
        self.alpha_width = _arch_param(len(self.widths))
        self.alpha_weight_bits = _arch_param(len(self.weight_bits))
        self.alpha_kernel = _arch_param(len(self.kernels))
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
        wq = _quant_mix(self.weight, self.weight_log2_threshold, self.alpha_weight_bits, self.ctl,
                        self.name, "weight_bits", self.weight_bits, signed=True, narrow=True)
        if self.alpha_kernel is not None:
            p = self.ctl.probs(self.alpha_kernel, self.name, "kernel")
            wq = wq * torch.tensordot(p, self.kernel_masks, dims=1)
        return wq

    def quant_bias(self) -> Tensor:
        if not self.has_bias:
            return self.bias * 0.0
        return fake_quant(self.bias, self.bias_log2_threshold, self.bias_bits, True)

    def _mask(self, y: Tensor) -> Tensor:
        if self.alpha_width is None:
            return y
        p = self.ctl.probs(self.alpha_width, self.name, "width")
        m = p @ self.width_masks
        return y * m.view(1, -1, *([1] * (y.dim() - 2)))


class SearchableLinear(_SearchableWeight):
    """``nn.Linear`` with searchable width and weight bits."""

    kind = "Dense"

    def __init__(self, name: str, ctl: ArchControl, src: nn.Linear, widths, wbits, bias_bits):
        super().__init__(name, ctl)
        self.in_features, self.out_features = src.in_features, src.out_features
        self._setup(src.weight, src.bias, widths, wbits, bias_bits)

    def forward(self, x: Tensor) -> Tensor:
        return self._mask(F.linear(x, self.quant_weight(), self.quant_bias()))


class SearchableConv(_SearchableWeight):
    """``nn.Conv1d``/``nn.Conv2d`` with searchable width, weight bits and kernel size."""

    def __init__(self, name: str, ctl: ArchControl, src: nn.Conv1d | nn.Conv2d, widths, wbits,
                 bias_bits, kernels=None):
        super().__init__(name, ctl)
        self.dims = 1 if isinstance(src, nn.Conv1d) else 2
        self.kind = f"Conv{self.dims}D"
        self.in_channels, self.out_channels = src.in_channels, src.out_channels
        self.kernel_size = tuple(src.kernel_size)
        self.stride, self.padding = tuple(src.stride), src.padding
        self.dilation, self.groups = tuple(src.dilation), src.groups
        if kernels and len(kernels) > 1:
            if len(set(self.kernel_size)) != 1:
                raise ValueError(f"{name}: kernel-size search needs a square kernel, got "
                                 f"{self.kernel_size}")
            full = self.kernel_size[0]
            if self.padding not in ("same", (full // 2,) * self.dims) or self.stride != (1,) * self.dims:
                raise ValueError(
                    f"{name}: kernel-size search needs stride 1 and 'same' padding "
                    f"(padding={full // 2}); got stride={self.stride} padding={self.padding}"
                )
        self._setup(src.weight, src.bias, widths, wbits, bias_bits, kernels)
        self._conv = F.conv1d if self.dims == 1 else F.conv2d

    def forward(self, x: Tensor) -> Tensor:
        y = self._conv(x, self.quant_weight(), self.quant_bias(), self.stride, self.padding,
                       self.dilation, self.groups)
        return self._mask(y)


def padding_for(kernel: int, full_padding, full_kernel: int):
    """The 'same' padding of a cropped kernel (or the original padding when not cropped)."""
    if kernel == full_kernel:
        return full_padding
    return "same" if full_padding == "same" else kernel // 2
