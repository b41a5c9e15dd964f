"""``connas4ml search CONFIG.yaml``: one architecture search from a YAML config."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=(
        "Run a search from a YAML config: model entry point, data, search space, HLS settings, "
        "budgets or trade-off weights, schedule, output folder. See examples/*.yaml."))
    p.add_argument("config", help="the YAML config file")
    p.add_argument("--output", help="override the config's output folder")
    p.add_argument("--epochs", type=int, help="override schedule.epochs (and baseline_epochs)")
    p.add_argument("--max-steps", type=int, help="override schedule.max_steps_per_epoch")
    p.add_argument("--no-export", action="store_true", help="skip the hls4ml export")
    p.add_argument("--check", action="store_true", help="validate the config and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from connas4ml_torch.runner import load_config, run, validate_config

    cfg = load_config(args.config)
    if args.output:
        cfg["output"] = args.output
    if args.epochs is not None:
        cfg["schedule"]["epochs"] = args.epochs
        cfg["schedule"]["baseline_epochs"] = args.epochs
        cfg["schedule"]["warmup_epochs"] = min(cfg["schedule"]["warmup_epochs"], args.epochs - 1)
    if args.max_steps is not None:
        cfg["schedule"]["max_steps_per_epoch"] = args.max_steps
    if args.no_export:
        cfg["export"]["enabled"] = False
    if args.quiet:
        cfg["progress"] = False
    cfg = validate_config(cfg)
    if args.check:
        print(f"{args.config}: valid")
        return 0
    result = run(cfg)
    print(result.table())
    return 0
