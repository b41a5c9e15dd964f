"""``connas4ml search CONFIG.yaml``: one architecture search from a YAML config."""

from __future__ import annotations

import argparse
import dataclasses
import sys


def register(sub: argparse._SubParsersAction, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=(
        "Run a search from a YAML config: model entry point, data, search space, HLS settings, "
        "budgets or trade-off weights, schedule, output folder. See examples/*.yaml."))
    p.add_argument("config", help="the YAML config file")
    p.add_argument("--output", help="override the config's output folder")
    p.add_argument("--epochs", type=int, help="override schedule.epochs (and baseline_epochs)")
    p.add_argument("--max-steps", type=int, help="override schedule.max_steps_per_epoch")
    p.add_argument("--no-export", action="store_true", help="skip the hls4ml export")
    p.add_argument("--device", help="override the config's device (cpu, cuda, cuda:1, mps)")
    p.add_argument("--check", action="store_true",
                   help="validate the config and resolve the search space against the model "
                        "(no training), then exit")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted search from OUTPUT/checkpoint.pt")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--sweep", metavar="RES=V1,V2,...",
                   help="Pareto sweep: one search per budget value, e.g. LUT=10000,20000,40000")
    p.add_argument("--sweep-weights", metavar="RES=W1,W2,...",
                   help="Pareto sweep over trade-off weights, e.g. LUT=0,0.5,2")
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="where sweep searches run (a process pool, or a Dask LocalCluster)")
    p.add_argument("--workers", type=int, default=2, help="parallel searches of a sweep")
    p.add_argument("--address", help="an existing Dask scheduler address (implies --executor dask)")
    p.set_defaults(func=_main)


def _overrides(cfg, args: argparse.Namespace):
    """The config with the command line's overrides, validated again."""
    sch = cfg.schedule
    if args.epochs is not None:
        sch = dataclasses.replace(sch, epochs=args.epochs, baseline_epochs=args.epochs,
                                  warmup_epochs=min(sch.warmup_epochs, max(args.epochs - 1, 0)))
    if args.max_steps is not None:
        sch = dataclasses.replace(sch, max_steps_per_epoch=args.max_steps)
    changes = {"schedule": sch}
    if args.output:
        changes["output"] = args.output
    if args.device:
        changes["device"] = args.device
    if args.no_export:
        changes["export"] = dataclasses.replace(cfg.export, enabled=False)
    if args.quiet:
        changes["progress"] = False
    return cfg.replace(**changes)


def check(cfg) -> str:
    """Resolve the search space against the model without training: a width or bit pattern
    naming a layer the model does not have fails here, before any data is loaded."""
    import torch

    import connas4ml_torch as cn
    from connas4ml_torch.run import entry_point

    factory = entry_point(cfg.model, "model", cfg.config_dir)
    sn = cn.searchable(factory(**cfg.model_args), cfg.space)
    n_choices = sum(len(v) > 1 for m in sn.searchable_modules().values()
                    for v in m.choice_values().values())
    del torch
    return f"{len(sn.searchable_modules())} searchable modules, {n_choices} searched choices"


def _main(args: argparse.Namespace) -> int:
    from connas4ml_torch.run import load_config, run

    cfg = _overrides(load_config(args.config), args)
    if args.check:
        print(f"{args.config}: valid ({check(cfg)})")
        return 0
    if args.sweep or args.sweep_weights:
        return _sweep(cfg, args)
    try:
        result = run(cfg, resume=args.resume)
    except KeyboardInterrupt:
        print(f"search interrupted; the last checkpoint is in {cfg.output}: rerun the same "
              "command with --resume to continue", file=sys.stderr)
        return 130
    print(result.table())
    return 0


def _parse_axis(text: str, numbers_only: bool) -> dict[str, list]:
    name, sep, values = text.partition("=")
    if not sep or not values:
        raise ValueError(f"--sweep {text!r}: expected RES=V1,V2,...")
    out = []
    for v in values.split(","):
        v = v.strip()
        try:
            out.append(float(v) if "." in v or numbers_only else int(v))
        except ValueError:
            if numbers_only or not v.endswith("%"):
                raise ValueError(f"--sweep {text!r}: {v!r} is not a number") from None
            out.append(v)
    return {name: out}


def _sweep(cfg, args: argparse.Namespace) -> int:
    from pathlib import Path

    from connas4ml_torch.run import pareto_sweep, sweep_configs, sweep_job

    budgets = _parse_axis(args.sweep, False) if args.sweep else None
    weights = _parse_axis(args.sweep_weights, True) if args.sweep_weights else None
    configs = sweep_configs(cfg, budgets=budgets, tradeoff=weights)
    resource = next(iter(budgets or weights))
    kind = "dask" if (args.executor == "dask" or args.address) else "local"
    executor = {"kind": kind, "workers": args.workers}
    if args.address:
        executor["address"] = args.address
    quality = "accuracy" if cfg.data.dataset != "calo" else "rel_mae"
    front = Path(cfg.output) / "pareto_front.png"
    Path(cfg.output).mkdir(parents=True, exist_ok=True)
    df = pareto_sweep(sweep_job, configs, executor, cost=resource, quality=quality,
                      higher_is_better=quality == "accuracy", plot=front,
                      progress=not args.quiet)
    df.to_csv(Path(cfg.output) / "pareto.csv", index=False)
    print(df.drop(columns=["output"], errors="ignore").to_string(index=False))
    print(f"front: {front}")
    return 0 if df["error"].isna().all() else 1
