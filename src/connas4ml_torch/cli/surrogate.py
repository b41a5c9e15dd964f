"""``connas4ml surrogate fit DIR -o model.skops`` and ``connas4ml surrogate eval MODEL DIR``."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path


def register(subparsers: argparse._SubParsersAction, name: str, help_text: str) -> None:
    """Add ``surrogate fit`` / ``surrogate eval`` to the CLI."""
    p = subparsers.add_parser(name, help=help_text, description=help_text)
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    fit = sub.add_parser("fit", help="fit a ResourceModel on the reports under DIR")
    fit.add_argument("dir", type=Path)
    fit.add_argument("-o", "--out", type=Path, required=True, help="model file (.skops)")
    fit.add_argument("--max-iter", type=int, default=100, help="boosting iterations per target")
    fit.set_defaults(func=_fit)
    ev = sub.add_parser("eval", help="error of MODEL ('default' for the shipped one) on DIR")
    ev.add_argument("model")
    ev.add_argument("dir", type=Path)
    ev.set_defaults(func=_eval)


def _fit(args: argparse.Namespace) -> int:
    from connas4ml_torch.hardware.model import ResourceModel, training_rows
    from connas4ml_torch.hardware.reports import read_reports

    df = read_reports(args.dir)
    rows = training_rows(df)
    model = ResourceModel(max_iter=args.max_iter).fit(df)
    model.save(args.out)
    print(f"fitted on {len(rows)} layer rows; wrote {args.out}")
    print(f"domain: {model.domain_}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import numpy as np

    from connas4ml_torch.hardware.features import rows_to_specs_frame
    from connas4ml_torch.hardware.model import (
        TARGETS,
        OutOfDomainWarning,
        ResourceModel,
        training_rows,
    )
    from connas4ml_torch.hardware.reports import read_reports

    model = ResourceModel.default() if args.model == "default" else ResourceModel.load(args.model)
    rows = training_rows(read_reports(args.dir))
    if rows.empty:
        raise ValueError(f"{args.dir}: no layer reports with a full configuration to evaluate on")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OutOfDomainWarning)
        pred = model.predict(rows_to_specs_frame(rows))
    for w in caught:
        print(f"warning: {w.message}")
    print(f"{'target':16s} {'rows':>5s} {'median APE %':>13s} {'p90 APE %':>10s}")
    for t in TARGETS:
        col = {"latency_cycles": "lat_worst", "II": "ii_max"}.get(t, t)
        y = rows[col].astype(float).to_numpy()
        p = pred[t].to_numpy()
        ok = np.isfinite(y) & (y > 0) & np.isfinite(p)
        if ok.any():
            e = 100 * np.abs(p[ok] - y[ok]) / y[ok]
            print(f"{t:16s} {ok.sum():5d} {np.median(e):13.1f} {np.percentile(e, 90):10.1f}")
    return 0
