"""``layer_specs``: the hardware description (``LayerSpec``) of each weight layer of a Brevitas model."""

from __future__ import annotations

from torch import Tensor, nn

from connas4ml_torch.export.checks import ModelTrace, trace_model
from connas4ml_torch.hardware.config import HLSConfig
from connas4ml_torch.hardware.layerspec import LayerSpec
from connas4ml_torch.kinds import kind_of

__all__ = ["layer_specs", "specs_from_trace"]


def specs_from_trace(trace: ModelTrace, hls_config: HLSConfig) -> dict[str, LayerSpec]:
    """LayerSpecs of an already traced model, in call order, keyed by qualified module name."""
    return {t.name: kind_of(t.module).export_spec(t, hls_config) for t in trace.layers}


def layer_specs(model: nn.Module, example_input: Tensor, hls_config: HLSConfig) -> dict[str, LayerSpec]:
    """Run ``example_input`` through ``model`` once and describe every weight layer (its kind's
    ``export_spec``).

    Keys are qualified module names (``"body.0"``) in call order. Widths, kernel and output size
    come from the modules and the traced shapes, ``weight_bits`` from the weight quantizer,
    ``input_bits`` from the quantizer that feeds the layer (the input QuantIdentity or the previous
    QuantReLU); reuse factor and strategy (with per-layer overrides by module name), io type,
    backend, part and clock from ``hls_config``. ``result_bits`` is left ``None``. Raises
    :class:`~connas4ml_torch.export.checks.ExportError` for float-scale quantizers or an
    unquantized input, as the export would.
    """
    return specs_from_trace(trace_model(model, example_input), hls_config)
