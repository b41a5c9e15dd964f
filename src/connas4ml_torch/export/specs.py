"""``layer_specs``: the hardware description (``LayerSpec``) of each weight layer of a Brevitas model."""

from __future__ import annotations

from dataclasses import replace

from torch import Tensor, nn

from connas4ml_torch.export.checks import LayerTrace, ModelTrace, trace_model
from connas4ml_torch.hardware.config import HLSConfig
from connas4ml_torch.hardware.layerspec import LayerSpec

__all__ = ["layer_specs", "specs_from_trace"]


def _spec(t: LayerTrace, hls_config: HLSConfig) -> LayerSpec:
    m = t.module
    kind = type(m).__name__
    if kind == "QuantLinear":
        base = LayerSpec("Dense", int(m.in_features), int(m.out_features))
    else:
        dims = 1 if kind == "QuantConv1d" else 2
        base = LayerSpec(
            f"Conv{dims}D",
            int(m.in_channels),
            int(m.out_channels),
            kernel=tuple(int(k) for k in m.kernel_size),
            out_size=tuple(int(s) for s in t.out_shape[2 : 2 + dims]),
        )
    base = replace(base, weight_bits=t.weight.bits, input_bits=t.input.bits)
    return base.with_hls(hls_config, t.name)


def specs_from_trace(trace: ModelTrace, hls_config: HLSConfig) -> dict[str, LayerSpec]:
    """LayerSpecs of an already traced model, in call order, keyed by qualified module name."""
    return {t.name: _spec(t, hls_config) for t in trace.layers}


def layer_specs(model: nn.Module, example_input: Tensor, hls_config: HLSConfig) -> dict[str, LayerSpec]:
    """Run ``example_input`` through ``model`` once and describe every QuantLinear/QuantConv layer.

    Keys are qualified module names (``"body.0"``) in call order. Widths, kernel and output size
    come from the modules and the traced shapes, ``weight_bits`` from the weight quantizer,
    ``input_bits`` from the quantizer that feeds the layer (the input QuantIdentity or the previous
    QuantReLU); reuse factor and strategy (with per-layer overrides by module name), io type,
    backend, part and clock from ``hls_config``. ``result_bits`` is left ``None``. Raises
    :class:`~connas4ml_torch.export.checks.ExportError` for float-scale quantizers or an
    unquantized input, as the export would.
    """
    return specs_from_trace(trace_model(model, example_input), hls_config)
