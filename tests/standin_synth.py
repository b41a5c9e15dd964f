#!/usr/bin/env python3
"""STAND-IN for the vendor synthesis tool (vitis_hls / vivado_hls), used by tests and benchmarks.

Vivado/Vitis are not installed on CI machines. This script takes the place of the synthesis
command of a sweep job: given the hls4ml project folder the sweep just wrote, it copies REAL
report files, read at run time from the report corpus at ``../shared/data/hls4ml-reports``
(never copied into this repository), into the project's ``<name>_prj/solution1/syn/report/``
folder, where a real C synthesis leaves them. Everything around the tool (project writing,
subprocess with timeout, log capture, report reading, store, retries, resume, executors) is
then exercised for real. The numbers in those reports belong to the source project, not to the
layer that was written: this is a stand-in, not a model of synthesis.

Default reports: ``nrp-nautilus+6nrp-hls4ml`` (MIT), Vitis HLS 2022.2, xcu250: the top-level
``myproject_csynth.xml`` and one dense layer's ``*_config2_s_csynth.xml``.

Options for tests: ``--markers DIR`` (one file per invocation, to count them), ``--fail-first N``
(fail the first N invocations for this project), ``--fail-always``, ``--hang`` (sleep forever,
with a child process, to test timeouts and process-group kills), ``--crash`` (abort with
SIGABRT), ``--kill-parent-first N`` (SIGKILL the worker that called it, first N times),
``--sleep S`` (simulated tool time), ``--hold-after N --gate FILE`` (every invocation after the
first N, counted over all jobs sharing ``--markers``, waits until FILE exists: a test sees jobs
running at a known point without guessing at timing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPORTS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hls4ml-reports"
DEFAULT_SOURCE = ("nrp-nautilus+6nrp-hls4ml/c83384d5a4/model_1/hls4ml_prj/myproject_prj/solution1/"
                  "syn/report")
DEFAULT_FILES = ("myproject_csynth.xml",
                 "dense_latency_ap_fixed_16_6_5_3_0_ap_fixed_16_6_5_3_0_config2_s_csynth.xml")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="stand-in synthesis: copies real reports (tests only)")
    ap.add_argument("project_dir", type=Path)
    ap.add_argument("--project-name", default="myproject")
    ap.add_argument("--reports-dir", type=Path, default=REPORTS)
    ap.add_argument("--source", default=DEFAULT_SOURCE, help="report folder inside the corpus")
    ap.add_argument("--files", nargs="*", default=list(DEFAULT_FILES))
    ap.add_argument("--markers", type=Path)
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--fail-always", action="store_true")
    ap.add_argument("--hang", action="store_true")
    ap.add_argument("--crash", action="store_true")
    ap.add_argument("--kill-parent-first", type=int, default=0,
                    help="SIGKILL the calling process (the sweep worker) on the first N calls")
    ap.add_argument("--sleep", type=float, default=0.0)
    ap.add_argument("--hold-after", type=int, default=None)
    ap.add_argument("--gate", type=Path)
    a = ap.parse_args(argv)

    job = a.project_dir.resolve().name
    print(f"stand-in synthesis (NOT a vendor tool) for {a.project_dir}", flush=True)
    n_before = n_all = 0
    if a.markers:
        a.markers.mkdir(parents=True, exist_ok=True)
        n_before = len(list(a.markers.glob(f"{job}.*")))
        n_all = len(list(a.markers.glob("*.*")))
        (a.markers / f"{job}.{os.getpid()}.{time.time_ns()}").write_text(f"{os.getpid()}\n")
    if not (a.project_dir / "firmware").is_dir():
        print(f"ERROR: {a.project_dir} is not an hls4ml project (no firmware/)", file=sys.stderr)
        return 2
    if a.fail_always or n_before < a.fail_first:
        print(f"ERROR: stand-in simulated synthesis failure (invocation {n_before + 1})",
              file=sys.stderr, flush=True)
        return 1
    if a.crash:
        os.abort()
    if n_before < a.kill_parent_first:
        print(f"stand-in: killing the worker process {os.getppid()}", flush=True)
        os.kill(os.getppid(), 9)
        return 1
    if a.hang:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        if a.markers:
            (a.markers / f"pids.{job}").write_text(f"{os.getpid()} {child.pid}\n")
        print(f"hanging (pid {os.getpid()}, child {child.pid})", flush=True)
        time.sleep(3600)
    if a.hold_after is not None and n_all >= a.hold_after:
        deadline = time.time() + 300  # a bound, so that a broken test cannot hang forever
        while a.gate is not None and not a.gate.exists() and time.time() < deadline:
            time.sleep(0.05)
    if a.sleep:
        time.sleep(a.sleep)
    src = a.reports_dir / a.source
    if not src.is_dir():
        print(f"ERROR: report corpus folder {src} not found (../shared/data absent?)",
              file=sys.stderr)
        return 3
    dest = a.project_dir / f"{a.project_name}_prj" / "solution1" / "syn" / "report"
    dest.mkdir(parents=True, exist_ok=True)
    for name in a.files:
        shutil.copyfile(src / name, dest / name)
        print(f"  copied real report {a.source}/{name}", flush=True)
    print("stand-in synthesis finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
