"""Brevitas model -> QONNX -> hls4ml ``ModelGraph``, configured to be bit-exact (docs/design.md).

:func:`conversion` runs the pre-export checks, the QONNX export and hls4ml's conversion with the
precisions that make the project compute what PyTorch computes; nothing is written or compiled
here (:func:`connas4ml_torch.export.export_to_hls`, in ``project.py``, does that).

Between two quantizers every hls4ml type must hold the exact value PyTorch computes, so that
the next quantizer rounds the same number: weight layers' accumulators (from the actual integer
weights), sums of branches, average pools, ReLUs not followed by a quantizer, lookup tables.
:func:`~connas4ml_torch.export.precision.check_precisions` computes what each needs (the layer kinds' ``exact_precision``) and the
conversion is redone once with those types set explicitly. The layer kinds also set their own
hls4ml configuration (table sizes and types: ``hls_node_config``) and may teach qonnx/hls4ml
their op during the export (``conversion_patch``).
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor, nn

from connas4ml_torch.export.checks import ExportError, ModelTrace, check_exportable
from connas4ml_torch.export.precision import check_precisions
from connas4ml_torch.hardware.config import STRATEGIES, HLSConfig
from connas4ml_torch.kinds import kind_of, kinds

__all__ = ["Conversion", "convert", "conversion"]

# ONNX ops (after qonnx cleanup, channels-last and GemmToMatMul) whose hls4ml mapping is exact:
# these layout ops and the quantizer, plus each layer kind's own (connas4ml_torch.kinds)
_LAYOUT_OPS = {"Quant", "Add", "Reshape", "Transpose", "Identity"}


def _allowed_ops() -> set[str]:
    return _LAYOUT_OPS | {op for k in kinds() for op in k.onnx_ops}


def _weight_ops() -> set[str]:
    return {k.onnx_weight_op for k in kinds("weight")}


def _weight_hls_classes() -> set[str]:
    return {c for k in kinds("weight") for c in k.hls_classes}


@dataclass
class Conversion:
    """What :func:`conversion` produced: the hls4ml model plus the bookkeeping around it."""

    hls_model: Any
    layer_names: dict[str, str]
    onnx_names: dict[str, str]
    input_precision: str
    trace: ModelTrace
    timings: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def _quiet(enabled: bool = True) -> Iterator[io.StringIO]:
    """Silence hls4ml's topology printing and the known-harmless warnings (docs/design.md, export)."""
    buf = io.StringIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*GemmToMatMul.*")
        warnings.filterwarnings("ignore", message=".*fast_hadamard_transform.*")
        # hls4ml's scale propagation gives up on residual sums: nothing to propagate with
        # power-of-two quantizers (the sums are verified bit-exact)
        warnings.filterwarnings("ignore", message=".*propagate quantization bias down Add.*")
        if enabled:
            with contextlib.redirect_stdout(buf):
                yield buf
        else:
            yield buf


def _check_strategies(hls_config: HLSConfig) -> None:
    strategies = [("strategy", hls_config.strategy)] + [
        (f"layers[{k!r}]['Strategy']", v["Strategy"]) for k, v in hls_config.layers.items()
        if "Strategy" in v
    ]
    for where, s in strategies:
        if str(s).lower() == "distributed_arithmetic":
            raise ExportError(
                f"HLSConfig.{where}='distributed_arithmetic' is not supported: hls4ml's "
                "distributed arithmetic fails on QONNX models ('Layer Dense_MatMul_0 has input "
                "Quant_0_out0 which is not in the model'). Fix: use 'Latency' or 'Resource'."
            )
        if s not in STRATEGIES:
            raise ExportError(f"HLSConfig.{where}={s!r} is not one of {STRATEGIES}.")


# --------------------------------------------------------------------------------------------
# QONNX
# --------------------------------------------------------------------------------------------
def _export_qonnx(model: nn.Module, example_input: Tensor, tmp: Path) -> tuple[Any, Any]:
    """Brevitas QONNX export (TorchScript path), cleanup, channels-last, Gemm -> MatMul."""
    import onnx
    from brevitas.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    path = tmp / "model_qonnx.onnx"
    was_training = model.training
    try:
        # dynamo=False: the TorchScript exporter is ~20x faster with the same graph (docs/design.md, export)
        export_qonnx(model.eval(), input_t=example_input[:1], export_path=str(path), dynamo=False)
    finally:
        model.train(was_training)
    raw = onnx.load(str(path))
    mw = cleanup_model(ModelWrapper(raw))
    _check_sums(mw)
    mw = mw.transform(ConvertToChannelsLastAndClean())
    mw = cleanup_model(mw.transform(GemmToMatMul()))
    return mw, raw


