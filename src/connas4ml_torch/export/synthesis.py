"""Vendor synthesis of an exported project through hls4ml, and predicted-vs-synthesized tables.

``hls_model.build()`` is hls4ml's; it shells out to the vendor tool. hls4ml 1.3.0 calls
``vitis-run`` for the Vitis backend (Vitis 2024.2+; older installs have only ``vitis_hls``) and
``vivado_hls`` for the Vivado backend. Reports are read with
:func:`connas4ml_torch.hardware.reports.read_project`, the reader the cost model's dataset uses.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd

from connas4ml_torch.hardware.resources import TARGETS

__all__ = ["VENDOR_TOOLS", "find_vendor_tool", "synthesize", "compare"]

# backend -> executables hls4ml's build() runs (first) or that indicate the install (rest)
VENDOR_TOOLS = {"Vitis": ("vitis-run", "vitis_hls"), "Vivado": ("vivado_hls",)}
_COMPARE = TARGETS


def find_vendor_tool(backend: str) -> str | None:
    """Path of the executable hls4ml's ``build()`` needs for ``backend``, or ``None``."""
    return shutil.which(VENDOR_TOOLS[backend][0])


def synthesize(hls_model: Any, output_dir: str | Path, backend: str, *, progress: bool = True,
               **build_kwargs: Any) -> pd.DataFrame | None:
    """Run C synthesis of the written project and return its parsed reports (model + layer rows).

    When the vendor tool is not on PATH, prints a clear message and returns ``None``; the project
    in ``output_dir`` stays complete (run ``build_prj.tcl`` there on a machine with the tool).
    ``build_kwargs`` go to ``hls_model.build()`` (default: ``csim=False, synth=True``).
    """
    output_dir = Path(output_dir)
    tool = find_vendor_tool(backend)
    if tool is None:
        names = " / ".join(VENDOR_TOOLS[backend])
        other = [n for n in VENDOR_TOOLS[backend][1:] if shutil.which(n)]
        extra = (f" ({other[0]} was found, but hls4ml 1.3.0's Vitis backend runs vitis-run; "
                 "use backend='Vivado' for vivado_hls or install Vitis 2024.2+)") if other else ""
        print(f"[connas4ml export] synthesis skipped: {names} is not on PATH{extra}. The complete "
              f"hls4ml project is in {output_dir}: run `vitis-run --mode hls --tcl build_prj.tcl` "
              f"(Vitis) or `vivado_hls -f build_prj.tcl` (Vivado) there, then read the reports "
              "with connas4ml_torch.hardware.reports.read_project().", flush=True)
        return None
    kwargs = {"csim": False, "synth": True}
    kwargs.update(build_kwargs)
    t0 = time.perf_counter()
    if progress:
        print(f"[connas4ml export] running {tool} (C synthesis) in {output_dir} ...", flush=True)
    hls_model.build(**kwargs)
    if progress:
        print(f"[connas4ml export] synthesis done ({time.perf_counter() - t0:.0f} s)", flush=True)
    from connas4ml_torch.hardware.reports import read_project

    return read_project(output_dir)


def compare(predicted: pd.DataFrame, synthesized: pd.DataFrame) -> pd.DataFrame:
    """Predicted (sum over layers) against synthesized (model-level report) resources, side by side.

    Latency and II are summed too (layers run one after another in io_parallel); treat them as
    rough for io_stream dataflow designs.
    """
    model_rows = synthesized[synthesized["level"] == "model"] if "level" in synthesized else synthesized
    predicted = predicted.rename(columns={"latency_cycles": "latency"})  # models saved before 0.2
    rows = []
    for key in _COMPARE:
        pred = float(predicted[key].sum()) if key in predicted else float("nan")
        synth = float(model_rows[key].iloc[0]) if key in model_rows and len(model_rows) else float("nan")
        ratio = pred / synth if synth not in (0.0,) and synth == synth else float("nan")
        rows.append({"resource": key, "predicted": pred, "synthesized": synth,
                     "predicted/synthesized": ratio})
    return pd.DataFrame(rows).set_index("resource")
