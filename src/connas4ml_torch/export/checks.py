"""Pre-export validation: refuse, before anything is written, what would not be bit-exact.

hls4ml's QONNX path is exact only for the subset described in docs/design.md (export): power-of-two scale
quantizers everywhere, quantized biases, a quantized network input, no float BatchNorm, and only
layer types it maps one to one. Outside that subset it does not fail: it silently builds a network
that computes something else (float scales become ``ApplyAlpha`` layers truncated to
``fixed<16,6>``; a model of 5 classes falls to chance). So every rule is checked here and broken
rules raise :class:`ExportError` naming the module (its qualified name in the model) and the fix.

Two passes: :func:`check_structure` looks at the modules only; :func:`trace_model` runs the
example input once with forward hooks on the Brevitas quantizer proxies, records every quantizer
grid actually used and checks that each weight layer's input lies on the grid of the quantizer that
feeds it (this catches float arithmetic hidden in custom ``forward`` code).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from connas4ml_torch.errors import ExportError  # noqa: F401 (re-exported)
from connas4ml_torch.kinds import kind_of, kinds
from connas4ml_torch.quant import FIX, QuantGrid

__all__ = [
    "ExportError",
    "QuantInfo",
    "LayerTrace",
    "ModelTrace",
    "check_structure",
    "check_exportable",
    "trace_model",
]


_FIX_WEIGHT, _FIX_BIAS, _FIX_ACT_U, _FIX_INPUT = FIX["weight"], FIX["bias"], FIX["act"], FIX["input"]


def _role_types(role: str) -> tuple[Any, ...]:
    """A predicate per registered kind of ``role``: which modules the trace hooks (Brevitas)."""
    return tuple(k for k in kinds(role))


def _is_brevitas_layer(m: nn.Module) -> bool:
    from brevitas.nn.quant_layer import QuantNonLinearActLayer, QuantWeightBiasInputOutputLayer

    return isinstance(m, (QuantWeightBiasInputOutputLayer, QuantNonLinearActLayer)) or \
        type(m).__module__.startswith("brevitas.nn")


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Leaf modules by qualified name; a Brevitas layer counts as one leaf (its proxies are inside)."""
    out: list[tuple[str, nn.Module]] = []
    skip: list[str] = []
    for name, m in model.named_modules():
        if any(name.startswith(p + ".") for p in skip):
            continue
        if _is_brevitas_layer(m):
            out.append((name, m))
            skip.append(name)
        elif not list(m.children()):
            out.append((name, m))
    return out


def _label(name: str) -> str:
    return repr(name) if name else "the model itself"


def _supported() -> str:
    names = []
    for k in kinds():
        if k.role in ("weight", "act"):
            names += list(k.brevitas_types) + [t.__name__ for t in k.derived_types]
            if not k.derived_types:  # plain modules this kind exports (an average pool)
                names += [f"nn.{t.__name__}" for t in k.torch_types]
        elif k.role == "passive":
            names += [f"nn.{t.__name__}" for t in k.torch_types]
    return ", ".join(dict.fromkeys(names))


# --------------------------------------------------------------------------------------------
# structural checks (no forward pass)
# --------------------------------------------------------------------------------------------
def check_structure(model: nn.Module) -> None:
    """Refuse module types and settings hls4ml's QONNX path cannot take exactly.

    Every leaf module is checked by its layer kind (connas4ml_torch.kinds): float BatchNorm,
    unquantized weight layers and activations, Brevitas layers without a weight or bias quantizer,
    float-scale quantizers, grouped or dilated convolutions, padded or ceil-mode max pooling.
    A module without a kind raises :class:`ExportError` naming it and the supported types.
    """
    for name, m in _leaves(model):
        k = kind_of(m)
        if k is None:
            what = ("this Brevitas layer type is not supported by the bit-exact export"
                    if _is_brevitas_layer(m) else
                    "layer type not supported by the QONNX -> hls4ml bit-exact export")
            raise ExportError(
                f"module {_label(name)} ({type(m).__name__}): {what} (supported: {_supported()}). "
                "Fix: replace it, or apply it outside the exported network."
            )
        k.check_export(name, m)


