"""``layer_specs``: the hardware description (``LayerSpec``) of each layer of a Brevitas model:
the weight layers (with their weights' statistics) and the activations, tables and pools between
them, described by their layer kinds exactly as the search's cost tables describe them."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from connas4ml_torch.export.checks import ModelTrace, trace_model
from connas4ml_torch.hardware.config import HLSConfig
from connas4ml_torch.hardware.layerspec import LayerSpec
from connas4ml_torch.kinds import kind_of

__all__ = ["layer_specs", "specs_from_trace"]


def specs_from_trace(trace: ModelTrace, hls_config: HLSConfig) -> dict[str, LayerSpec]:
    """LayerSpecs of an already traced model's weight layers, in call order, keyed by qualified
    module name."""
    return {t.name: kind_of(t.module).export_spec(t, hls_config) for t in trace.layers}


@torch.no_grad()
def activation_specs(model: nn.Module, example_input: Tensor, trace: ModelTrace,
                     hls_config: HLSConfig) -> dict[str, LayerSpec]:
    """LayerSpecs of the activations the layer kinds describe to the cost model (ReLU, lookup
    tables, average pools): each with its traced input shape and the bits of the quantizer that
    rounds its output (its own, or the one right after it in call order)."""
    from connas4ml_torch.kinds import SpecContext

    bits = [(q.owner, q.bits) for q in trace.acts]
    calls: list[tuple[str, nn.Module, tuple[int, ...], tuple[int, ...]]] = []
    handles = []
    for name, m in model.named_modules():
        k = kind_of(m) if name else None
        if k is None or getattr(k, "hls_layer", None) is None or list(m.children()) and \
                not k.is_brevitas(m):
            continue

        def hook(mod, args, out, name=name):
            x = args[0].value if hasattr(args[0], "value") else args[0]
            o = out.value if hasattr(out, "value") else out
            calls.append((name, mod, tuple(x.shape), tuple(o.shape)))
        handles.append(m.register_forward_hook(hook))
    was = model.training
    model.eval()
    try:
        model(example_input[:2])
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    out: dict[str, LayerSpec] = {}
    for name, mod, in_shape, out_shape in calls:
        own = [b for owner, b in bits if owner == name]
        after = [b for owner, b in bits if owner.startswith(name.rpartition(".")[0] + ".")
                 and owner != name]
        b = own[0] if own else (after[0] if after else None)
        if b is None:
            continue
        k = kind_of(mod)
        ctx = SpecContext(name, mod, {"abits": b, "in": in_shape[1] if len(in_shape) > 1 else 1},
                          in_shape, out_shape)
        spec = k.spec(ctx, hls_config)
        if spec is not None:
            out[name] = spec
    return out


def layer_specs(model: nn.Module, example_input: Tensor, hls_config: HLSConfig) -> dict[str, LayerSpec]:
    """Run ``example_input`` through ``model`` and describe every weight layer (its kind's
    ``export_spec``), then the activations between them (:func:`activation_specs`).

    Keys are qualified module names (``"body.0"``) in call order. Widths, kernel and output size
    come from the modules and the traced shapes, ``weight_bits`` from the weight quantizer,
    ``input_bits`` from the quantizer that feeds the layer (the input QuantIdentity or the previous
    QuantReLU); reuse factor and strategy (with per-layer overrides by module name), io type,
    backend, part and clock from ``hls_config``. ``result_bits`` is left ``None``. Raises
    :class:`~connas4ml_torch.export.checks.ExportError` for float-scale quantizers or an
    unquantized input, as the export would.
    """
    trace = trace_model(model, example_input)
    return {**specs_from_trace(trace, hls_config),
            **activation_specs(model, example_input, trace, hls_config)}
