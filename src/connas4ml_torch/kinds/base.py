"""The layer-kind registry and the machinery every searchable layer shares.

A *layer kind* (:class:`LayerKind`) is the one place that knows, for one kind of layer, every
fact the rest of the library needs: which float and Brevitas modules it covers, what it becomes
in the supernet, how the chosen network is derived from the supernet, its ``LayerSpec`` (the
hardware description the cost model reads), the architecture variables its cost depends on, the
export checks, the hls4ml configuration and the one-layer network a synthesis sweep builds.
Every other part asks the registry (:func:`kind_of`, :func:`kinds`) and never names a layer
class itself. Adding a kind is one new module in this package that calls :func:`register`
(docs/layer_kinds.md).

The supernet side every searchable layer shares (:class:`ArchControl`, :class:`Searchable`,
:func:`quant_mix`) lives in ``_searchable.py`` and is re-exported here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from torch import Tensor, nn

from connas4ml_torch.errors import UnsupportedLayerError
from connas4ml_torch.kinds._searchable import (  # noqa: F401 (re-exported)
    ARCH_PREFIX,
    SAMPLED_IN_AUTO,
    ArchControl,
    Searchable,
    arch_param,
    choice_argmax,
    mix_rows,
    quant_mix,
)

if TYPE_CHECKING:
    from connas4ml_torch.hardware.config import HLSConfig
    from connas4ml_torch.hardware.layerspec import LayerSpec

__all__ = [
    "ARCH_PREFIX", "SAMPLED_IN_AUTO", "ArchControl", "choice_argmax", "arch_param", "quant_mix",
    "mix_rows",
    "Searchable",
    "LayerKind", "SpecContext", "DeriveContext", "register", "unregister", "kinds", "kind_of", "kind_named",
    "searchable_kind", "require_kind", "supported_names",
]

@dataclass(frozen=True)
class SpecContext:
    """What a kind needs to describe one layer to the cost model.

    ``values`` are the chosen architecture values of the layer's cost variables (``"out"``,
    ``"in"``, ``"wbits"``, ``"abits"``, ``"kernel"``); ``in_shape``/``out_shape`` the traced
    shapes; ``block`` the input features per producer channel (Dense after a flatten);
    ``in_bits`` the width of the layer's input type when the search knows it (an activation fed
    by a weight layer's accumulator: its widest case); ``with_weights``: describe the layer's
    current weights too (non-zero count, CSD digits) for a weight-aware cost model; ``memo``: a
    dict one layer's choices share within one table build (a kind may keep per-layer work there).
    """

    name: str
    module: Any
    values: dict[str, int]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    block: int = 1
    in_bits: int | None = None
    with_weights: bool = False
    memo: dict | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class DeriveContext:
    """Where a supernet layer sits: the chosen width of the layer feeding it (``None``: the
    model input or a fixed width) and the input features per producer channel."""

    in_width: int | None = None
    block: int = 1


class LayerKind:
    """One kind of layer and everything the library knows about it (override what applies).

    Class attributes:
        name: registry key (``"Dense"``); also the hls4ml layer class when ``hls_classes`` is
            not given.
        role: ``"weight"`` (has searchable weights), ``"act"`` (a quantizer with searchable bits),
            ``"passive"`` (kept as is: keeps the tensor on its quantizer's grid),
            ``"block"`` (a choice over a whole block: kinds/skip.py) or ``"refused"`` (known
            but not supported: :meth:`refuse` says why and what to do).
        torch_types: float modules this kind converts in :func:`connas4ml_torch.searchable`.
        brevitas_types: class names of the Brevitas modules of this kind in a derived or
            exported model (``"QuantLinear"``; matched on the class and its bases).
        searchable_type: the supernet module class (role weight/act).
        hls_classes: hls4ml layer classes the exported layer becomes.
        onnx_ops: ONNX ops (after qonnx cleanup) this kind exports to.
        onnx_weight_op: (weight kinds) the ONNX op that carries the weight (``MatMul``, ``Conv``).
        grid_ops: torch function names that keep a tensor on its quantizer's grid (trace).
        exact_ops: torch function names whose result leaves the grid but that hls4ml computes
            exactly when its result type is wide enough (a sum of two branches): a weight layer
            fed by such a result gets a searchable input quantizer (trace, ``Supernet.analyse``).
        derived_types: non-Brevitas module classes this kind derives (a lookup-table
            activation): ``kind_of`` knows them in derived and exported models.
        onnx_module_ops: ONNX ops of ``onnx_ops`` that are exact only when exported by one of
            ``derived_types`` (a ``Sigmoid`` from ``torch.sigmoid`` in ``forward()`` is not the
            hls4ml lookup table): the export refuses them from anywhere else.

    Roles: ``"weight"``, ``"act"`` (a searchable quantizer, possibly after an operation whose
    output leaves the grid: average pooling, a lookup-table activation; its bits are searched as
    ``SearchSpace.act_bits[<module name>]``), ``"fold"`` (folded into the weight layer before it:
    BatchNorm), ``"passive"`` and ``"refused"``.
    """

    name: ClassVar[str] = ""
    role: ClassVar[str] = "passive"
    torch_types: ClassVar[tuple[type, ...]] = ()
    brevitas_types: ClassVar[tuple[str, ...]] = ()
    searchable_type: ClassVar[type | None] = None
    hls_classes: ClassVar[tuple[str, ...]] = ()
    onnx_ops: ClassVar[tuple[str, ...]] = ()
    onnx_weight_op: ClassVar[str] = ""  # weight kinds: the ONNX op that carries the weight
    grid_ops: ClassVar[tuple[str, ...]] = ()
    exact_ops: ClassVar[tuple[str, ...]] = ()
    derived_types: ClassVar[tuple[type, ...]] = ()
    onnx_module_ops: ClassVar[tuple[str, ...]] = ()

    # ---- the supernet ---------------------------------------------------------------------
    def matches(self, module: nn.Module) -> bool:
        """Whether ``module`` (float or Brevitas) is of this kind."""
        return isinstance(module, self.torch_types) or self.is_brevitas(module)

    def is_brevitas(self, module: nn.Module) -> bool:
        return any(c.__name__ in self.brevitas_types and c.__module__.startswith("brevitas.")
                   for c in type(module).__mro__)

    def to_searchable(self, name: str, module: nn.Module, space: Any, ctl: ArchControl
                      ) -> nn.Module | None:
        """The supernet's module for ``module`` (``None``: keep it as it is)."""
        return None

    def refuse(self, name: str, module: nn.Module) -> str:
        """Why a module of a ``"refused"`` kind cannot be searched, and what to do."""
        return "not supported"

    def exact_op_problem(self, op: str, shapes: list[tuple[int, ...]]) -> str | None:
        """Why one of this kind's ``exact_ops`` on tensors of these shapes cannot be exported
        after all (``None``: it can): ``"<the op> -- <why>. Fix: <what to do>"``; the trace then
        treats it as an inexact op and ``searchable()`` refuses it with that text."""
        return None

    def check_traced(self, name: str, module: nn.Module, node: Any) -> None:
        """Called by ``Supernet.analyse`` with the traced node of a searchable module of this
        kind (``trace.LayerNode``/``ActNode``/``FoldNode``): refuse (``UnsupportedLayerError``
        naming the module) what only the traced shapes show cannot be exported exactly, and
        record what ``derive`` needs from them (an adaptive pool's window)."""

    # ---- derivation -------------------------------------------------------------------------
    def derive(self, module: nn.Module, choices: dict[str, dict[str, int]], ctx: Any) -> nn.Module:
        """The Brevitas module of the chosen network for supernet module ``module``."""
        raise NotImplementedError(f"{self.name} has nothing to derive")

    # ---- cost model --------------------------------------------------------------------------
    def cost_axes(self, module: nn.Module, node: Any) -> dict[str, tuple[str, str]]:
        """The architecture variables the layer's cost depends on: ``{"out": (layer, "width"),
        "wbits": (layer, "weight_bits"), "in": (producer, "width"), "abits": (quant, "bits"),
        "kernel": (layer, "kernel")}`` (only those that exist)."""
        return {}

    def spec(self, ctx: SpecContext, hls: HLSConfig) -> LayerSpec | None:
        """The ``LayerSpec`` of a supernet layer under one choice of its cost variables
        (``None``: not costed, e.g. a max pool no quantizer feeds)."""
        raise NotImplementedError(f"{self.name} has no hardware description")

    # ---- export -------------------------------------------------------------------------------
    def check_export(self, name: str, module: nn.Module) -> None:
        """Raise ``ExportError`` if this (Brevitas or passive) module cannot be exported exactly."""
        if self.role == "refused":
            from connas4ml_torch.errors import ExportError

            raise ExportError(f"module {name!r} ({type(module).__name__}): "
                              f"{self.refuse(name, module)}")

    def export_spec(self, trace: Any, hls: HLSConfig) -> LayerSpec:
        """The ``LayerSpec`` of a traced Brevitas layer of this kind (export, predicted resources)."""
        raise NotImplementedError(f"{self.name} has no hardware description")

    def hls_layer_config(self, name: str, hls: HLSConfig) -> dict[str, Any]:
        """Per-layer entries for hls4ml's ``LayerName`` config (hls4ml key names)."""
        return {}

    def conversion_patch(self) -> contextlib.AbstractContextManager:
        """A context active during the QONNX export, its cleanup and hls4ml's conversion (to
        teach qonnx or hls4ml this kind's ONNX op, or work around a parser bug); nothing by
        default."""
        return contextlib.nullcontext()

    def hls_node_config(self, node: Any, graph: Any) -> dict[str, Any]:
        """hls4ml ``LayerName`` entries for an ONNX node of one of this kind's ``onnx_ops``
        (after qonnx cleanup; ``graph`` is the qonnx ``ModelWrapper``, for shapes), e.g. the
        table size and type of a lookup-table activation. hls4ml reads a type attribute from a
        ``"<name>_t"`` key (``"table_t"``), the result and accumulator from ``"Precision"``."""
        return {}

    def exact_precision(self, layer: Any, inputs: list[Any]) -> dict[str, Any] | None:
        """The hls4ml precisions an hls4ml layer of one of this kind's ``hls_classes`` needs to
        compute exactly what PyTorch computes, from its input precisions (hls4ml
        ``FixedPrecisionType``): ``{"result": (signed, int_bits, frac_bits), "accum": ...}``
        (``int_bits`` counts the sign bit); ``None``: not this kind's layer. Types a kind
        chooses itself (a table's, a parameter's) go in ``hls_node_config``. Used by the export
        to set (and then check) every type between two quantizers: sums, average pooling,
        lookup tables."""
        return None

    # ---- synthesis sweeps -----------------------------------------------------------------------
    def build_layer(self, spec: LayerSpec, seed: int, bias_bits: int) -> tuple[nn.Module, Tensor]:
        """A one-layer Brevitas network of ``spec`` and an example input (synthesis sweeps)."""
        raise NotImplementedError(f"{self.name} cannot be built as a one-layer network")

    def __repr__(self) -> str:
        return f"<layer kind {self.name} ({self.role})>"


_REGISTRY: dict[str, LayerKind] = {}


def register(kind: LayerKind) -> LayerKind:
    """Add ``kind`` to the registry (a later kind of the same name replaces the earlier one)."""
    if not kind.name:
        raise ValueError(f"{type(kind).__name__}: a layer kind needs a name")
    _REGISTRY[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (tests that add a kind take it out again)."""
    _REGISTRY.pop(name, None)


def kinds(role: str | None = None) -> Iterator[LayerKind]:
    """Registered kinds (of one ``role``), in registration order."""
    _load()
    return (k for k in _REGISTRY.values() if role is None or k.role == role)


def kind_named(name: str) -> LayerKind:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnsupportedLayerError(f"no layer kind {name!r}; registered: "
                                    f"{', '.join(_REGISTRY)}") from None


def kind_of(module: nn.Module) -> LayerKind | None:
    """The kind of ``module`` (Brevitas types before float types: QuantLinear is an nn.Linear)."""
    _load()
    if isinstance(module, Searchable):
        return _REGISTRY.get(module.kind)
    for k in _REGISTRY.values():
        if k.is_brevitas(module):
            return k
    for k in _REGISTRY.values():
        if k.derived_types and isinstance(module, k.derived_types):
            return k
    for k in _REGISTRY.values():
        if isinstance(module, k.torch_types):
            return k
    return None


def searchable_kind(module: nn.Module) -> LayerKind:
    """The kind of a supernet module (``Searchable`` subclasses name theirs)."""
    k = kind_of(module)
    if k is None:
        raise UnsupportedLayerError(f"{type(module).__name__} is not a registered searchable layer")
    return k


def supported_names() -> str:
    """``"nn.Linear, nn.Conv1d, ..."``: every module type some kind accepts (for messages)."""
    _load()
    names = []
    for k in _REGISTRY.values():
        if k.role == "refused":
            continue
        names += [f"nn.{t.__name__}" if t.__module__.startswith("torch.nn") else t.__name__
                  for t in k.torch_types]
    return ", ".join(dict.fromkeys(names))


def require_kind(name: str, module: nn.Module, where: str) -> LayerKind:
    """The kind of ``module``; an :class:`UnsupportedLayerError` naming the module, its class and
    the supported kinds otherwise (``where``: the calling step, e.g. ``"searchable()"``)."""
    k = kind_of(module)
    if k is None:
        raise UnsupportedLayerError(
            f"{where}: module {name!r} of type {type(module).__name__} is not supported. "
            f"Supported: {supported_names()} (and containers / custom modules made of them); "
            "a new layer kind is one module in connas4ml_torch/kinds (docs/layer_kinds.md)")
    if k.role == "refused":
        raise UnsupportedLayerError(f"{where}: module {name!r} ({type(module).__name__}): "
                                    f"{k.refuse(name, module)}")
    return k


_LOADED = [False]


def _load() -> None:
    """Import every module of this package once (each registers its kinds)."""
    if _LOADED[0]:
        return
    _LOADED[0] = True
    import importlib
    import pkgutil

    import connas4ml_torch.kinds as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.name.startswith("_") and info.name != "base":
            importlib.import_module(f"{pkg.__name__}.{info.name}")
