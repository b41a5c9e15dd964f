"""Fit the default ``ResourceModel`` shipped in ``default_model/`` (rerunnable by anyone).

    python -m connas4ml_torch.hardware.fit_default [--data ../shared/data/hls4ml-reports]

Uses ONLY the permissively licensed sources of the report corpus (``PERMISSIVE_SOURCES``; see
the corpus' ``SOURCES.md``): the project reports read by :func:`read_reports`, the layer sizes
that ``layer_reports_index.csv`` read out of ``parameters.h`` (not in the corpus itself), and
N-TORC's per-layer cost tables. Writes ``resource_model.skops`` and ``MODEL_CARD.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from connas4ml_torch.hardware.model import DEFAULT_MODEL_PATH, TARGETS, ResourceModel, training_rows
from connas4ml_torch.hardware.reports import parse_fixed_type, read_ntorc_tables, read_reports

__all__ = ["PERMISSIVE_SOURCES", "load_corpus", "enrich_from_index", "main"]

REPO = Path(__file__).resolve().parents[3]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "hls4ml-reports"
PERMISSIVE_SOURCES = {
    "hls4ml": "Apache-2.0",
    "HeRCLab+N-TORC": "MIT",
    "JavierZhao+l1-jet-id-hls4ml": "Apache-2.0",
    "Spehic+Diplomska-hls4ml": "MIT",
    "filipemlins+nas-hls4ml": "MIT",
    "nrp-nautilus+6nrp-hls4ml": "MIT",
}
NTORC_DIR = "HeRCLab+N-TORC/bdd6413d62/training_data_optimizer"


def _bits(text: object) -> float:
    if not isinstance(text, str):
        return np.nan
    b = parse_fixed_type(text.split("=", 1)[-1])
    return float(b) if b else np.nan


def enrich_from_index(df: pd.DataFrame, root: Path) -> pd.DataFrame:
    """Fill layer sizes/RF/weight bits from ``layer_reports_index.csv`` where the files lack them.

    That index was built from the repositories' ``parameters.h``, which the corpus does not hold.
    """
    idx_path = root / "layer_reports_index.csv"
    if not idx_path.is_file():
        return df
    idx = pd.read_csv(idx_path)
    idx["key"] = idx["layer_report"].str.replace(r"\.(xml|rpt)$", "", regex=True)
    idx = idx.drop_duplicates("key").set_index("key")
    df = df.copy()
    rel = df["report"].astype(str).map(lambda p: _rel(p, root)).str.replace(r"\.(xml|rpt)$", "", regex=True)
    for i in np.flatnonzero((df["level"] == "layer").to_numpy() & rel.isin(idx.index).to_numpy()):
        r = idx.loc[rel.iloc[i]]
        row = df.index[i]
        cs = str(r["config_struct"])
        if cs == "dense_config":
            vals = {"n_in": r["n_in"], "n_out": r["n_out"]}
        elif cs in ("conv1d_config", "conv2d_config"):
            vals = {"n_in": r["n_chan"], "n_out": r["n_filt"]}
            lt = "Conv1D" if cs == "conv1d_config" else "Conv2D"
            if df.at[row, "layer_type"] == "other":
                df.at[row, "layer_type"] = lt
            if lt == "Conv1D" and pd.notna(r["filt_width"]):
                df.at[row, "kernel"] = (int(r["filt_width"]),)
                df.at[row, "out_size"] = (int(r["out_width"]) if pd.notna(r["out_width"]) else 1,)
            elif lt == "Conv2D" and pd.notna(r["filt_width"]):
                df.at[row, "kernel"] = (int(r["filt_height"]), int(r["filt_width"]))
                df.at[row, "out_size"] = (int(r["out_height"]), int(r["out_width"]))
        else:
            continue
        for k, v in vals.items():
            if pd.isna(df.at[row, k]) and pd.notna(v):
                df.at[row, k] = float(v)
        if pd.notna(r["reuse_factor"]):
            df.at[row, "reuse_factor"] = float(r["reuse_factor"])
        if isinstance(r["strategy"], str):
            df.at[row, "strategy"] = r["strategy"].capitalize()
        wb = _bits(r["weight_t"])
        if np.isfinite(wb):
            df.at[row, "weight_bits"] = wb
        if isinstance(r["io_type"], str) and pd.isna(df.at[row, "io_type"]):
            df.at[row, "io_type"] = r["io_type"]
        df.at[row, "config_source"] = str(df.at[row, "config_source"]) + "+layer_reports_index"
    return df


def _rel(p: str, root: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(root.resolve()))
    except ValueError:
        return p


def load_corpus(root: Path = DEFAULT_DATA, sources: set[str] | None = None,
                progress: bool = False) -> pd.DataFrame:
    """All report rows (+ N-TORC tables) of ``root``, tagged with ``source_repo``; optional filter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = read_reports(root, progress=progress)
    df["source_repo"] = df["report"].map(lambda p: _rel(p, root).split("/")[0])
    df = enrich_from_index(df, root)
    nt = root / NTORC_DIR
    if nt.is_dir():
        t = read_ntorc_tables(nt)
        t["source_repo"] = "HeRCLab+N-TORC"
        df = pd.concat([df, t], ignore_index=True)
    if sources is not None:
        df = df[df["source_repo"].isin(sources)].reset_index(drop=True)
    return df


