"""``connas4ml sweep CONFIG.yaml``: synthesis sweeps that create surrogate training data."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from connas4ml_torch.synth.executors import EXECUTOR_KINDS


def register(subparsers: Any, name: str, help_text: str) -> None:
    """Add the ``sweep`` subcommand."""
    p = subparsers.add_parser(
        name, help=help_text, description=(
            "Sample one-layer configurations, write one hls4ml project per configuration, "
            "synthesize each (vendor tool or synthesis.command) and keep the results in "
            "OUTPUT_DIR (projects/, rows/, sweep.csv: what `connas4ml surrogate fit` reads). "
            "A rerun skips finished configurations; Ctrl-C keeps every finished row."))
    p.add_argument("config", help="sweep YAML (schema: connas4ml_torch.synth.sweep)")
    p.add_argument("--dry-run", action="store_true",
                   help="check tools and list the plan; write nothing")
    p.add_argument("--executor", choices=EXECUTOR_KINDS, help="override executor.kind")
    p.add_argument("--workers", type=int, help="override executor.workers (local, dask)")
    p.add_argument("--address", help="dask scheduler address (implies --executor dask)")
    p.add_argument("--retry-failed", action="store_true",
                   help="re-attempt configurations recorded as failed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the sweep; exit code 0 when it completed, 130 when interrupted."""
    from connas4ml_torch.synth.store import SweepStore
    from connas4ml_torch.synth.sweep import load_config, plan_sweep, run_sweep

    cfg = load_config(args.config)
    ex = dict(cfg.executor)
    if args.address:
        ex = {"kind": "dask", "address": args.address}
    if args.executor and args.executor != ex.get("kind"):
        ex = {"kind": args.executor}
    if args.workers is not None:
        ex["workers"] = args.workers
    cfg.executor = ex
    if args.dry_run:
        jobs = plan_sweep(cfg)
        store = SweepStore(cfg.output_dir)
        done = store.finished(not args.retry_failed) if store.rows_dir.is_dir() else set()
        tool = jobs[0].tool if jobs else cfg.tool()
        n_done = len(done & {j.hash for j in jobs})
        print(f"sweep plan: {len(jobs)} unique configurations, {n_done} "
              f"already finished; tool {tool.name} {tool.version or '(version unknown)'}; "
              f"executor {ex.get('kind')}; output {cfg.output_dir}")
        for j in jobs[:20]:
            s = j.spec
            state = "done" if j.hash in done else "todo"
            print(f"  {j.hash} {state:4} {s.layer_type} n_in={s.n_in} n_out={s.n_out} "
                  f"k={s.kernel} out={s.out_size} w{s.weight_bits} a{s.input_bits} "
                  f"rf={s.reuse_factor} {s.strategy} {s.io_type}")
        if len(jobs) > 20:
            print(f"  ... {len(jobs) - 20} more")
        return 0
    res = run_sweep(cfg, progress=not args.no_progress, retry_failed=args.retry_failed)
    state = "INTERRUPTED" if res.interrupted else "finished"
    print(f"sweep {state}: {res.planned} configurations, "
          f"{res.skipped} already finished, {res.done} done, {res.failed} failed, "
          f"{res.remaining} remaining ({res.elapsed_s:.1f} s); dataset {res.dataset_path}",
          file=sys.stderr if res.interrupted else sys.stdout)
    if res.interrupted:
        print("rerun the same command to resume", file=sys.stderr)
        return 130
    return 0
