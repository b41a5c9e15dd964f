"""Seconds per stage of ``export_to_hls`` for the jet MLP (16-64-32-32-5) and the Conv2d CNN.

Stages: pre-export checks, QONNX export (TorchScript path + qonnx cleanup/channels-last/
GemmToMatMul), hls4ml convert, write, g++ compile of the C simulation, predict (C simulation of
256 rows + the float64 PyTorch reference). Medians over ``--repeats`` full exports, run serially
(parallel compiles on 2 cores swing timings by up to 10x). Goal: under 10 s in total for the jet
MLP. The models are the test models of ``tests/test_export.py`` (random weights, thresholds
calibrated on the data, bit-exactness asserted here too).

    python benchmarks/export_time.py [--repeats 3] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import torch  # noqa: E402
from _common import record  # noqa: E402
from test_export import CNN2d, JetMLP, calibrate  # noqa: E402

from connas4ml_torch.export import export_to_hls  # noqa: E402
from connas4ml_torch.hardware.config import HLSConfig  # noqa: E402

STAGES = ("check", "export", "convert", "write", "compile", "predict")


def bench(name: str, model: torch.nn.Module, x: torch.Tensor, cfg: HLSConfig,
          repeats: int) -> dict[str, float]:
    calibrate(model, x)
    runs: list[dict[str, float]] = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix=f"bench_{name}_") as d:
            prj = export_to_hls(model, cfg, Path(d) / "prj", x, progress=False)
        assert prj.verification is not None and prj.verification.bit_exact, prj.verification
        t = dict(prj.timings)
        t["total"] = sum(t[s] for s in STAGES)
        runs.append(t)
    return {k: statistics.median(r[k] for r in runs) for k in (*STAGES, "total")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    torch.manual_seed(0)
    cases = {
        "jet_mlp": (JetMLP(), torch.randn(256, 16), HLSConfig(backend="Vitis")),
        "cnn2d": (CNN2d(), torch.randn(256, 2, 12, 12), HLSConfig(backend="Vitis")),
    }
    load_before = os.getloadavg()[0]
    figures: dict[str, float | int | str | bool] = {"repeats": args.repeats, "rows": 256}
    lines = ["| model | check | export | convert | write | compile | predict | total (s) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, (model, x, cfg) in cases.items():
        r = bench(name, model, x, cfg, args.repeats)
        for k, v in r.items():
            figures[f"{name}_{k}_s"] = round(v, 4)
        lines.append(f"| {name} | " + " | ".join(f"{r[k]:.3f}" for k in (*STAGES, "total")) + " |")
    figures["jet_mlp_under_10s"] = figures["jet_mlp_total_s"] < 10.0
    figures["loadavg_1min_before"] = round(load_before, 2)
    figures["loadavg_1min_after"] = round(os.getloadavg()[0], 2)
    table = "\n".join(lines) + (
        f"\n\nMedians of {args.repeats} full exports (io_parallel, Vitis backend, Latency, RF 1; "
        "256 example rows, all bit-exact). Goal: jet MLP total < 10 s: "
        f"{'met' if figures['jet_mlp_under_10s'] else 'NOT met'}. 1-min load average "
        f"{load_before:.1f} before, {figures['loadavg_1min_after']:.1f} after on "
        f"{os.cpu_count()} CPUs (g++ compile time grows with other load).\n")
    record(__file__, figures, table, write=not args.no_write)


if __name__ == "__main__":
    main()
