"""``connas4ml surrogate fit|eval|calibrate``: the hardware model on your own report trees."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction, name: str, help_text: str) -> None:
    """Add ``surrogate fit`` / ``surrogate eval`` / ``surrogate calibrate`` to the CLI."""
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
