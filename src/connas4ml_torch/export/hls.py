"""Brevitas model -> QONNX -> hls4ml ``ModelGraph``, configured to be bit-exact (docs/design.md).

:func:`conversion` runs the pre-export checks, the QONNX export and hls4ml's conversion with the
precisions that make the project compute what PyTorch computes; nothing is written or compiled
here (:func:`connas4ml_torch.export.export_to_hls`, in ``project.py``, does that).
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from connas4ml_torch.export.checks import ExportError, LayerTrace, ModelTrace, check_exportable
from connas4ml_torch.hardware.config import STRATEGIES, HLSConfig
from connas4ml_torch.kinds import kind_of, kinds

__all__ = ["Conversion", "convert", "conversion", "required_result_type", "result_type_covers"]

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
    mw = mw.transform(ConvertToChannelsLastAndClean())
    mw = cleanup_model(mw.transform(GemmToMatMul()))
    return mw, raw


def _check_ops(mw: Any, raw: Any) -> None:
    """Refuse ONNX ops outside the verified subset, naming the torch scope they came from."""
    allowed = _allowed_ops()
    for node in mw.graph.node:
        if node.op_type in allowed:
            continue
        scopes = sorted({n.name for n in raw.graph.node if n.op_type == node.op_type})
        hint = f" (exported from {', '.join(scopes)})" if scopes else ""
        raise ExportError(
            f"the exported graph contains a {node.op_type} node{hint}: an operation in forward() "
            "that the bit-exact hls4ml export does not support (custom arithmetic such as "
            "torch.sigmoid, x * c, softmax, concatenation, residual adds). Fix: remove it from "
            "the exported network or express it with supported layers."
        )
    # only Add nodes with one constant input (biases) are verified: they become bias adds
    for node in mw.graph.node:
        if node.op_type == "Add":
            consts = [mw.get_initializer(i) is not None or _const_quant(mw, i) for i in node.input]
            if not any(consts):
                raise ExportError(
                    f"the exported graph adds two computed tensors ({node.name}): residual adds are "
                    "not verified bit-exact through hls4ml yet. Fix: remove the residual connection "
                    "from the exported network."
                )


def _const_quant(mw: Any, tensor: str) -> bool:
    prod = mw.find_producer(tensor)
    return prod is not None and prod.op_type == "Quant" and mw.get_initializer(prod.input[0]) is not None


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
# precision checks
# --------------------------------------------------------------------------------------------
def required_result_type(layer: LayerTrace) -> tuple[int, int]:
    """``(frac_bits, int_bits)`` an exact signed accumulator of ``layer`` needs.

    From the actual integer weights and biases and the input grid:
    ``max_j sum_i |w_ji| * max|x| + |b_j|`` bounds the output; the fraction bits are those of
    ``w * x`` and of the bias. ``int_bits`` counts the sign bit, as ``ap_fixed<W,I>``.
    """
    from connas4ml_torch.quant import int_range

    m = layer.module
    with torch.no_grad():
        w = m.quant_weight().value.detach().double()
        b = m.quant_bias().value.detach().double() if _bias_internal(m) else None
    lo, hi = int_range(layer.input.bits, layer.input.signed, narrow=False)
    x_max = max(abs(lo), abs(hi)) * layer.input.scale
    per_out = w.abs().reshape(w.shape[0], -1).sum(1) * x_max
    b_max = b.abs() if b is not None else torch.full_like(per_out, (2 ** (layer.bias.bits - 1)) * layer.bias.scale)
    bound = float((per_out + b_max).max())
    frac = max(-(layer.weight.log2_scale + layer.input.log2_scale), -layer.bias.log2_scale, 0)
    lsb = 2.0**-frac
    int_bits = max(1, math.ceil(math.log2(bound + lsb)) + 1) if bound > 0 else 1
    return frac, int_bits


def _bias_internal(m: nn.Module) -> bool:
    try:
        m.quant_bias()
        return True
    except Exception:  # external-scale bias quantizers need the input scale
        return False


def result_type_covers(precision: Any, frac: int, int_bits: int) -> bool:
    """Whether an hls4ml fixed-point type holds every value with ``frac``/``int_bits`` exactly."""
    width, integer = int(precision.width), int(precision.integer)
    signed = bool(getattr(precision, "signed", True))
    return signed and (width - integer) >= frac and integer >= int_bits


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

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="connas4ml_qonnx_") as tmp, _quiet():
        mw, raw = _export_qonnx(model, example_input, Path(tmp))
    timings["export"] = time.perf_counter() - t0
    _check_ops(mw, raw)
    onnx_names = _map_onnx_names(mw, trace)

    t0 = time.perf_counter()
    input_precision = trace.input.grid.hls_type("RND_CONV", "SAT")
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
            if onnx_names[t.name] in overrides:
                lc.setdefault("Precision", {}).update(overrides[onnx_names[t.name]])
        with _quiet(), contextlib.ExitStack() as patches:
            for k in kinds():  # a kind may fix an hls4ml parser bug during our conversion
                patches.enter_context(k.conversion_patch())
            hm = hls4ml.converters.convert_from_onnx_model(
                mw, output_dir=str(output_dir), backend=hls_config.backend,
                io_type=hls_config.io_type, hls_config=cfg, part=hls_config.part,
                clock_period=hls_config.clock_period,
            )
        layer_names = _map_hls_names(hm, onnx_names)
        narrow = _check_precisions(hm, trace, layer_names)
        if not narrow:
            break
        # hls4ml's inferred accumulator is too narrow for some layer: set it explicitly, once
        for name, (frac, ib) in narrow.items():
            t_str = f"fixed<{frac + ib},{ib}>"
            overrides[onnx_names[name]] = {"result": t_str, "accum": t_str}
    else:
        raise ExportError(
            f"hls4ml kept accumulators too narrow for exact results in layers {sorted(narrow)} even "
            "with explicit precisions; please report this model."
        )
    timings["convert"] = time.perf_counter() - t0
    return Conversion(hm, layer_names, onnx_names, input_precision, trace, timings)


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


def _check_precisions(hm: Any, trace: ModelTrace, layer_names: dict[str, str]) -> dict[str, tuple[int, int]]:
    """Verify hls4ml's weight/bias types equal the quantizers' grids; return too-narrow results."""
    narrow: dict[str, tuple[int, int]] = {}
    for t in trace.layers:
        layer = hm.graph[layer_names[t.name]]
        wp = layer.weights["weight"].type.precision
        if (int(wp.width), int(wp.integer)) != (t.weight.bits, t.weight.grid.int_bits):
            raise ExportError(
                f"internal: hls4ml weight type of {t.name!r} is {wp} but the quantizer's grid is "
                f"{t.weight.grid.hls_type()}; the project would not be exact."
            )
        frac, ib = required_result_type(t)
        res = layer.get_output_variable().type.precision
        acc = layer.get_attr("accum_t")
        acc = acc.precision if acc is not None else res
        if not (result_type_covers(res, frac, ib) and result_type_covers(acc, frac, ib)):
            narrow[t.name] = (frac, ib)
    return narrow