# --------------------------------------------------------------------------------------------
# trace: what the example input actually goes through
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuantInfo:
    """One quantizer as used in the forward pass: its fixed-point grid and where it lives."""

    owner: str
    role: str  # "input", "act", "weight", "bias"
    bits: int
    signed: bool
    log2_scale: int

    @property
    def grid(self) -> QuantGrid:
        return QuantGrid(self.bits, self.signed, self.log2_scale)

    @property
    def scale(self) -> float:
        return 2.0**self.log2_scale


@dataclass
class LayerTrace:
    """A weight layer (QuantLinear/QuantConv) as the example input saw it."""

    name: str
    module: nn.Module
    order: int
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight: QuantInfo
    bias: QuantInfo
    input: QuantInfo


@dataclass
class ModelTrace:
    """Result of :func:`trace_model`: the input quantizer and the weight layers in call order."""

    input: QuantInfo
    layers: list[LayerTrace] = field(default_factory=list)
    acts: list[QuantInfo] = field(default_factory=list)
    output: Tensor | None = None


def _quant_info(owner: str, role: str, qt: Any) -> QuantInfo:
    """Grid of a Brevitas QuantTensor; refuse float / per-channel scales and zero points."""
    where = f"module {_label(owner)}"
    fix = {"weight": _FIX_WEIGHT, "bias": _FIX_BIAS, "act": _FIX_ACT_U, "input": _FIX_INPUT}[role]
    scale = qt.scale.detach().reshape(-1)
    if scale.numel() != 1 and not bool(torch.all(scale == scale[0])):
        raise ExportError(
            f"{where}: its {role} quantizer has a per-channel scale; the bit-exact export needs one "
            f"power-of-two scale per tensor. Fix: {fix}."
        )
    s = float(scale[0])
    mant, exp = math.frexp(s) if s > 0 else (0.0, 0)
    if mant != 0.5:
        raise ExportError(
            f"{where}: its {role} quantizer has a float scale {s:.6g}, not a power of two. hls4ml "
            "would insert ApplyAlpha scale layers with fixed<16,6> weights and the project would "
            f"compute chance-level outputs without any error. Fix: {fix}."
        )
    zp = qt.zero_point.detach() if isinstance(qt.zero_point, Tensor) else torch.tensor(qt.zero_point)
    if bool(torch.any(zp != 0)):
        raise ExportError(
            f"{where}: its {role} quantizer has a non-zero zero point (asymmetric quantization), "
            f"which the fixed-point export cannot represent. Fix: {fix}."
        )
    bits = float(qt.bit_width)
    if bits != int(bits) or not 1 <= bits <= 32:
        raise ExportError(f"{where}: {role} bit width {bits} is not an integer in 1..32. Fix: {fix}.")
    return QuantInfo(owner, role, int(bits), bool(qt.signed), exp - 1)


def _on_grid(x: Tensor, q: QuantInfo) -> bool:
    from connas4ml_torch.quant import int_range

    v = x.detach().double() / q.scale
    lo, hi = int_range(q.bits, q.signed, narrow=False)
    return bool(torch.all(v == torch.round(v)) and torch.all(v >= lo) and torch.all(v <= hi))


