"""Activation quantizers: ``nn.ReLU`` -> searchable bits -> ``QuantReLU``, and the
``QuantIdentity`` quantizers (the ``Quantizer`` kind: the network input's, added by the supernet
itself as ``"input"``, the input quantizer a weight layer gets when its input is a sum, and a
user's own ``QuantIdentity``).

All are fixed-point grids with a learned power-of-two threshold; in hls4ml a ``QuantReLU``
becomes a ``Relu`` then a cast to the quantizer's ``ap_ufixed`` type, exactly.

:class:`SearchableOpAct` is what kinds whose output leaves the grid share (average pooling,
lookup-table activations): the operation, then a searchable quantizer named after the module;
``derive`` makes it ``nn.Sequential(op=..., quant=QuantIdentity)``.

A user's Brevitas ``QuantReLU``/``QuantIdentity`` is a starting point: its bit width is the
default choice and its threshold the initial one; a float-scale quantizer is refused, naming the
layer (the search and the export work on power-of-two grids).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from connas4ml_torch.errors import ExportError, UnsupportedLayerError
from connas4ml_torch.kinds._weights import label, set_threshold
from connas4ml_torch.kinds.base import (
    ArchControl,
    LayerKind,
    Searchable,
    arch_param,
    quant_mix,
    register,
)

__all__ = ["SearchableAct", "SearchableOpAct", "make_quantizer", "grid_quantizer",
           "brevitas_grid", "act_start"]
from connas4ml_torch.quant import (
    FIX,
    FixedPointAct,
    FixedPointUnsignedAct,
    log2_threshold_of,
    refuse_float_scale,
)


class SearchableAct(Searchable):
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
        self.alpha_bits = arch_param(len(self.bits))
        self._state_seen: tuple | None = None  # Python copy of the two buffers (see _state)

    @property
    def kind(self) -> str:  # type: ignore[override]
        return "ReLU" if self.relu else "Quantizer"

    @property
    def signed(self) -> bool:
        """Signed grid (the input, a sum that may be negative) or unsigned (ReLU, ...)."""
        return not self.relu

    def choice_values(self) -> dict[str, tuple[int, ...]]:
        return {"bits": self.bits}

    def start_from(self, log2_threshold: float | None) -> SearchableAct:
        """Start from a known threshold (a Brevitas quantizer's) instead of calibrating."""
        if log2_threshold is not None:
            with torch.no_grad():
                self.log2_threshold.fill_(float(log2_threshold))
            self.initialized.fill_(True)
        return self

    @torch.no_grad()
    def init_threshold(self, x: Tensor, grow_only: bool = False) -> None:
        """Set the threshold to cover the largest magnitude of ``x`` (on the device: no sync)."""
        m = x.detach().abs().amax().float()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(m, op=torch.distributed.ReduceOp.MAX)
        t = log2_threshold_of(m).to(self.log2_threshold.dtype)
        if grow_only:  # fmax: a NaN batch leaves the threshold as it was
            t = torch.fmax(t, self.log2_threshold)
        self.log2_threshold.copy_(t)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _calibrate_traceable(self, x: Tensor) -> None:
        """forward()'s calibration without Python branches on the buffers (torch.compile: one
        graph whatever their values, at the price of a max over x on every step)."""
        m = x.detach().abs().amax().float()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(m, op=torch.distributed.ReduceOp.MAX)
        t_new = log2_threshold_of(m).to(self.log2_threshold.dtype)
        t_old = self.log2_threshold
        left = self.calibration_left > 0
        if self.training:
            t = torch.where(self.initialized, torch.where(left, torch.fmax(t_new, t_old), t_old),
                            t_new)
            self.calibration_left.sub_((left & self.initialized).to(self.calibration_left.dtype))
        else:
            t = torch.where(self.initialized, t_old, t_new)
        self.log2_threshold.copy_(t)
        self.initialized.fill_(True)

    def _state(self) -> tuple[bool, int]:
        """``initialized`` and ``calibration_left`` as Python values without reading the device
        on every call: they are read again only when a buffer was replaced or written outside
        ``forward`` (``load_state_dict``, ``.to()``, ``fill_``; tensor version counters)."""
        stamp = self._stamp()
        seen = self._state_seen
        if stamp is None or seen is None or seen[0] != stamp:
            seen = self._state_seen = (stamp, bool(self.initialized), int(self.calibration_left))
        return seen[1], seen[2]

    def _set_state(self, init: bool, left: int) -> None:
        self._state_seen = (self._stamp(), init, left)

    def _stamp(self) -> tuple[int, ...] | None:
        i, c = self.initialized, self.calibration_left
        try:
            return i._version, c._version, i.data_ptr(), c.data_ptr()
        except RuntimeError:  # inference tensors keep no version counter: always read
            return None

    def forward(self, x: Tensor) -> Tensor:
        if self.relu:
            x = torch.relu(x)
        if torch.compiler.is_compiling():
            self._calibrate_traceable(x)
            return quant_mix(x, self.log2_threshold, self.alpha_bits, self.ctl, self.name,
                             "bits", self.bits, signed=not self.relu)
        init, left = self._state()
        if not init:
            self.init_threshold(x)
            self._set_state(True, left)
        elif self.training and left > 0:
            self.init_threshold(x, grow_only=True)
            self.calibration_left -= 1
            self._set_state(True, left - 1)
        return quant_mix(x, self.log2_threshold, self.alpha_bits, self.ctl, self.name, "bits",
                         self.bits, signed=not self.relu)


class SearchableOpAct(SearchableAct):
    """An operation whose output leaves the grid, then a searchable quantizer (same name).

    ``op`` runs in the supernet (a smooth function with the exact table's values, an average
    pool); ``signed`` is decided by ``Supernet.analyse`` from the values the op sees when the
    kind says ``signed=None`` (an average of ReLU outputs is unsigned). The quantizer is an
    unsigned or signed ``QuantIdentity`` in the derived model (``relu`` here only selects the
    unsigned grid: the op's output is then never negative).
    """

    def __init__(self, name: str, ctl: ArchControl, bits: tuple[int, ...], op: nn.Module,
                 kind: str, signed: bool | None = None):
        super().__init__(name, ctl, bits, relu=False if signed is None else not signed)
        self.op = op
        self._kind = kind
        self.auto_sign = signed is None

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self._kind

    def set_signed(self, signed: bool) -> None:
        self.relu = not signed

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(self.op(x))


def grid_quantizer(log2_threshold: Tensor | float, bits: int, signed: bool) -> nn.Module:
    """A Brevitas ``QuantIdentity`` on a signed or unsigned fixed-point grid (no ReLU)."""
    from brevitas.nn import QuantIdentity

    if signed:
        q = QuantIdentity(act_quant=FixedPointAct, bit_width=bits, min_val=-1.0, max_val=1.0)
    else:
        q = QuantIdentity(act_quant=FixedPointUnsignedAct, bit_width=bits, max_val=1.0)
    set_threshold(q.act_quant, torch.as_tensor(log2_threshold, dtype=torch.float32))
    return q


def brevitas_grid(where: str, proxy: nn.Module, fix: str) -> tuple[int, float, bool]:
    """``(bits, log2 threshold, signed)`` of a user's fixed-point Brevitas quantizer proxy.

    Refuses float scales (naming ``where``, the user's layer, and ``fix``): the search and the
    export work on power-of-two grids only, and a float scale would silently change meaning.
    """
    from connas4ml_torch.quant import float_scaled

    if float_scaled(proxy):
        raise UnsupportedLayerError(
            f"searchable(): {where}: its quantizer has a float scale (Brevitas' default "
            "*PerTensorFloat quantizers), not a power of two; the search and the bit-exact "
            f"export work on fixed-point grids. Fix: {fix}, or start from the float model "
            "(nn.Linear/nn.Conv/nn.ReLU): searchable() quantizes it itself.")
    with torch.no_grad():
        bits = int(round(float(proxy.bit_width())))
        scales = proxy.scale().detach().reshape(-1)
    if not bool(torch.all(scales == scales[0])):
        raise UnsupportedLayerError(
            f"searchable(): {where}: its quantizer has one scale per channel; the search and the "
            f"export use one power-of-two scale per tensor. Fix: {fix}.")
    scale = float(scales[0])
    signed = bool(proxy.is_signed)
    return bits, math.log2(scale) + (bits - 1 if signed else bits), signed


def act_start(name: str, module: nn.Module, space: Any, ctl: ArchControl, relu: bool
              ) -> SearchableAct:
    """The searchable quantizer of a user's ``QuantReLU``/``QuantIdentity``: its bit width is
    the default choice (unless ``SearchSpace.act_bits`` names the module), its threshold the
    start."""
    kind = "QuantReLU" if relu else "QuantIdentity"
    fix = ("use act_quant=connas4ml_torch.quant.FixedPointUnsignedAct (or brevitas.quant."
           "Uint8ActPerTensorFixedPoint)" if relu else
           "use act_quant=connas4ml_torch.quant.FixedPointAct (or brevitas.quant."
           "Int8ActPerTensorFixedPoint)")
    where = f"module {label(name)} ({kind})"
    if not module.act_quant.is_quant_enabled:
        raise UnsupportedLayerError(f"searchable(): {where} has no activation quantizer. "
                                    f"Fix: {fix}.")
    bits, t, signed = brevitas_grid(where, module.act_quant, fix)
    mod = SearchableAct(name, ctl, space.act_bits_for(name, (bits,)), relu=relu or not signed)
    return mod.start_from(t)


class _ActKind(LayerKind):
    role = "act"
    searchable_type = SearchableAct
    relu = False
    # the hls4ml layer this activation becomes, for the cost model (None: free, e.g. a cast
    # that hls4ml merges into the next layer)
    hls_layer: ClassVar[str | None] = None
    hls_activation: ClassVar[str | None] = None

    def cost_axes(self, module: Any, node: Any) -> dict[str, tuple[str, str]]:
        if self.hls_layer is None:
            return {}
        axes = {"abits": (module.name, "bits")}
        if node.producer is not None:
            axes["in"] = (node.producer, "width")
        return axes

    def spec(self, ctx: Any, hls: Any) -> Any:
        """An hls4ml element-wise layer over the traced input: channels (the producer's chosen
        width when it is searched) times the pixels of the feature map."""
        if self.hls_layer is None:
            return None
        from connas4ml_torch.hardware.layerspec import LayerSpec

        shape = tuple(ctx.in_shape)
        channels = int(ctx.values.get("in", shape[1] if len(shape) > 1 else 1))
        bits = int(ctx.values["abits"])
        return LayerSpec(self.hls_layer, channels, channels, (), self.pixels(ctx),
                         input_bits=int(ctx.in_bits or activation_input_bits(bits)),
                         result_bits=bits, activation=self.hls_activation).with_hls(hls, ctx.name)

    def pixels(self, ctx: Any) -> tuple[int, ...]:
        """Output positions of an element-wise layer (the input's spatial size)."""
        return tuple(int(d) for d in ctx.in_shape[2:])

    def derive(self, mod: SearchableAct, choices: dict[str, dict[str, int]], ctx: Any = None):
        return make_quantizer(mod.log2_threshold, choices[mod.name]["bits"], relu=mod.relu)

    def check_export(self, name: str, m: nn.Module) -> None:
        fix = FIX["act"] if self.relu else FIX["input"]
        where = f"module {label(name)} ({type(m).__name__})"
        if not self.is_brevitas(m):
            raise ExportError(f"{where} is an unquantized activation, not supported by the "
                              f"bit-exact export: its output is not on a fixed-point grid and "
                              f"hls4ml would approximate it. Fix: {fix}.")
        if not m.act_quant.is_quant_enabled:
            raise ExportError(f"{where} has no activation quantizer. Fix: {fix}.")
        refuse_float_scale(where, "activation", m.act_quant, fix)


def activation_input_bits(result_bits: int) -> int:
    """The width assumed for an activation's input (a weight layer's accumulator, whose exact
    width depends on choices of other layers): its output's bits plus 8, the headroom of a sum
    of a few dozen products. The search and the export use the same rule, so that the search's
    cost of a network equals the cost model's prediction for the derived network."""
    return min(int(result_bits) + 8, 32)


def make_quantizer(log2_threshold: Tensor, bits: int, relu: bool) -> nn.Module:
    """A Brevitas ``QuantReLU`` (unsigned) or ``QuantIdentity`` (signed) on the fixed-point grid
    of ``bits`` bits with the given learned log2 threshold."""
    from brevitas.nn import QuantIdentity, QuantReLU

    if relu:
        q = QuantReLU(act_quant=FixedPointUnsignedAct, bit_width=bits, max_val=1.0)
    else:
        q = QuantIdentity(act_quant=FixedPointAct, bit_width=bits, min_val=-1.0, max_val=1.0)
    set_threshold(q.act_quant, log2_threshold)
    return q


class ReLU(_ActKind):
    name = "ReLU"
    relu = True
    hls_layer = "Activation"
    hls_activation = "relu"
    torch_types = (nn.ReLU,)
    brevitas_types = ("QuantReLU",)
    hls_classes = ("Activation",)
    onnx_ops = ("Relu", "Quant")
    grid_ops = ("relu",)

    def to_searchable(self, name: str, module: nn.Module, space: Any, ctl: ArchControl):
        if self.is_brevitas(module):
            return act_start(name, module, space, ctl, relu=True)
        return SearchableAct(name, ctl, space.act_bits_for(name), relu=True)

    def exact_precision(self, layer: Any, inputs: list[Any]) -> dict[str, Any] | None:
        """A ReLU not followed by a quantizer (``F.relu`` before a sum) keeps its input grid."""
        if layer.class_name != "Activation" or str(layer.get_attr("activation")).lower() != "relu":
            return None
        if not inputs:
            return None
        p = inputs[0]
        return {"result": (False, int(p.integer) - int(p.signed), int(p.width) - int(p.integer))}


class Quantizer(_ActKind):
    """A signed or unsigned ``QuantIdentity``: the network input's (the supernet adds it as
    ``"input"``), the input quantizer of a weight layer fed by a sum (``<layer>.input_quant``),
    or a user's own."""

    name = "Quantizer"
    brevitas_types = ("QuantIdentity",)
    onnx_ops = ("Quant",)
    grid_ops = ("identity",)

    def to_searchable(self, name: str, module: nn.Module, space: Any, ctl: ArchControl):
        return act_start(name, module, space, ctl, relu=False)


class FloatActivation(LayerKind):
    """Activations hls4ml has no exact implementation of: refused with the fix."""

    name = "FloatActivation"
    role = "refused"
    torch_types = (nn.ReLU6, nn.Hardtanh, nn.GELU, nn.SiLU, nn.ELU, nn.SELU, nn.CELU, nn.Mish,
                   nn.Softplus, nn.Softsign, nn.Hardswish, nn.Hardsigmoid, nn.PReLU,
                   nn.LogSoftmax, nn.Softmin, nn.Tanhshrink, nn.Softshrink, nn.Hardshrink)

    def refuse(self, name: str, module: nn.Module) -> str:
        return (f"{type(module).__name__} has no bit-exact hls4ml implementation here: its output "
                "would not match PyTorch's. Fix: use one hls4ml computes exactly (nn.ReLU; "
                "nn.Sigmoid, nn.Tanh, nn.LeakyReLU as lookup tables / fixed-point arithmetic), "
                "or apply it in software after the FPGA")


register(ReLU())
register(Quantizer())
register(FloatActivation())
