"""Pre-export validation: refuse, before anything is written, what would not be bit-exact.

hls4ml's QONNX path is exact only for the subset described in DESIGN.md §6: power-of-two scale
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
from connas4ml_torch.quant import QuantGrid

__all__ = [
    "ExportError",
    "QuantInfo",
    "LayerTrace",
    "ModelTrace",
    "check_structure",
    "check_exportable",
    "trace_model",
    "WEIGHT_LAYERS",
    "ACT_LAYERS",
]


_FIX_WEIGHT = (
    "build it with weight_quant=connas4ml_torch.quant.FixedPointWeight (power-of-two scale), "
    "e.g. QuantLinear(..., weight_quant=FixedPointWeight, weight_bit_width=b, weight_scaling_init=t)"
)
_FIX_BIAS = (
    "use bias=True with bias_quant=connas4ml_torch.quant.FixedPointBias, bias_bit_width=b, "
    "bias_scaling_init=t"
)
_FIX_ACT_U = (
    "use QuantReLU(act_quant=connas4ml_torch.quant.FixedPointUnsignedAct, bit_width=b, max_val=m)"
)
_FIX_INPUT = (
    "make the first op of forward() QuantIdentity(act_quant=connas4ml_torch.quant.FixedPointAct, "
    "bit_width=b, min_val=-m, max_val=m, return_quant_tensor=False)"
)
_FIX_BN = (
    "fold it into the preceding Linear/Conv with connas4ml_torch.export.fold_batchnorm(model) "
    "before quantization-aware fine-tuning, or keep BatchNorm out of the network"
)


def _brevitas_types() -> tuple[tuple[type, ...], tuple[type, ...], type, type]:
    from brevitas.nn import QuantConv1d, QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
    from brevitas.nn.quant_layer import QuantNonLinearActLayer, QuantWeightBiasInputOutputLayer

    return ((QuantLinear, QuantConv1d, QuantConv2d), (QuantIdentity, QuantReLU),
            QuantWeightBiasInputOutputLayer, QuantNonLinearActLayer)


WEIGHT_LAYERS = ("QuantLinear", "QuantConv1d", "QuantConv2d")
ACT_LAYERS = ("QuantIdentity", "QuantReLU")
_PASSTHROUGH = (nn.MaxPool1d, nn.MaxPool2d, nn.Flatten, nn.Identity, nn.Dropout)


def _is_brevitas_layer(m: nn.Module) -> bool:
    _, _, wbiol, nlal = _brevitas_types()
    return isinstance(m, (wbiol, nlal)) or type(m).__module__.startswith("brevitas.nn")


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


# --------------------------------------------------------------------------------------------
# structural checks (no forward pass)
# --------------------------------------------------------------------------------------------
def check_structure(model: nn.Module) -> None:
    """Refuse module types and settings hls4ml's QONNX path cannot take exactly.

    Raises :class:`ExportError` for the first offending module: float BatchNorm, unquantized
    Linear/Conv/activations, Brevitas layers without a weight or bias quantizer, grouped or dilated
    convolutions, padded or ceil-mode max pooling and any other layer type.
    """
    weight_types, act_types, _, _ = _brevitas_types()
    for name, m in _leaves(model):
        kind = type(m).__name__
        where = f"module {_label(name)} ({kind})"
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            raise ExportError(
                f"{where} is a float BatchNorm: hls4ml would export it as a float scale that breaks "
                f"bit-exactness silently. Fix: {_FIX_BN}."
            )
        if isinstance(m, weight_types):
            _check_weight_layer(name, m)
            continue
        if isinstance(m, act_types):
            fix = _FIX_INPUT if type(m).__name__ == "QuantIdentity" else _FIX_ACT_U
            if not m.act_quant.is_quant_enabled:
                raise ExportError(f"{where} has no activation quantizer. Fix: {fix}.")
            _refuse_float_scale(where, "activation", m.act_quant, fix)
            continue
        if _is_brevitas_layer(m):
            raise ExportError(
                f"{where}: this Brevitas layer type is not supported by the bit-exact export "
                f"(supported: {', '.join(WEIGHT_LAYERS + ACT_LAYERS)}, nn.MaxPool1d/2d, "
                "nn.Flatten). Fix: replace it with a supported layer."
            )
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            brev = {"Linear": "QuantLinear", "Conv1d": "QuantConv1d", "Conv2d": "QuantConv2d"}
            raise ExportError(
                f"{where} is not quantized: hls4ml would give it a default fixed<16,6> precision "
                f"and the project would not match PyTorch. Fix: use brevitas.nn."
                f"{brev.get(kind, 'QuantConv2d')} and {_FIX_WEIGHT}; {_FIX_BIAS}."
            )
        if isinstance(m, (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardtanh, nn.Sigmoid, nn.Tanh,
                          nn.GELU, nn.SiLU, nn.ELU, nn.Softmax)):
            fix = _FIX_ACT_U if isinstance(m, nn.ReLU) else (
                "remove it from the exported network (apply it in software after the FPGA), or "
                "replace it by QuantReLU/QuantIdentity")
            raise ExportError(
                f"{where} is an unquantized activation, not supported by the bit-exact export: its "
                f"output is not on a fixed-point grid "
                f"and hls4ml would approximate it. Fix: {fix}."
            )
        if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
            bad = []
            if any(p != 0 for p in _tup(m.padding)):
                bad.append(f"padding={m.padding}")
            if any(d != 1 for d in _tup(m.dilation)):
                bad.append(f"dilation={m.dilation}")
            if m.ceil_mode:
                bad.append("ceil_mode=True")
            if m.return_indices:
                bad.append("return_indices=True")
            if bad:
                raise ExportError(
                    f"{where} uses {', '.join(bad)}, which the hls4ml export does not support. "
                    "Fix: use padding=0, dilation=1, ceil_mode=False."
                )
            continue
        if isinstance(m, _PASSTHROUGH):
            continue
        raise ExportError(
            f"{where}: layer type not supported by the QONNX -> hls4ml bit-exact export "
            f"(supported: {', '.join(WEIGHT_LAYERS + ACT_LAYERS)}, nn.MaxPool1d/2d, nn.Flatten, "
            "nn.Dropout, nn.Identity). Fix: replace it, or apply it outside the exported network."
        )


def _float_scaled(proxy: nn.Module) -> bool:
    """Whether a Brevitas quantizer proxy restricts its scale to floats (not powers of two).

    Checked on the module structure and not only on the current value: a float-scale quantizer
    can hold a power-of-two value by accident (an untrained QuantIdentity starts at 1/128) and
    drift off it with the next fine-tuning step.
    """
    from brevitas.core.restrict_val import FloatRestrictValue, PowerOfTwoRestrictValue

    kinds = {type(m) for m in proxy.modules()}
    return FloatRestrictValue in kinds and PowerOfTwoRestrictValue not in kinds


def _refuse_float_scale(where: str, role: str, proxy: nn.Module, fix: str) -> None:
    if _float_scaled(proxy):
        raise ExportError(
            f"{where}: its {role} quantizer has a float scale, not a power of two. hls4ml would "
            "insert ApplyAlpha scale layers with fixed<16,6> weights and the project would compute "
            f"chance-level outputs without any error. Fix: {fix}."
        )


def _tup(v: Any) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


def _check_weight_layer(name: str, m: nn.Module) -> None:
    where = f"module {_label(name)} ({type(m).__name__})"
    if not m.weight_quant.is_quant_enabled:
        raise ExportError(f"{where} has float (unquantized) weights. Fix: {_FIX_WEIGHT}.")
    if m.bias is None:
        raise ExportError(
            f"{where} has no bias; the export is verified with quantized biases only. "
            f"Fix: {_FIX_BIAS}."
        )
    if not m.bias_quant.is_quant_enabled:
        raise ExportError(
            f"{where} has a float bias: hls4ml truncates it to the default precision "
            f"(max diff 0.3-1.1 seen). Fix: {_FIX_BIAS}."
        )
    _refuse_float_scale(where, "weight", m.weight_quant, _FIX_WEIGHT)
    _refuse_float_scale(where, "bias", m.bias_quant, _FIX_BIAS)
    for role in ("input", "output"):
        proxy = getattr(m, f"{role}_quant")
        if proxy.is_quant_enabled:
            _refuse_float_scale(where, role, proxy, f"remove the {role}_quant or use a fixed-point one")
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        bad = []
        if m.groups != 1:
            bad.append(f"groups={m.groups}")
        if any(d != 1 for d in _tup(m.dilation)):
            bad.append(f"dilation={m.dilation}")
        if m.padding_mode != "zeros":
            bad.append(f"padding_mode={m.padding_mode!r}")
        if isinstance(m.padding, str):
            bad.append(f"padding={m.padding!r}")
        if bad:
            raise ExportError(
                f"{where} uses {', '.join(bad)}, not supported by the bit-exact export. "
                "Fix: use groups=1, dilation=1, integer padding with padding_mode='zeros'."
            )


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
    weight_types, act_types, _, _ = _brevitas_types()
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
        if state["input"] is None and type(m).__name__ != "QuantIdentity":
            raise ExportError(
                f"the network input is not quantized: the first op is module {_label(name)} "
                f"({type(m).__name__}). Fix: {_FIX_INPUT}."
            )

    def act_hook(owner: str) -> Any:
        def hook(proxy: nn.Module, args: tuple, out: Any) -> None:
            if not hasattr(out, "scale"):
                return
            role = "input" if state["input"] is None else "act"
            q = _quant_info(owner, role, out)
            if role == "input":
                state["input"] = q
            acts.append(q)
            state["last"] = q
        return hook

    def weight_pre(m: nn.Module, args: tuple) -> None:
        name = names[id(m)]
        feed = state["last"]
        if feed is None:
            raise ExportError(
                f"module {_label(name)} ({type(m).__name__}) receives the unquantized network "
                f"input. Fix: {_FIX_INPUT}."
            )
        x = args[0].value if hasattr(args[0], "value") else args[0]
        if not _on_grid(x, feed):
            raise ExportError(
                f"module {_label(name)} ({type(m).__name__}): its input is not on the grid of the "
                f"quantizer before it (module {_label(feed.owner)}, {feed.grid.hls_type()}): some "
                "float operation between them (custom forward code, an unquantized layer) would "
                "be exported inexactly. Fix: quantize right before the layer (QuantReLU/"
                "QuantIdentity) and keep only MaxPool/Flatten/reshapes between quantizer and layer."
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
        if isinstance(m, act_types):
            handles.append(m.register_forward_pre_hook(act_pre))
            handles.append(m.act_quant.register_forward_hook(act_hook(name)))
        elif isinstance(m, weight_types):
            handles.append(m.register_forward_pre_hook(weight_pre))
            handles.append(m.register_forward_hook(weight_post))
            handles.append(m.bias_quant.register_forward_hook(bias_hook(m)))
            if m.input_quant.is_quant_enabled:
                handles.append(m.input_quant.register_forward_hook(act_hook(name)))

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
