"""The exported project: :func:`export_to_hls` (checks, convert, write, compile, verify) and
what it returns (:class:`HLSProject`, :class:`Verification`).

The project is built in a temporary folder next to ``output_dir`` and renamed into place at the
end, so a failed export (a refused model, a bad example input, a g++ error) never leaves a
half-written project, and an existing folder is replaced only when ``overwrite=True`` (it may
hold a user's edited ``firmware/*.cpp``).
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from connas4ml_torch.errors import BitExactnessError, BitExactnessWarning, ExportError
from connas4ml_torch.export.hls import _quiet, conversion
from connas4ml_torch.export.specs import specs_from_trace
from connas4ml_torch.hardware.config import STRATEGIES, HLSConfig
from connas4ml_torch.hardware.layerspec import LayerSpec

__all__ = ["HLSProject", "Verification", "export_to_hls", "verify_project", "check_example"]


@dataclass
class Verification:
    """C simulation of the hls4ml project against PyTorch on the example inputs.

    ``argmax_agreement`` is ``None`` for single-output models. ``outputs_vary`` is ``False`` when
    PyTorch gives the same output row for every input: bit-exactness then proves nothing.
    """

    n_rows: int
    max_abs_diff: float
    bit_exact_rows: int
    bit_exact_fraction: float
    argmax_agreement: float | None
    bit_exact: bool
    outputs_vary: bool = True

    def __str__(self) -> str:
        am = "n/a" if self.argmax_agreement is None else f"{self.argmax_agreement:.2%}"
        return (f"{self.bit_exact_rows}/{self.n_rows} rows bit-exact "
                f"({self.bit_exact_fraction:.2%}), max |diff| {self.max_abs_diff:.3g}, "
                f"argmax agreement {am}" + ("" if self.outputs_vary else ", OUTPUTS CONSTANT"))


@dataclass
class HLSProject:
    """An exported hls4ml project and what is known about it.

    ``layer_names`` maps torch module names to hls4ml layer names (``"fc1" -> "Dense_MatMul_0"``);
    ``layer_specs`` holds the ``LayerSpec`` of each torch weight layer (reuse factor as hls4ml
    finally used it); ``predicted`` the per-layer predicted resources (when a resource model was
    given); ``synthesized`` the parsed vendor reports (when ``build=True`` ran); ``timings`` the
    seconds each stage took.
    """

    hls_model: Any
    output_dir: Path
    verification: Verification | None
    layer_specs: dict[str, LayerSpec]
    layer_names: dict[str, str]
    input_precision: str
    predicted: Any = None
    synthesized: Any = None
    timings: dict[str, float] = field(default_factory=dict)
    trace: Any = field(default=None, repr=False)

    def summary(self) -> str:
        """A few human-readable lines: project, verification, layers, resources."""
        lines = [f"hls4ml project: {self.output_dir}", f"input precision: {self.input_precision}"]
        if self.verification is not None:
            lines.append(f"verification: {self.verification}")
        else:
            lines.append("verification: not run")
        lines.append("layers (torch -> hls4ml: type n_in->n_out, bits w/in, RF, strategy):")
        for name, spec in self.layer_specs.items():
            lines.append(
                f"  {name} -> {self.layer_names.get(name, '?')}: {spec.layer_type} "
                f"{spec.n_in}->{spec.n_out}{'' if not spec.kernel else f' k={spec.kernel}'}, "
                f"w{spec.weight_bits}/in{spec.input_bits}, RF {spec.reuse_factor}, {spec.strategy}"
            )
        if self.predicted is not None:
            lines.append("predicted resources:\n" + _indent(str(self.predicted)))
        if self.synthesized is not None:
            lines.append("synthesized:\n" + _indent(str(self.synthesized)))
        if self.timings:
            lines.append("timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in self.timings.items()))
        return "\n".join(lines)


def _indent(s: str) -> str:
    return "\n".join("  " + x for x in s.splitlines())


def check_example(x: Any) -> Tensor:
    """The example input as a float tensor, or an :class:`ExportError` that says what is wrong
    with it (not a matmul or reshape error from deep inside the export)."""
    if not isinstance(x, Tensor):
        raise ExportError(f"example_input must be a torch.Tensor (batch first), got "
                          f"{type(x).__name__}; convert with torch.as_tensor(x, dtype=torch.float32)")
    if x.dim() < 2:
        raise ExportError(f"example_input has shape {tuple(x.shape)}: it needs a batch dimension "
                          "first, e.g. x.unsqueeze(0) for one sample or x[:256] for a batch")
    if x.shape[0] == 0 or x.numel() == 0:
        raise ExportError(f"example_input of shape {tuple(x.shape)} is empty: pass a batch of real "
                          "inputs (a few hundred rows make a meaningful bit-exact check)")
    if not x.is_floating_point():
        raise ExportError(f"example_input has dtype {x.dtype}: the network takes real-valued "
                          "inputs; pass x.float()")
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ExportError(f"example_input holds {bad} NaN/inf values: the bit-exact check needs "
                          "finite inputs; drop or replace those rows")
    return x.detach().float().cpu()


def _on_cpu(model: nn.Module) -> nn.Module:
    """The model itself on the CPU, or a CPU copy of a model trained elsewhere (a GPU): QONNX
    export and the C-simulation check run on the CPU, and the user's model stays where it is."""
    if isinstance(model, nn.Module) and any(
            t.device.type != "cpu" for t in [*model.parameters(), *model.buffers()]):
        return copy.deepcopy(model).cpu()
    return model