def trace_model(model: nn.Module, example_input: Tensor) -> ModelTrace:
    """Run ``example_input`` once and record the quantizers each weight layer uses.

    The model is put in eval mode for the pass and its mode restored. Raises :class:`ExportError`
    for float-scale quantizers, an unquantized network input, and weight layers whose input is not
    on the grid of the quantizer that precedes them (float code between quantizer and layer).
    """
    weight_kinds, act_kinds = _role_types("weight"), _role_types("act")
    if not isinstance(example_input, Tensor):
        raise ExportError(
            f"example_input must be a torch.Tensor with a batch dimension, got {type(example_input).__name__}"
        )
    names = {id(m): n for n, m in _leaves(model)}
    state: dict[str, Any] = {"last": None, "input": None, "order": 0}
    layers: list[LayerTrace] = []
    acts: list[QuantInfo] = []
    pending: dict[int, dict[str, Any]] = {}
    handles = []

    def act_pre(m: nn.Module, args: tuple) -> None:
        name = names[id(m)]
        if state["input"] is None and kind_of(m).name != "Quantizer":
            raise ExportError(
                f"the network input is not quantized: the first op is module {_label(name)} "
                f"({type(m).__name__}). Fix: {_FIX_INPUT}."
            )

    def act_hook(owner: str, layer: nn.Module | None = None) -> Any:
        def hook(proxy: nn.Module, args: tuple, out: Any) -> None:
            if not hasattr(out, "scale"):
                return
            role = "input" if state["input"] is None else "act"
            q = _quant_info(owner, role, out)
            if role == "input":
                state["input"] = q
            acts.append(q)
            state["last"] = q
            if layer is not None and id(layer) in pending:  # a weight layer's own input_quant
                pending[id(layer)]["input"] = q
        return hook

    def weight_pre(m: nn.Module, args: tuple) -> None:
        name = names[id(m)]
        x = args[0].value if hasattr(args[0], "value") else args[0]
        if m.input_quant.is_quant_enabled:  # its own input quantizer puts the input on a grid
            pending[id(m)] = {"in_shape": tuple(x.shape), "input": None}
            return
        feed = state["last"]
        if feed is None:
            raise ExportError(
                f"module {_label(name)} ({type(m).__name__}) receives the unquantized network "
                f"input. Fix: {_FIX_INPUT}."
            )
        if not _on_grid(x, feed):
            raise ExportError(
                f"module {_label(name)} ({type(m).__name__}): its input is not on the grid of the "
                f"quantizer before it (module {_label(feed.owner)}, {feed.grid.hls_type()}): some "
                "float operation between them (custom forward code, an unquantized layer) would "
                "be exported inexactly. Fix: quantize right before the layer (QuantReLU/"
                "QuantIdentity, or the layer's own input_quant) and keep only MaxPool/Flatten/"
                "reshapes between quantizer and layer."
            )
        pending[id(m)] = {"in_shape": tuple(x.shape), "input": feed}

    def weight_post(m: nn.Module, args: tuple, out: Any) -> None:
        name = names[id(m)]
        o = out.value if hasattr(out, "value") else out
        p = pending.pop(id(m))
        w = _quant_info(name, "weight", m.quant_weight())
        b = p.get("bias")
        if b is None:
            raise ExportError(f"module {_label(name)}: bias quantizer did not run. Fix: {_FIX_BIAS}.")
        layers.append(LayerTrace(name, m, state["order"], p["in_shape"], tuple(o.shape), w, b,
                                 p["input"]))
        state["order"] += 1
        state["last"] = None  # the accumulator is not on any quantizer's grid

    def bias_hook(m: nn.Module) -> Any:
        def hook(proxy: nn.Module, args: tuple, out: Any) -> None:
            if hasattr(out, "scale") and id(m) in pending:
                pending[id(m)]["bias"] = _quant_info(names[id(m)], "bias", out)
        return hook

    for name, m in _leaves(model):
        k = kind_of(m)
        if k in act_kinds and k.is_brevitas(m):
            handles.append(m.register_forward_pre_hook(act_pre))
            handles.append(m.act_quant.register_forward_hook(act_hook(name)))
        elif k in weight_kinds and k.is_brevitas(m):
            handles.append(m.register_forward_pre_hook(weight_pre))
            handles.append(m.register_forward_hook(weight_post))
            handles.append(m.bias_quant.register_forward_hook(bias_hook(m)))
            if m.input_quant.is_quant_enabled:
                handles.append(m.input_quant.register_forward_hook(act_hook(name, m)))

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(example_input)
    except ExportError:
        raise
    except Exception as exc:  # shape errors etc.: say it is the example input
        raise ExportError(
            f"running the model on example_input of shape {tuple(example_input.shape)} failed: "
            f"{type(exc).__name__}: {exc}. Fix: pass a batch of real inputs (batch dimension first)."
        ) from exc
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if state["input"] is None:
        raise ExportError(f"the network input is not quantized. Fix: {_FIX_INPUT}.")
    if not layers:
        raise ExportError(
            "the model has no QuantLinear/QuantConv1d/QuantConv2d layer that the example input "
            "reaches; nothing to export."
        )
    out_t = out.value if hasattr(out, "value") else out
    if not isinstance(out_t, Tensor):
        raise ExportError(
            f"the model returns {type(out).__name__}; the export needs one output tensor. "
            "Fix: return a single tensor from forward()."
        )
    return ModelTrace(input=state["input"], layers=layers, acts=acts, output=out_t)


def check_exportable(model: nn.Module, example_input: Tensor) -> ModelTrace:
    """All pre-export checks (structure, then a traced forward pass); returns the trace."""
    check_structure(model)
    return trace_model(model, example_input)
