"""``layer_specs``: the hardware description (``LayerSpec``) of each layer of a Brevitas model:
the weight layers (with their weights' statistics) and the activations, tables and pools between
them, described by their layer kinds exactly as the search's cost tables describe them
(docs/layer_kinds.md, section 4)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from connas4ml_torch.export.checks import ModelTrace, trace_model
from connas4ml_torch.hardware.config import HLSConfig
from connas4ml_torch.hardware.layerspec import LayerSpec
from connas4ml_torch.kinds import kind_of
from connas4ml_torch.space.trace import grid_keeping_ops, op_name

__all__ = ["layer_specs", "specs_from_trace"]


def specs_from_trace(trace: ModelTrace, hls_config: HLSConfig) -> dict[str, LayerSpec]:
    """LayerSpecs of an already traced model's weight layers, in call order, keyed by qualified
    module name."""
    return {t.name: kind_of(t.module).export_spec(t, hls_config) for t in trace.layers}


class _GridFollower(TorchFunctionMode):
    """Which quantizer's bits each tensor of a forward pass is on: set at the quantizers'
    outputs, carried through the ops that keep a tensor on its grid (the supernet trace's rule,
    space/trace.py), lost at any other op."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = grid_keeping_ops()
        self.bits: dict[int, int] = {}
        self.keep: list[Tensor] = []  # traced tensors stay alive: their ids are not reused

    def set(self, t: object, bits: int) -> None:
        self.bits[id(t)] = bits
        self.keep.append(t)

    def get(self, t: object) -> int | None:
        return self.bits.get(id(t))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if op_name(func) in self.ops:
            ins = [b for t in tree_flatten((args, kwargs or {}))[0]
                   if isinstance(t, Tensor) and (b := self.get(t)) is not None]
            if len(ins) == 1:
                for o in tree_flatten(out)[0]:
                    if isinstance(o, Tensor):
                        self.set(o, ins[0])
        return out


@torch.no_grad()
def activation_specs(model: nn.Module, example_input: Tensor, trace: ModelTrace,
                     hls_config: HLSConfig) -> dict[str, LayerSpec]:
    """LayerSpecs of the activations the layer kinds describe to the cost model (ReLU, lookup
    tables, average pools): each with its traced input shape and the bits of the quantizer that
    rounds its output (its own, or the one right after it in call order); then the max pools,
    with the bits of the quantizer that feeds them (a max stays on its input's grid). The order
    is the search's cost tables' (search/cost.py), so that network-level totals agree."""
    from connas4ml_torch.kinds import SpecContext

    bits = [(q.owner, q.bits) for q in trace.acts]
    own_bits = dict(bits)
    follow = _GridFollower()
    calls: list[tuple[str, nn.Module, tuple[int, ...], tuple[int, ...], int | None]] = []
    handles = []
    for name, m in model.named_modules():
        k = kind_of(m) if name else None
        if k is not None and k.role == "act" and k.is_brevitas(m) and name in own_bits:
            def mark(mod, args, out, b=own_bits[name]):
                follow.set(out, b)
                if hasattr(out, "value"):
                    follow.set(out.value, b)
            handles.append(m.register_forward_hook(mark))
        if k is None or getattr(k, "hls_layer", None) is None or list(m.children()) and \
                not k.is_brevitas(m):
            continue

        def hook(mod, args, out, name=name):
            x = args[0].value if hasattr(args[0], "value") else args[0]
            o = out.value if hasattr(out, "value") else out
            fed = follow.get(args[0])
            if fed is None and hasattr(args[0], "bit_width"):  # a Brevitas QuantTensor
                fed = int(round(float(args[0].bit_width)))
            calls.append((name, mod, tuple(x.shape), tuple(o.shape), fed))
        handles.append(m.register_forward_hook(hook))
    was = model.training
    model.eval()
    try:
        with follow:
            model(example_input[:2])
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    acts: dict[str, LayerSpec] = {}
    pools: dict[str, LayerSpec] = {}
    for name, mod, in_shape, out_shape, fed in calls:
        k = kind_of(mod)
        if k.role == "passive":  # the quantizer before it, not after it
            b = fed
        else:
            own = [b for owner, b in bits if owner == name]
            after = [b for owner, b in bits if owner.startswith(name.rpartition(".")[0] + ".")
                     and owner != name]
            b = own[0] if own else (after[0] if after else None)
        if b is None:
            continue
        ctx = SpecContext(name, mod, {"abits": b, "in": in_shape[1] if len(in_shape) > 1 else 1},
                          in_shape, out_shape)
        spec = k.spec(ctx, hls_config)
        if spec is not None:
            (pools if k.role == "passive" else acts)[name] = spec
    return {**acts, **pools}


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
