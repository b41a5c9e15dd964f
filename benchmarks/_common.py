"""Shared plumbing for benchmark scripts: machine description, result files, RESULTS.md rows.

Every benchmark prints its numbers, writes them flat to ``benchmarks/results/<script>.json``
(units in the key names) and appends a dated section to ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
RESULTS_MD = HERE / "RESULTS.md"


def machine() -> str:
    """One line that says what ran the benchmark."""
    try:
        import torch

        dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
        tv = torch.__version__
    except Exception:  # torch-free benchmarks
        dev, tv = "no GPU", "n/a"
    return (f"{platform.node() or 'host'}: {platform.machine()}, {os.cpu_count()} CPUs, {dev}, "
            f"Python {platform.python_version()}, torch {tv}")


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def record(script: str, figures: dict[str, float | int | str | bool], table_md: str,
           write: bool = True) -> None:
    """Print ``table_md``; store ``figures`` as JSON and append a RESULTS.md section."""
    name = Path(script).stem
    print(table_md)
    if not write:
        return
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    flat = {k: v for k, v in figures.items() if isinstance(v, (int, float, str, bool))}
    flat["date"] = _dt.datetime.now().isoformat(timespec="seconds")
    flat["machine"] = machine()
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(flat, indent=2, sort_keys=True) + "\n")
    cmd = "python " + " ".join([f"benchmarks/{Path(script).name}", *sys.argv[1:]])
    with RESULTS_MD.open("a") as f:
        f.write(f"\n## {name} — {_dt.date.today().isoformat()}\n\n")
        f.write(f"Machine: {machine()}  \nCommand: `{cmd}`\n\n{table_md.strip()}\n")
