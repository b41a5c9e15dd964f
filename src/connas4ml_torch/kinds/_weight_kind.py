"""What the weight kinds (Dense, Conv1D, Conv2D) share on the registry side: derivation by
slicing the shared weights, cost axes and weight statistics, the export checks of a Brevitas
weight layer, and the one-layer network a synthesis sweep builds (``_weights.py`` holds the
searchable layer itself)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from connas4ml_torch.errors import ExportError
from connas4ml_torch.kinds._weights import SearchableWeight, label, quant_kwargs, set_threshold
from connas4ml_torch.kinds.base import LayerKind
from connas4ml_torch.quant import FIX, FixedPointAct, FixedPointUnsignedAct, refuse_float_scale

__all__ = ["WeightKind"]


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
        hls4ml bakes the weights in as constants, so these set the multipliers' cost.

        Every choice keeps a prefix of rows and columns, so the counts of one (kernel, bits)
        are read off 2-D prefix sums computed once per table build (``ctx.memo``): a table
        build over all widths costs one quantization per bit width, not one per combination."""
        v = ctx.values
        key = ("weight_stats", v.get("kernel"), int(v["wbits"]))
        memo = ctx.memo if ctx.memo is not None else {}
        if key not in memo:
            memo[key] = self._prefix_counts(mod, ctx.block, v.get("kernel"), int(v["wbits"]))
        nz, digits = memo[key]
        rows = int(v["out"])
        cols = int(v["in"]) * ctx.block if v.get("in") is not None else nz.shape[1] - 1
        return {"n_nonzero_weights": int(nz[rows, cols]), "csd_digits": float(digits[rows, cols])}

    def _prefix_counts(self, mod: SearchableWeight, block: int, kernel: int | None, bits: int
                       ) -> tuple[Any, Any]:
        """``[rows + 1, cols + 1]`` prefix sums of non-zero weights and their CSD digits on the
        ``bits`` grid (kernel positions summed per row and column)."""
        import math

        import numpy as np

        from connas4ml_torch.hardware.weights import csd_digits
        from connas4ml_torch.quant import int_range

        w, _ = self.sliced(mod, {"width": mod.weight.shape[0]}, None, block)
        if kernel is not None and w.dim() > 2 and kernel != w.shape[-1]:
            lo = (w.shape[-1] - kernel) // 2
            w = w[(slice(None), slice(None)) + (slice(lo, lo + kernel),) * (w.dim() - 2)]
        scale = 2.0 ** (math.ceil(float(mod.weight_log2_threshold.detach())) - (bits - 1))
        lo_i, hi_i = int_range(bits, signed=True, narrow=True)
        q = torch.clamp(torch.round(w.double() / scale), lo_i, hi_i).to(torch.int64).cpu().numpy()
        q = q.reshape(q.shape[0], q.shape[1], -1)
        digits = csd_digits(q.ravel()).reshape(q.shape).sum(axis=2)
        nz = (q != 0).sum(axis=2)
        out = []
        for counts in (nz, digits):
            p = np.zeros((counts.shape[0] + 1, counts.shape[1] + 1), dtype=np.int64)
            p[1:, 1:] = counts.cumsum(axis=0).cumsum(axis=1)
            out.append(p)
        return out[0], out[1]

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
            w = w.index_select(1, torch.arange(in_width * block, device=w.device))
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
