"""Sweep throughput with the STAND-IN synthesis command (tests/standin_synth.py).

Measures what the sweep machinery costs around the vendor tool: projects written and scheduled
per minute on 1 and 2 workers (local process pool and a Dask LocalCluster), and the per-job
overhead outside the tool. The stand-in copies real reports from ../shared/data/hls4ml-reports
(a Python start plus two file copies, ~0.1 s), so nearly all measured time is overhead: the
one-layer Brevitas model, QONNX export + hls4ml convert + write, the subprocess, report reading,
the atomic row, and scheduling.

    python benchmarks/sweep_throughput.py [--jobs 16] [--no-write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import record

REPO = Path(__file__).resolve().parents[1]
STANDIN = REPO / "tests" / "standin_synth.py"
REPORTS = REPO.parent / "shared" / "data" / "hls4ml-reports"


def _config(out: Path, n: int, seed: int):
    from connas4ml_torch.synth.sweep import SweepConfig

    return SweepConfig.from_dict({
        "output_dir": str(out),
        "hls": {"backend": "Vitis", "part": "xcu250-figd2104-2L-e"},
        "space": {"layer_type": ["Dense"], "n_in": [8, 16, 32, 64], "n_out": [8, 16, 32, 64],
                  "weight_bits": [2, 4, 6, 8], "input_bits": [4, 8], "reuse_factor": [1, 2, 4]},
        "sampling": {"method": "lhs", "n": n, "seed": seed},
        "synthesis": {"command": ["{python}", str(STANDIN), "{project_dir}", "--project-name",
                                  "{project_name}", "--reports-dir", str(REPORTS)],
                      "timeout_s": 120, "retries": 0},
    })


def measure(kind: str, workers: int, n_jobs: int, tmp: Path) -> dict[str, float]:
    from connas4ml_torch.synth.executors import DaskExecutor, LocalPoolExecutor
    from connas4ml_torch.synth.sweep import run_sweep

    t0 = time.perf_counter()
    ex = LocalPoolExecutor(workers) if kind == "local" else DaskExecutor(workers=workers)
    # warm-up sweep: starts the workers and imports torch/brevitas/hls4ml in each (startup cost)
    warm = run_sweep(_config(tmp / f"{kind}{workers}_warm", 2 * workers, seed=99), executor=ex,
                     progress=False)
    startup = time.perf_counter() - t0
    assert warm.failed == 0
    t1 = time.perf_counter()
    res = run_sweep(_config(tmp / f"{kind}{workers}", n_jobs, seed=0), executor=ex,
                    progress=False)
    wall = time.perf_counter() - t1
    ex.close()
    df = res.frame()
    assert res.done == n_jobs and (df["status"] == "ok").all(), df[["status", "error"]]
    tool = float(df["t_synth_s"].mean())
    return {
        "jobs_per_min": 60.0 * n_jobs / wall,
        "wall_s": wall,
        "startup_s": startup,
        "tool_s": tool,  # the stand-in subprocess, per job
        "write_s": float(df["t_write_s"].mean()),  # model + QONNX export + convert + write
        "read_s": float(df["t_read_s"].mean()),
        "worker_overhead_s": float((df["t_total_s"] - df["t_synth_s"]).mean()),
        # all time a worker spends on a job that is not the tool (incl. scheduling, row write)
        "overhead_s": wall * workers / n_jobs - tool,
        "median_total_s": float(statistics.median(df["t_total_s"])),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=16)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if not REPORTS.is_dir():
        sys.exit(f"{REPORTS} is absent: the stand-in needs the report corpus")
    import os

    load0 = os.getloadavg()[0]
    figures: dict[str, float | int | str] = {"jobs": args.jobs, "load_avg_1min_start": load0}
    lines = ["| executor | workers | jobs/min | wall (s) | startup (s) | write (s/job) | "
             "tool (s/job) | read (s/job) | overhead outside tool (s/job) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    with tempfile.TemporaryDirectory(prefix="sweep_bench_") as d:
        for kind in ("local", "dask"):
            for workers in (1, 2):
                m = measure(kind, workers, args.jobs, Path(d))
                for k, v in m.items():
                    figures[f"{kind}_w{workers}_{k}"] = round(v, 4)
                lines.append(
                    f"| {kind} | {workers} | {m['jobs_per_min']:.0f} | {m['wall_s']:.2f} | "
                    f"{m['startup_s']:.1f} | {m['write_s']:.3f} | {m['tool_s']:.3f} | "
                    f"{m['read_s']:.3f} | {m['overhead_s']:.3f} |")
    note = (f"\n{args.jobs} one-layer Dense jobs (LHS over widths, bits, reuse factors) per row, "
            "stand-in synthesis command (copies real reports; not a vendor tool). jobs/min: "
            "projects written, synthesized by the stand-in, read and stored per minute after "
            "warm-up; startup: pool/cluster start plus the first job per worker (imports). "
            "overhead = wall x workers / jobs - tool time (what the sweep adds per job). "
            f"1-min load average at start: {load0:.1f} on {os.cpu_count()} CPUs (other "
            "processes share the machine: 2-worker scaling is limited by free cores).\n")
    record(__file__, figures, "\n".join(lines) + "\n" + note, write=not args.no_write)


if __name__ == "__main__":
    main()