def _check_sums(mw: Any) -> None:
    """Refuse sums of two computed feature maps before qonnx's channels-last conversion, whose
    transpose-moving pass never ends on them (qonnx 1.0)."""
    for node in mw.graph.node:
        if node.op_type != "Add":
            continue
        computed = [i for i in node.input if mw.get_initializer(i) is None]
        shapes = [mw.get_tensor_shape(i) for i in computed]
        if len(computed) == 2 and any(s is not None and len(s) > 2 for s in shapes):
            raise ExportError(
                f"the exported graph adds two feature maps of shape {shapes[0]} ({node.name}): "
                "qonnx 1.0 cannot convert a sum of conv feature maps to channels-last (its "
                "transpose pass never ends). Fix: sum flattened (batch, features) tensors, or "
                "remove the residual connection from the exported network.")


def _check_ops(mw: Any, raw: Any, model: nn.Module | None = None) -> None:
    """Refuse ONNX ops outside the verified subset, naming the torch scope they came from.

    Ops a kind exports only from its own modules (``LayerKind.onnx_module_ops``: a lookup-table
    ``Sigmoid``) are refused when they come from anywhere else (``torch.sigmoid`` in
    ``forward()`` computes the float function, not hls4ml's table).
    """
    allowed = _allowed_ops()
    for node in mw.graph.node:
        if node.op_type in allowed:
            continue
        scopes = sorted({n.name for n in raw.graph.node if n.op_type == node.op_type})
        hint = f" (exported from {', '.join(scopes)})" if scopes else ""
        raise ExportError(
            f"the exported graph contains a {node.op_type} node{hint}: an operation in forward() "
            "that the bit-exact hls4ml export does not support (custom arithmetic such as "
            "x * c, concatenation, a function hls4ml lacks). Fix: remove it from the exported "
            "network or express it with supported layers."
        )
    if model is None:
        return
    owners = {}
    for k in kinds():
        for op in k.onnx_module_ops:
            owners.setdefault(op, []).append(k)
    for node in raw.graph.node:
        if node.op_type not in owners:
            continue
        scope = _onnx_scope(node.name)
        mod = _submodule(model, scope)
        if mod is None or not any(isinstance(mod, k.derived_types) for k in owners[node.op_type]):
            where = f"module {scope!r}" if scope else "the model's own forward()"
            raise ExportError(
                f"the exported graph contains a {node.op_type} node from {where} "
                f"({node.name}) that is not one of the exact lookup-table modules derive() "
                f"writes: a functional torch op computes the float function, hls4ml a table. "
                f"Fix: use the module (e.g. nn.{node.op_type}) in the model given to "
                "searchable(), and export the derived model.")


def _onnx_scope(node_name: str) -> str:
    """The qualified torch module name in a TorchScript ONNX node name: ``/net/net.1/op/Sigmoid``
    -> ``net.1.op`` (a component is either a child's name or already qualified)."""
    name = ""
    for part in [p for p in node_name.split("/") if p][:-1]:
        name = part if not name or part.startswith(name + ".") else f"{name}.{part}"
    return name


def _submodule(model: nn.Module, name: str) -> nn.Module | None:
    try:
        return model.get_submodule(name) if name else model
    except AttributeError:
        return None


def _map_onnx_names(mw: Any, trace: ModelTrace) -> dict[str, str]:
    """torch module name -> ONNX node name, matched by the weight tensor's values.

    The cleaned graph's node names (``MatMul_0``) say nothing about torch modules, so each
    MatMul/Conv is matched to the torch layer whose float weight holds the same values (layout
    may differ: Gemm weights are transposed); ties go by call order.
    """
    torch_w = [(t, np.sort(t.module.weight.detach().cpu().numpy().ravel())) for t in trace.layers]
    free = list(range(len(torch_w)))
    out: dict[str, str] = {}
    weight_ops = _weight_ops()
    for node in mw.graph.node:
        if node.op_type not in weight_ops:
            continue
        prod = mw.find_producer(node.input[1])
        w = mw.get_initializer(prod.input[0]) if prod is not None else mw.get_initializer(node.input[1])
        if w is None:
            raise ExportError(f"internal: {node.name} has no constant weight in the QONNX graph")
        key = np.sort(np.asarray(w).ravel())
        for i in free:
            if torch_w[i][1].shape == key.shape and np.array_equal(torch_w[i][1], key):
                out[torch_w[i][0].name] = node.name
                free.remove(i)
                break
        else:
            raise ExportError(f"internal: ONNX node {node.name} matches no torch weight layer")
    missing = [torch_w[i][0].name for i in free]
    if missing:
        raise ExportError(f"internal: torch layers {missing} were not found in the QONNX graph")
    return out


