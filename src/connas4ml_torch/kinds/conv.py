"""Conv1D / Conv2D: ``nn.Conv1d``/``nn.Conv2d`` -> searchable width, weight bits and kernel size
-> ``QuantConv1d``/``QuantConv2d`` -> hls4ml ``Conv1D``/``Conv2D``.

Kernel sizes are searched with a centre-cropped super-kernel, which needs stride 1 and 'same'
padding; widths and bits work with any stride and padding (zero padding, groups 1).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from connas4ml_torch.errors import ExportError, UnsupportedLayerError
from connas4ml_torch.kinds._weight_kind import WeightKind
from connas4ml_torch.kinds._weights import (
    SearchableWeight,
    brevitas_start,
    label,
    quant_kwargs,
    user_input_quant,
)
from connas4ml_torch.kinds.base import ArchControl, SpecContext, register


def padding_for(kernel: int, full_padding, full_kernel: int):
    """The 'same' padding of a cropped kernel (or the original padding when not cropped)."""
    if kernel == full_kernel:
        return full_padding
    return "same" if full_padding == "same" else kernel // 2


class SearchableConv(SearchableWeight):
    """``nn.Conv1d``/``nn.Conv2d`` with searchable width, weight bits and kernel size."""

    def __init__(self, name: str, ctl: ArchControl, src: nn.Conv1d | nn.Conv2d, widths, wbits,
                 bias_bits, kernels=None):
        super().__init__(name, ctl)
        self.dims = 1 if isinstance(src, nn.Conv1d) else 2
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

    @property
    def kind(self) -> str:  # type: ignore[override]
        return f"Conv{self.dims}D"

    def forward(self, x: Tensor) -> Tensor:
        w, b = self.masked_weight_and_bias()
        return self._conv(x, w, b, self.stride, self.padding, self.dilation, self.groups)

    def raw(self, x: Tensor, w: Tensor) -> Tensor:
        if self.alpha_kernel is not None:  # the kernel sizes the choice mixes, as forward
            p = self.ctl.probs(self.alpha_kernel, self.name, "kernel")
            w = w * torch.tensordot(p, self.kernel_masks, dims=1)
        return self._conv(x, w, None, self.stride, self.padding, self.dilation, self.groups)


class Conv(WeightKind):
    """One kind per dimensionality (``Conv1D``, ``Conv2D``); the code is shared."""

    searchable_type = SearchableConv
    onnx_ops = ("Conv", "Add")
    onnx_weight_op = "Conv"

    def __init__(self, dims: int):
        self.dims = dims
        self.name = f"Conv{dims}D"
        self.torch_types = (nn.Conv1d,) if dims == 1 else (nn.Conv2d,)
        self.brevitas_types = (f"QuantConv{dims}d",)
        self.hls_classes = (self.name, f"PointwiseConv{dims}D")

    def matches(self, module: nn.Module) -> bool:
        return super().matches(module) or (isinstance(module, SearchableConv)
                                           and module.dims == self.dims)

    def to_searchable(self, name: str, module: nn.Module, space: Any, ctl: ArchControl):
        if module.groups != 1 or module.padding_mode != "zeros":
            raise UnsupportedLayerError(
                f"searchable(): {name} ({type(module).__name__}) uses groups={module.groups}, "
                f"padding_mode={module.padding_mode!r}; only groups=1 with zero padding is "
                "supported")
        wbits, t = (brevitas_start(name, module, space) if self.is_brevitas(module)
                    else (space.weight_bits_for(name), None))
        new = SearchableConv(name, ctl, module, space.widths_for(name, module.out_channels),
                             wbits, space.bias_bits, space.kernels_for(name, module.kernel_size[0]))
        if self.is_brevitas(module):
            user_input_quant(name, module, new, space, ctl)
        return new.start_from(t)

    def derive(self, mod: SearchableConv, choices: dict[str, dict[str, int]], ctx: Any):
        from brevitas.nn import QuantConv1d, QuantConv2d

        ch = choices[mod.name]
        w, b = self.sliced(mod, ch, ctx.in_width, ctx.block)
        full_k = mod.kernel_size[0]
        k = ch.get("kernel", full_k)
        if k != full_k:
            lo = (full_k - k) // 2
            w = w[(slice(None), slice(None)) + (slice(lo, lo + k),) * mod.dims]
        cls = QuantConv1d if mod.dims == 1 else QuantConv2d
        new = cls(w.shape[1], w.shape[0], kernel_size=tuple(w.shape[2:]), stride=mod.stride,
                  padding=padding_for(k, mod.padding, full_k), dilation=mod.dilation,
                  **quant_kwargs(ch["weight_bits"], mod.bias_bits),
                  **self.input_kwargs(mod, choices))
        return self.finish(new, mod, w, b)

    def spec(self, ctx: SpecContext, hls: Any):
        from connas4ml_torch.hardware.layerspec import LayerSpec

        v, mod = ctx.values, ctx.module
        n_in = v["in"] if "in" in v else ctx.in_shape[1]
        k = v.get("kernel", mod.kernel_size[0])
        stats = self.weight_stats(mod, ctx) if ctx.with_weights else {}
        return LayerSpec(self.name, int(n_in), int(v["out"]), (k,) * mod.dims,
                         tuple(ctx.out_shape[2:]), weight_bits=int(v["wbits"]),
                         input_bits=int(v["abits"]), **stats).with_hls(hls, ctx.name)

    def export_spec(self, t: Any, hls: Any):
        from connas4ml_torch.hardware.layerspec import LayerSpec

        m = t.module
        return LayerSpec(self.name, int(m.in_channels), int(m.out_channels),
                         kernel=tuple(int(k) for k in m.kernel_size),
                         out_size=tuple(int(s) for s in t.out_shape[2:2 + self.dims]),
                         weight_bits=t.weight.bits, input_bits=t.input.bits,
                         **self.export_weight_stats(t)).with_hls(hls, t.name)

    def check_export(self, name: str, m: nn.Module) -> None:
        super().check_export(name, m)
        bad = []
        if m.groups != 1:
            bad.append(f"groups={m.groups}")
        if any(d != 1 for d in m.dilation):
            bad.append(f"dilation={m.dilation}")
        if m.padding_mode != "zeros":
            bad.append(f"padding_mode={m.padding_mode!r}")
        if isinstance(m.padding, str):
            bad.append(f"padding={m.padding!r}")
        if bad:
            raise ExportError(
                f"module {label(name)} ({type(m).__name__}) uses {', '.join(bad)}, not supported by "
                "the bit-exact export. Fix: use groups=1, dilation=1, integer padding with "
                "padding_mode='zeros'.")

    def one_layer(self, spec: Any, q: dict[str, Any]):
        from brevitas.nn import QuantConv1d, QuantConv2d

        cls = QuantConv1d if self.dims == 1 else QuantConv2d
        k = spec.kernel if self.dims == 2 else spec.kernel[0]
        layer = cls(spec.n_in, spec.n_out, kernel_size=k, stride=1, padding=0, **q)
        shape = (1, spec.n_in, *(o + kk - 1 for o, kk in zip(spec.out_size, spec.kernel)))
        return layer, shape


register(Conv(1))
register(Conv(2))
