"""Activation quantizers: ``nn.ReLU`` -> searchable bits -> ``QuantReLU``, and the network input's
``QuantIdentity`` (the ``Quantizer`` kind, added by the supernet itself, named ``"input"``).

Both are fixed-point grids with a learned power-of-two threshold; in hls4ml a ``QuantReLU``
becomes a ``Relu`` then a cast to the quantizer's ``ap_ufixed`` type, exactly.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from connas4ml_torch.errors import ExportError
from connas4ml_torch.kinds._weights import label, set_threshold
from connas4ml_torch.kinds.base import (
    ArchControl,
    LayerKind,
    Searchable,
    arch_param,
    quant_mix,
    register,
)
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

    def choice_values(self) -> dict[str, tuple[int, ...]]:
        return {"bits": self.bits}

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


class _ActKind(LayerKind):
    role = "act"
    searchable_type = SearchableAct
    relu = False

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
    torch_types = (nn.ReLU,)
    brevitas_types = ("QuantReLU",)
    hls_classes = ("Activation",)
    onnx_ops = ("Relu", "Quant")
    grid_ops = ("relu",)

    def to_searchable(self, name: str, module: nn.Module, space: Any, ctl: ArchControl):
        return SearchableAct(name, ctl, space.act_bits_for(name), relu=True)


class Quantizer(_ActKind):
    """The signed input quantizer (a ``QuantIdentity``); the supernet adds it as ``"input"``."""

    name = "Quantizer"
    brevitas_types = ("QuantIdentity",)
    onnx_ops = ("Quant",)
    grid_ops = ("identity",)


class FloatActivation(LayerKind):
    """Activations without a fixed-point implementation here (yet): refused with the fix."""

    name = "FloatActivation"
    role = "refused"
    torch_types = (nn.ReLU6, nn.LeakyReLU, nn.Hardtanh, nn.Sigmoid, nn.Tanh, nn.GELU, nn.SiLU,
                   nn.ELU, nn.Softmax)

    def refuse(self, name: str, module: nn.Module) -> str:
        return ("an unquantized activation, not supported by the bit-exact export: its output is "
                "not on a fixed-point grid and hls4ml would approximate it. Fix: remove it from "
                "the exported network (apply it in software after the FPGA), or replace it by "
                "nn.ReLU (QuantReLU in a Brevitas model)")


register(ReLU())
register(Quantizer())
register(FloatActivation())
