"""``make demo``: the whole idea on a CPU in a few minutes.

Joint width + precision search of hls4ml's jet-tagging MLP (16-64-32-32-5) on the shipped jet
sample, under a LUT and a DSP budget, with the default cost model; derive, short fine-tune,
``export_to_hls()`` with the bit-exact check, and a table of everything.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from importlib import resources
from pathlib import Path

import yaml

from connas4ml_torch.run import RunConfig, RunResult, run

DEMO_CONFIG = "jet_demo.yaml"


def demo_config(quick: bool = False, output: str | None = None) -> RunConfig:
    """The packaged demo config; ``quick`` shrinks the schedule (tests use it)."""
    raw = yaml.safe_load(resources.files("connas4ml_torch.configs").joinpath(DEMO_CONFIG).read_text())
    cfg = RunConfig.from_dict(raw)
    if output:
        cfg = cfg.replace(output=output)
    if quick:
        cfg = cfg.replace(
            schedule=dataclasses.replace(cfg.schedule, epochs=2, warmup_epochs=1,
                                         baseline_epochs=2, finetune_epochs=1,
                                         max_steps_per_epoch=20),
            export=dataclasses.replace(cfg.export, n_verify=200))
    return cfg


def main(argv: list[str] | None = None) -> RunResult:
    ap = argparse.ArgumentParser(prog="python -m connas4ml_torch.demo", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a reduced schedule (seconds, not minutes)")
    ap.add_argument("--output", help="output folder (default: demo_out)")
    args = ap.parse_args(argv)
    cfg = demo_config(args.quick, args.output)
    print(f"connas4ml demo: jet MLP width + precision search, budgets {cfg.budgets}, "
          f"part {cfg.hls.part}; output in {Path(cfg.output).resolve()}")
    result = run(cfg)
    print()
    print(result.table())
    return result


if __name__ == "__main__":
    res = main()
    sys.exit(0 if res.bit_exact in (True, None) else 1)