def _card(model: ResourceModel, df: pd.DataFrame, rows: pd.DataFrame, acc: dict) -> str:
    d = model.domain_
    counts = rows.groupby("source_repo").size().to_dict()
    lines = [
        "# Default ResourceModel — model card", "",
        f"Fitted {_dt.date.today().isoformat()} by `python -m connas4ml_torch.hardware.fit_default` "
        "(rerun it to rebuild this folder). Saved with `skops`.", "",
        "## Training data (permissively licensed sources only)", "",
        "| source | licence | layer rows used |", "|---|---|---|",
    ]
    for s, lic in PERMISSIVE_SOURCES.items():
        lines.append(f"| {s} | {lic} | {counts.get(s, 0)} |")
    lines += [
        "", f"Model-level reports used for the calibration term: "
        f"{json.dumps(getattr(model, 'n_calibration_', {}))}.", "",
        "## Domain", "",
        f"- layer types: {d['layer_types']}; strategies: {d['strategies']}; io types: {d['io_types']}",
        f"- backends: {d['backends']}; tool versions: {d['tool_versions']}",
        f"- part families: {d['families']} (parts {d['parts']})",
    ]
    for k, (lo, hi) in d["ranges"].items():
        lines.append(f"- {k}: {lo:g} .. {hi:g}")
    lines += [
        "", "## Where predictions come from: physics prior, then data", "",
        "Each target is `log1p(y) = log1p(prior) + category offsets + monotone boosted trees`. "
        "The prior is hls4ml's counting (mults = multiplications per initiation n_in*n_out*k/RF; "
        "lut_bits = b_w*b_in for LUT-mapped products, held at the DSP's LUT glue above the DSP "
        "threshold; acc_bits = b_w + b_in + log2(n_in*k)); its non-negative global coefficients "
        "were fitted by bounded least squares in log1p space (every source weighted equally):", "",
        "| target | prior = sum of coefficient x term |", "|---|---|",
    ]
    for t, terms in model.prior_terms().items():
        lines.append(f"| {t} | " + " + ".join(f"{c:.3g}*{n}" for n, c in terms.items() if c > 1e-9) + " |")
    cal = {t: [round(a, 3), round(b, 2)] for t, (a, b) in model.calibration_.items()}
    lines += [
        "", f"Model level: network = a * sum(layers) + b, (a, b) = {json.dumps(cal)}; resources "
        "have b = 0 (a multiplicative factor, clipped to [0.5, 2], so glue never dominates a "
        "small network); latency and II add the median excess cycles.", "",
        "Inside the corpus (16-bit N-TORC Resource layers on zynquplus; a few dozen Latency "
        "layers elsewhere) the offsets and trees fit the reports. Outside it - below 4-bit "
        "weights or inputs, Latency strategy on Vitis at small widths, new parts - the "
        "trees are constant, so predictions scale as the prior does: LUT ~ mults*b_w*b_in plus "
        "adder tree, DSP ~ 0 while products map to LUTs, BRAM ~ 0 for Latency. Those numbers "
        "are the prior's extrapolation times the nearest data's correction, not measurements "
        "(and the training targets are csynth estimates, whose LUT counts of constant-weight "
        "multipliers are pessimistic against post-synthesis Vivado). Per-layer latency at "
        "RF 1 follows the data (inlined Latency layers report 0-1 cycles), so network latency "
        "is mostly the calibrated glue term.", "",
        "Outside the domain the model warns (`OutOfDomainWarning`). Predictions are monotone in "
        "sizes and bits and (resources) non-increasing in the reuse factor by construction (the "
        "prior terms and the trees share the constraint directions; checked on a grid in the "
        "tests). Prefer a model fitted on your own reports (`connas4ml surrogate fit`).", "",
        "## Measured accuracy", "",
        "In-sample median / 90th percentile absolute percentage error per target (layer level):", "",
        "| target | rows | median APE % | p90 APE % |", "|---|---|---|---|",
    ]
    for t, (n, med, p90) in acc.items():
        lines.append(f"| {t} | {n} | {med:.1f} | {p90:.1f} |")
    lines += ["", "Leave-one-source-out numbers over the whole corpus: `benchmarks/RESULTS.md` "
              "(section `surrogate_accuracy`).", ""]
    return "\n".join(lines)


def _ape(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    ok = np.isfinite(y) & np.isfinite(p) & (y > 0)
    return 100 * np.abs(p[ok] - y[ok]) / y[ok]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="report corpus folder")
    ap.add_argument("--out", type=Path, default=DEFAULT_MODEL_PATH, help="model file to write")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"fit_default: report corpus {args.data} not found (pass --data)", file=sys.stderr)
        return 2
    df = load_corpus(args.data, set(PERMISSIVE_SOURCES))
    model = ResourceModel().fit(df)
    rows = training_rows(df)
    from connas4ml_torch.hardware.features import rows_to_specs_frame

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = model.predict(rows_to_specs_frame(rows))
    acc = {}
    for t in TARGETS:
        col = {"latency_cycles": "lat_worst", "II": "ii_max"}.get(t, t)
        e = _ape(pd.to_numeric(rows[col], errors="coerce").to_numpy(float), pred[t].to_numpy())
        if len(e):
            acc[t] = (len(e), float(np.median(e)), float(np.percentile(e, 90)))
    path = model.save(args.out)
    card = _card(model, df, rows, acc)
    (path.parent / "MODEL_CARD.md").write_text(card)
    size = path.stat().st_size
    print(f"wrote {path} ({size / 1e6:.2f} MB) from {len(rows)} layer rows; MODEL_CARD.md beside it")
    print(re.sub(r"\n{2,}", "\n", card))
    return 0


if __name__ == "__main__":
    sys.exit(main())
