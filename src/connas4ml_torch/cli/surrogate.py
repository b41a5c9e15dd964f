"""``connas4ml surrogate fit|eval|calibrate|conformalize``: the hardware model on your own
report trees."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction, name: str, help_text: str) -> None:
    """Add ``surrogate fit`` / ``eval`` / ``calibrate`` / ``conformalize`` to the CLI."""
    p = subparsers.add_parser(name, help=help_text, description=help_text)
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    fit = sub.add_parser("fit", help="fit a ResourceModel on the reports under DIR")
    fit.add_argument("dir", type=Path)
    fit.add_argument("-o", "--out", type=Path, required=True, help="model file (.skops)")
    fit.set_defaults(func=_fit)
    ev = sub.add_parser("eval", help="error of MODEL ('default' for the shipped one) on DIR, per "
                                     "project (model level) and per layer")
    ev.add_argument("model")
    ev.add_argument("dir", type=Path)
    ev.set_defaults(func=_eval)
    cal = sub.add_parser("calibrate", help="adapt MODEL to a few of your reports in DIR and save it")
    cal.add_argument("model")
    cal.add_argument("dir", type=Path)
    cal.add_argument("-o", "--out", type=Path, required=True, help="calibrated model file (.skops)")
    cal.set_defaults(func=_calibrate)
    conf = sub.add_parser(
        "conformalize", help="set MODEL's network prediction intervals from complete projects in "
                             "DIR that it was NOT fitted on, and save it",
        description="Split conformal prediction with sources as the units: each top-level folder "
                    "of DIR counts as one source (one design family); at least 5 complete projects "
                    "per target are needed, and the projects must not be ones MODEL was fitted on, "
                    "or the intervals come out too narrow.")
    conf.add_argument("model")
    conf.add_argument("dir", type=Path)
    conf.add_argument("-o", "--out", type=Path, required=True, help="model file (.skops)")
    conf.set_defaults(func=_conformalize)


def _load(name: str):
    from connas4ml_torch.hardware.model import ResourceModel

    return ResourceModel.default() if name == "default" else ResourceModel.load(name)


def _fit(args: argparse.Namespace) -> int:
    from connas4ml_torch.hardware.model import ResourceModel
    from connas4ml_torch.hardware.reports import read_reports

    model = ResourceModel().fit(read_reports(args.dir))
    model.save(args.out)
    print(f"fitted on {model.n_train_['layer_rows']} layer rows and {model.n_train_['projects']} "
          f"complete projects; wrote {args.out}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import warnings

    import numpy as np

    from connas4ml_torch.errors import OutOfDomainWarning
    from connas4ml_torch.hardware.analytic.evaluate import layer_table
    from connas4ml_torch.hardware.reports import read_reports

    model = _load(args.model)
    df = read_reports(args.dir)
    P = model.predict_projects(df)
    targets = ("LUT", "FF", "DSP", "BRAM_18K", "latency", "II")
    if not P.empty:
        print(f"{'project':50s} complete " + " ".join(f"{t:>17s}" for t in targets))
        for _, r in P.iterrows():
            cells = [f"{r[f'pred_{t}']:8.0f}/{r[f'meas_{t}']:<8.0f}" for t in targets]
            print(f"{str(r['source'])[-50:]:50s} {str(r['complete']):8s} " + " ".join(cells))
        print("(predicted/measured)")
    frame, Y = layer_table(df)
    if frame.empty:
        return 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        pred = model.predict(frame)
    print(f"\n{'layer level':16s} {'rows':>5s} {'median APE %':>13s} {'p90 APE %':>10s}")
    for t in targets:
        y, p = Y[t].to_numpy(float), pred[t].to_numpy(float)
        ok = np.isfinite(y) & (y > 0) & np.isfinite(p)
        if ok.any():
            e = 100 * np.abs(p[ok] - y[ok]) / y[ok]
            print(f"{t:16s} {ok.sum():5d} {np.median(e):13.1f} {np.percentile(e, 90):10.1f}")
    findings = pred.attrs.get("domain", ())
    if findings:
        print(f"\n{len(findings)} domain findings, e.g. {findings[0]}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from connas4ml_torch.hardware.reports import read_reports

    model = _load(args.model).calibrate(read_reports(args.dir))
    model.save(args.out)
    info = model.calibration_info_
    print(f"calibrated on {info['n_model_reports']} model-level reports and {info['n_layer_rows']} "
          f"layer rows; factors {{{', '.join(f'{t}: {f:.2f}' for t, f in info['factor'].items())}}}, "
          f"DSP share shifted by {info['dsp_logit_shift']:+.2f} in logit; wrote {args.out}")
    return 0


def _conformalize(args: argparse.Namespace) -> int:
    import sys

    import numpy as np

    from connas4ml_torch.hardware.reports import read_reports

    df = read_reports(args.dir)
    if "source_repo" not in df and len(df):  # one source per top-level folder of DIR
        root = Path(args.dir).resolve()

        def top_folder(report: str) -> str:
            path = Path(report).resolve()
            return path.relative_to(root).parts[0] if path.is_relative_to(root) else report

        df["source_repo"] = df["report"].astype(str).map(top_folder)
    model = _load(args.model).conformalize(df)
    counts = model.conformal_counts_
    if max((counts.get(t, 0) for t in ("LUT", "FF", "DSP", "latency")), default=0) < 5:
        print(f"error: {args.dir} holds {counts.get('LUT', 0)} complete project(s) (a model-level "
              "report whose every layer is configured); conformalize needs at least 5. "
              f"`connas4ml reports scan {args.dir}` says which layers could not be configured. "
              "Nothing written.", file=sys.stderr)
        return 2
    lo, hi = model._shift("model", 0.05), model._shift("model", 0.95)
    print(f"{'target':10s} {'projects':>8s}  90% network interval (x prediction)")
    for t in ("LUT", "FF", "DSP", "BRAM_18K", "latency", "II"):
        n = counts.get(t, 0)
        span = f"{np.exp(lo[t]):.2f} .. {np.exp(hi[t]):.2f}" if n >= 5 else \
            "kept (fewer than 5 projects)"
        print(f"{t:10s} {n:8d}  {span}")
    off = [t for t in ("LUT", "FF", "DSP", "latency") if counts.get(t, 0) >= 5 and
           (lo[t] > 0.0 or hi[t] < 0.0)]
    if off:
        print(f"the interval of {', '.join(off)} excludes 1: the point prediction is off by a factor "
              "on these projects; `connas4ml surrogate calibrate` moves it")
    model.save(args.out)
    print(f"wrote {args.out}")
    return 0
