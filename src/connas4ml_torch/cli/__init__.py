"""The ``connas4ml`` command: one CLI, one subcommand per job.

Each subcommand lives in its own module of this package and exposes ``register(subparsers)``;
the module is imported only when its subcommand runs, so ``connas4ml --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help)
SUBCOMMANDS = {
    "search": ("connas4ml_torch.cli.search", "run an architecture search from a YAML config"),
    "export": ("connas4ml_torch.cli.export", "export a saved network to a bit-exact hls4ml project"),
    "reports": ("connas4ml_torch.cli.reports", "scan hls4ml synthesis reports into a table"),
    "surrogate": ("connas4ml_torch.cli.surrogate", "fit or evaluate the resource surrogate"),
    "sweep": ("connas4ml_torch.cli.sweep", "synthesis sweeps that create surrogate training data"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="connas4ml",
        description="Constraint-aware neural architecture search for FPGAs through hls4ml.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in SUBCOMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:  # a subcommand whose module is not written yet
            if exc.name != module:
                raise
            continue
        mod.register(sub, name, help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from connas4ml_torch.errors import Connas4mlError

    try:
        return int(args.func(args) or 0)
    except (Connas4mlError, ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"connas4ml {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
