"""Dense: ``nn.Linear`` -> searchable width and weight bits -> ``QuantLinear`` -> hls4ml ``Dense``."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from connas4ml_torch.kinds._weight_kind import WeightKind
from connas4ml_torch.kinds._weights import (
    SearchableWeight,
    brevitas_start,
    quant_kwargs,
    user_input_quant,
)
from connas4ml_torch.kinds.base import ArchControl, SpecContext, register


class SearchableLinear(SearchableWeight):
    """``nn.Linear`` with searchable width and weight bits."""

    kind = "Dense"

    def __init__(self, name: str, ctl: ArchControl, src: nn.Linear, widths, wbits, bias_bits):
        super().__init__(name, ctl)
        self.in_features, self.out_features = src.in_features, src.out_features
        self._setup(src.weight, src.bias, widths, wbits, bias_bits)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, *self.masked_weight_and_bias())

    def raw(self, x: Tensor, w: Tensor) -> Tensor:
        return F.linear(x, w)


class Dense(WeightKind):
    name = "Dense"
    torch_types = (nn.Linear,)
    brevitas_types = ("QuantLinear",)
    searchable_type = SearchableLinear
    hls_classes = ("Dense",)
    onnx_ops = ("MatMul", "Add")
    onnx_weight_op = "MatMul"

    def to_searchable(self, name: str, module: nn.Linear, space: Any, ctl: ArchControl):
        wbits, t = (brevitas_start(name, module, space) if self.is_brevitas(module)
                    else (space.weight_bits_for(name), None))
        new = SearchableLinear(name, ctl, module, space.widths_for(name, module.out_features),
                               wbits, space.bias_bits)
        if self.is_brevitas(module):
            user_input_quant(name, module, new, space, ctl)
        return new.start_from(t)

    def derive(self, mod: SearchableLinear, choices: dict[str, dict[str, int]], ctx: Any):
        from brevitas.nn import QuantLinear

        w, b = self.sliced(mod, choices[mod.name], ctx.in_width, ctx.block)
        new = QuantLinear(w.shape[1], w.shape[0],
                          **quant_kwargs(choices[mod.name]["weight_bits"], mod.bias_bits),
                          **self.input_kwargs(mod, choices))
        return self.finish(new, mod, w, b)

    def spec(self, ctx: SpecContext, hls: Any):
        from connas4ml_torch.hardware.layerspec import LayerSpec

        v = ctx.values
        n_in = v["in"] * ctx.block if "in" in v else ctx.in_shape[-1]
        stats = self.weight_stats(ctx.module, ctx) if ctx.with_weights else {}
        return LayerSpec("Dense", int(n_in), int(v["out"]), weight_bits=int(v["wbits"]),
                         input_bits=int(v["abits"]), **stats).with_hls(hls, ctx.name)

    def export_spec(self, t: Any, hls: Any):
        from connas4ml_torch.hardware.layerspec import LayerSpec

        m = t.module
        return LayerSpec("Dense", int(m.in_features), int(m.out_features),
                         weight_bits=t.weight.bits, input_bits=t.input.bits,
                         **self.export_weight_stats(t)).with_hls(hls, t.name)

    def one_layer(self, spec: Any, q: dict[str, Any]):
        from brevitas.nn import QuantLinear

        return QuantLinear(spec.n_in, spec.n_out, **q), (1, spec.n_in)


register(Dense())