def _prepare_dir(target: Path, overwrite: bool) -> Path:
    """Refuse a non-empty existing ``target`` unless ``overwrite``; a fresh temporary sibling."""
    if target.exists() and not target.is_dir():
        raise ExportError(f"output_dir {target} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise ExportError(f"output_dir {target} exists and is not empty: the export would replace "
                          "it (and any edited firmware in it). Choose a new folder, or pass "
                          "overwrite=True (CLI: --overwrite)")
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))


def _move_into_place(hm: Any, work: Path, target: Path) -> None:
    """Rename the finished project ``work`` to ``target`` and point hls4ml at the new place."""
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(work, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(work, target)
    hm.config.config["OutputDir"] = str(target)
    for f in target.glob("*.yml"):  # hls4ml_config.yml records the folder it was written to
        text = f.read_text()
        if str(work) in text:
            f.write_text(text.replace(str(work), str(target)))


# --------------------------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------------------------
def _reference(model: nn.Module, x: Tensor) -> np.ndarray:
    """PyTorch output in float64 (a float32 sum of >24-bit accumulators would itself round)."""
    ref = copy.deepcopy(model).eval().double()
    with torch.no_grad():
        y = ref(x.double())
    y = y.value if hasattr(y, "value") else y
    if y.ndim > 2:  # channels-last, as the hls4ml output
        y = y.permute(0, *range(2, y.ndim), 1)
    return y.reshape(y.shape[0], -1).cpu().numpy()


def verify_project(hls_model: Any, model: nn.Module, example_input: Tensor) -> Verification:
    """Compare the compiled hls4ml C simulation with PyTorch on ``example_input`` row by row."""
    y_ref = _reference(model, example_input)
    x = np.ascontiguousarray(example_input.detach().cpu().double().numpy())
    with _quiet():
        y_hls = np.asarray(hls_model.predict(x), dtype=np.float64)
    y_hls = y_hls.reshape(y_ref.shape[0], -1)
    if y_hls.shape != y_ref.shape:
        raise ExportError(
            f"hls4ml output shape {y_hls.shape} differs from PyTorch's {y_ref.shape}")
    diff = np.abs(y_hls - y_ref)
    exact = np.all(diff == 0, axis=1)
    n = int(y_ref.shape[0])
    am = None
    if y_ref.shape[1] > 1:
        am = float(np.mean(np.argmax(y_hls, 1) == np.argmax(y_ref, 1)))
    vary = bool(n > 1 and np.any(y_ref != y_ref[:1]))
    return Verification(n, float(diff.max()) if diff.size else 0.0, int(exact.sum()),
                        float(exact.mean()) if n else 0.0, am, bool(exact.all()), vary)


# --------------------------------------------------------------------------------------------
# the whole flow
# --------------------------------------------------------------------------------------------
def export_to_hls(
    model: nn.Module,
    hls_config: HLSConfig,
    output_dir: str | Path,
    example_input: Tensor,
    *,
    verify: bool = True,
    compile: bool = True,
    build: bool = False,
    resource_model: Any = None,
    progress: bool = True,
    strict: bool = False,
    overwrite: bool = False,
) -> HLSProject:
    """Export a derived Brevitas model to a bit-exact hls4ml project and verify it.

    Steps: pre-export checks (:class:`ExportError` before anything is written), QONNX export,
    hls4ml conversion (:func:`convert`), ``write()``, ``compile()`` (g++, a few seconds), C
    simulation against PyTorch on every row of ``example_input`` (``verify``; needs ``compile``),
    predicted resources per layer from ``resource_model.predict(specs)`` when given, and vendor
    synthesis when ``build=True`` (skipped with a clear message when the tool is not on PATH).

    A project that is not bit-exact raises a :class:`BitExactnessWarning` (or
    :class:`BitExactnessError` with ``strict=True``); ``verification.bit_exact`` is the flag.
    The model is used in eval mode and its training mode restored. An existing, non-empty
    ``output_dir`` is refused unless ``overwrite=True``; the project is built in a temporary
    folder and renamed into place only when every step succeeded.
    """
    output_dir = Path(output_dir)
    example_input = check_example(example_input)
    model = _on_cpu(model)
    if not isinstance(hls_config, HLSConfig):
        raise ExportError(f"hls_config must be an HLSConfig, got {type(hls_config).__name__}")
    if verify and not compile:
        raise ExportError("verify=True needs compile=True (the C simulation is the compiled project)")

    def say(msg: str) -> None:
        if progress:
            print(f"[connas4ml export] {msg}", flush=True)

    work = _prepare_dir(output_dir, overwrite)
    try:
        project = _build(model, hls_config, output_dir, work, example_input, verify, compile,
                         strict, say)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _move_into_place(project.hls_model, work, output_dir)
    say(f"project in {output_dir}")
    return _finish(project, hls_config, resource_model, build, progress, say)


def _build(model: nn.Module, hls_config: HLSConfig, target: Path, work: Path, example_input: Tensor,
           verify: bool, compile: bool, strict: bool, say) -> HLSProject:
    """Convert, write, compile and verify in ``work``; nothing outside it is touched."""
    conv = conversion(model, hls_config, work, example_input)
    hm, timings = conv.hls_model, dict(conv.timings)
    say(f"checked, exported to QONNX and converted ({timings['check'] + timings['export'] + timings['convert']:.2f} s)")

    t0 = time.perf_counter()
    with _quiet():
        hm.write()
    timings["write"] = time.perf_counter() - t0
    say(f"wrote the project ({timings['write']:.2f} s)")

    result: Verification | None = None
    if compile:
        t0 = time.perf_counter()
        with _quiet() as log:
            try:
                hm.compile()
            except Exception as exc:
                raise RuntimeError(
                    f"g++ compilation of the hls4ml project for {target} failed: {exc}\n"
                    f"{log.getvalue()[-3000:]}"
                ) from exc
        timings["compile"] = time.perf_counter() - t0
        say(f"compiled the C simulation ({timings['compile']:.2f} s)")
    if verify:
        t0 = time.perf_counter()
        result = verify_project(hm, model, example_input)
        timings["predict"] = time.perf_counter() - t0
        say(f"verification: {result}")
        if not result.outputs_vary:
            warnings.warn(
                "the PyTorch model gives the same output for every example input: the bit-exact "
                "check proves nothing. Check the quantizer thresholds (all activations saturated "
                "or zero?) and pass varied example inputs.", BitExactnessWarning, stacklevel=3)
        if not result.bit_exact:
            msg = (f"the hls4ml project for {target} is NOT bit-exact with the PyTorch model: "
                   f"{result}. Please report this model; do not deploy the project.")
            if strict:
                raise BitExactnessError(msg)
            warnings.warn(msg, BitExactnessWarning, stacklevel=3)
    return HLSProject(hm, target, result, {}, conv.layer_names, conv.input_precision,
                      timings=timings, trace=conv.trace)


def _finish(project: HLSProject, hls_config: HLSConfig, resource_model: Any, build: bool,
            progress: bool, say) -> HLSProject:
    """Layer specs as hls4ml finally built them, predicted resources, optional synthesis."""
    hm, timings, output_dir = project.hls_model, project.timings, project.output_dir
    specs = specs_from_trace(project.trace, hls_config)
    for name, spec in list(specs.items()):  # what hls4ml finally used (it may fix invalid RFs)
        layer = hm.graph[project.layer_names[name]]
        rf = int(layer.get_attr("reuse_factor", spec.reuse_factor))
        strat = str(layer.get_attr("strategy", spec.strategy))
        strat = next((s for s in STRATEGIES if s.lower() == strat.lower()), spec.strategy)
        if rf != spec.reuse_factor:
            warnings.warn(f"hls4ml changed the reuse factor of {name!r} from {spec.reuse_factor} "
                          f"to {rf} (not valid for this layer)", stacklevel=3)
        specs[name] = replace(spec, reuse_factor=rf, strategy=strat)
    project.layer_specs = specs

    predicted = None
    if resource_model is not None:
        predicted = resource_model.predict(list(specs.values()))
        with contextlib.suppress(Exception):  # index by torch name when the frame allows it
            if len(predicted) == len(specs):
                predicted.index = list(specs)

    synthesized = None
    if build:
        from connas4ml_torch.export.synthesis import compare, synthesize

        t0 = time.perf_counter()
        synthesized = synthesize(hm, output_dir, hls_config.backend, progress=progress)
        timings["build"] = time.perf_counter() - t0
        if synthesized is not None and predicted is not None:
            say("predicted vs synthesized:\n" + str(compare(predicted, synthesized)))

    project.predicted, project.synthesized = predicted, synthesized
    return project

