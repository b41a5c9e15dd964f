"""``connas4ml reports scan DIR``: summary table of the hls4ml reports under a folder."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction, name: str, help_text: str) -> None:
    """Add ``reports scan`` to the CLI."""
    p = subparsers.add_parser(name, help=help_text, description=help_text)
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    scan = sub.add_parser("scan", help="read every hls4ml project under DIR")
    scan.add_argument("dir", type=Path, help="folder to scan (any depth)")
    scan.add_argument("-o", "--out", type=Path, help="write the table (.csv or .parquet)")
    scan.add_argument("--quiet", action="store_true", help="no progress bar")
    scan.set_defaults(func=_scan)


def _scan(args: argparse.Namespace) -> int:
    from connas4ml_torch.hardware.reports import read_reports
    from connas4ml_torch.hardware.reports.base import show

    df = read_reports(args.dir, progress=not args.quiet)
    scan = df.attrs["scan"]
    if args.quiet:  # read_reports prints this line itself when it shows progress
        print(f"{scan['projects']} projects, {scan['model_reports']} model reports, "
              f"{scan['layer_reports']} layer reports, {scan['skipped']} files skipped")
    models = df[df["level"] == "model"]
    if len(models):
        cols = ["tool", "tool_version", "part", "latency", "II", "LUT", "FF", "DSP", "BRAM_18K"]
        summary = models.groupby(["tool", "part"], dropna=False).size().rename("model_reports")
        print(summary.to_string())
        print(models[cols].describe().loc[["count", "min", "50%", "max"]].to_string())
    for path, reason in scan["skipped_files"]:
        print(f"skipped {path}: {reason}")
    _print_unconfigured(scan.get("unconfigured", []))
    if args.out:
        out = df.copy()
        for c in ("kernel", "out_size"):
            if c in out:
                out[c] = out[c].map(lambda t: "x".join(map(str, t)) if isinstance(t, tuple) else t)
        for c in ("report", "source"):  # file names that are not UTF-8 are written escaped
            if c in out:
                out[c] = out[c].map(lambda s: show(s) if isinstance(s, str) else s)
        if args.out.suffix == ".parquet":
            out.to_parquet(args.out)
        elif args.out.suffix == ".csv":
            out.to_csv(args.out, index=False)
        else:
            raise ValueError(f"--out {args.out}: use a .csv or .parquet file name")
        print(f"wrote {len(out)} rows to {args.out}")
    return 0


def _print_unconfigured(entries: list, examples: int = 3) -> None:
    """How many layers miss which fields, grouped by reason, with a few example reports."""
    if not entries:
        print("every layer report is fully configured")
        return
    by_reason: dict[str, list] = {}
    for report, missing, reason in entries:
        by_reason.setdefault(reason, []).append((report, missing))
    print(f"{len(entries)} layer reports not fully configured:")
    for reason, items in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        fields = sorted({f for _, missing in items for f in missing})
        print(f"  {len(items):5d}  missing {', '.join(fields)}: {reason}")
        for report, _ in items[:examples]:
            print(f"         e.g. {report}")