# --------------------------------------------------------------------------------------------
# conversion
# --------------------------------------------------------------------------------------------
def conversion(
    model: nn.Module,
    hls_config: HLSConfig,
    output_dir: str | Path,
    example_input: Tensor,
    *,
    trace: ModelTrace | None = None,
) -> Conversion:
    """Checks, QONNX export and hls4ml conversion, returning the model and its name maps.

    Nothing is written to ``output_dir`` (``hls_model.write()`` does that). Raises
    :class:`ExportError` before anything happens when the model cannot be exported exactly.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    _check_strategies(hls_config)
    if trace is None:
        trace = check_exportable(model, example_input)
    timings["check"] = time.perf_counter() - t0

    import hls4ml

    # a kind may teach qonnx / hls4ml its op or fix a parser bug, during our export only
    with contextlib.ExitStack() as patches:
        for k in kinds():
            patches.enter_context(k.conversion_patch())
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="connas4ml_qonnx_") as tmp, _quiet():
            mw, raw = _export_qonnx(model, example_input, Path(tmp))
        timings["export"] = time.perf_counter() - t0
        _check_ops(mw, raw, model)
        onnx_names = _map_onnx_names(mw, trace)

        t0 = time.perf_counter()
        input_precision = trace.input.grid.hls_type("RND_CONV", "SAT")
        hm, layer_names = _convert_exact(hls4ml, mw, trace, onnx_names, hls_config, output_dir,
                                         input_precision)
    timings["convert"] = time.perf_counter() - t0
    return Conversion(hm, layer_names, onnx_names, input_precision, trace, timings)


def _convert_exact(hls4ml: Any, mw: Any, trace: ModelTrace, onnx_names: dict[str, str],
                   hls_config: HLSConfig, output_dir: str | Path, input_precision: str
                   ) -> tuple[Any, dict[str, str]]:
    """hls4ml's conversion with every type between two quantizers exact.

    Converted once with hls4ml's inferred types; :func:`check_precisions` then lists the
    layers whose result (accumulator, table...) type is too narrow for the exact value, from
    the torch weights (weight layers) and from their inputs' types (sums, pools, ReLUs: each
    kind's ``exact_precision``); those are set explicitly and the model converted again, once.
    """
    overrides: dict[str, dict[str, str]] = {}
    for _attempt in range(2):
        with _quiet():
            cfg = hls4ml.utils.config_from_onnx_model(
                mw, granularity="name", backend=hls_config.backend, default_precision="fixed<16,6>"
            )
        cfg["Model"]["ReuseFactor"] = hls_config.reuse_factor
        cfg["Model"]["Strategy"] = hls_config.strategy
        in_name = mw.graph.input[0].name
        # the input must be rounded half-even and saturated onto the first quantizer's grid,
        # else it is truncated and rounded again (~3% of inputs off by one LSB, docs/design.md, export)
        cfg["LayerName"].setdefault(in_name, {}).setdefault("Precision", {})["result"] = input_precision
        for t in trace.layers:
            lc = cfg["LayerName"].setdefault(onnx_names[t.name], {})
            lc.update(kind_of(t.module).hls_layer_config(t.name, hls_config))
        for node in mw.graph.node:  # per-node settings of other kinds (lookup-table sizes ...)
            for k in kinds():
                if node.op_type in k.onnx_ops:
                    _merge_config(cfg["LayerName"].setdefault(node.name, {}),
                                  k.hls_node_config(node, mw))
        for name, prec in overrides.items():
            cfg["LayerName"].setdefault(name, {}).setdefault("Precision", {}).update(prec)
        with _quiet():
            hm = hls4ml.converters.convert_from_onnx_model(
                mw, output_dir=str(output_dir), backend=hls_config.backend,
                io_type=hls_config.io_type, hls_config=cfg, part=hls_config.part,
                clock_period=hls_config.clock_period,
            )
        layer_names = _map_hls_names(hm, onnx_names)
        narrow = check_precisions(hm, trace, layer_names, onnx_names)
        if not narrow:
            return hm, layer_names
        for name, prec in narrow.items():  # hls4ml's inferred types are too narrow: set them
            overrides.setdefault(name, {}).update(prec)
    raise ExportError(
        f"hls4ml kept types too narrow for exact results in layers {sorted(narrow)} even with "
        "explicit precisions; please report this model."
    )


def _merge_config(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict):
            into.setdefault(key, {}).update(value)
        else:
            into[key] = value


def convert(model: nn.Module, hls_config: HLSConfig, output_dir: str | Path,
            example_input: Tensor) -> Any:
    """The hls4ml ``ModelGraph`` of a Brevitas model, configured from ``hls_config``.

    Runs the pre-export checks, the QONNX export (TorchScript path), qonnx cleanup,
    channels-last, Gemm -> MatMul, and hls4ml's conversion with the input precision equal to the
    first quantizer's grid (``RND_CONV,SAT``) and reuse factor / strategy per layer from
    ``hls_config`` (overrides by torch module name). Writes and compiles nothing: call
    ``.write()`` / ``.compile()`` on the result.
    """
    return conversion(model, hls_config, output_dir, example_input).hls_model


def _map_hls_names(hm: Any, onnx_names: dict[str, str]) -> dict[str, str]:
    hls_layers = [layer.name for layer in hm.get_layers()]
    weight_classes = _weight_hls_classes()
    out: dict[str, str] = {}
    for torch_name, onnx_name in onnx_names.items():
        hits = [layer.name for layer in hm.get_layers()
                if (layer.name == onnx_name or layer.name.endswith("_" + onnx_name))
                and layer.class_name in weight_classes]
        if len(hits) != 1:
            raise ExportError(
                f"internal: cannot find the hls4ml layer of {torch_name!r} (ONNX {onnx_name}) "
                f"among {hls_layers}"
            )
        out[torch_name] = hits[0]
    return out
