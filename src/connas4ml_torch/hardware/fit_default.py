"""Fit the default ``ResourceModel`` shipped in ``default_model/`` (rerunnable by anyone).

    python -m connas4ml_torch.hardware.fit_default [--data ../shared/data/hls4ml-reports]

Fits ONLY on the permissively licensed sources of the report corpus (``PERMISSIVE_SOURCES``;
see the corpus' ``SOURCES.md``): the project reports read by :func:`read_reports`, the layer
configurations that ``layer_reports_index.csv`` read out of ``parameters.h`` (not in the corpus
itself), and N-TORC's per-layer cost tables. The other sources are only used to measure the
fitted model (out of sample). Writes ``resource_model.skops`` and ``MODEL_CARD.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from connas4ml_torch.hardware.analytic.reports import project_layers, training_rows
from connas4ml_torch.hardware.model import DEFAULT_MODEL_PATH, ResourceModel
from connas4ml_torch.hardware.reports import parse_fixed_type, read_ntorc_tables, read_reports

TARGETS = ("LUT", "FF", "DSP", "BRAM_18K", "latency")

__all__ = ["PERMISSIVE_SOURCES", "load_corpus", "drop_copies", "enrich_from_index", "main"]

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
    extra = ("n_zeros", "n_nonzeros", "n_filt", "n_chan", "in_width", "in_height", "out_width",
             "out_height", "n_elem")
    for c in extra:
        if c not in df.columns:
            df[c] = np.nan
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
        elif cs in ("activ_config", "pooling1d_config", "pooling2d_config", "batchnorm_config"):
            # element-wise and pooling layers: the sizes hls4ml's parameters.h states
            vals = {"n_in": r["n_in"]}
            for c in extra[2:]:
                if pd.notna(r.get(c)):
                    df.at[row, c] = float(r[c])
        else:
            continue
        for k, v in vals.items():
            if pd.isna(df.at[row, k]) and pd.notna(v):
                df.at[row, k] = float(v)
        for c in ("n_zeros", "n_nonzeros"):
            if pd.notna(r.get(c)):
                df.at[row, c] = float(r[c])
        if pd.notna(r["reuse_factor"]):
            df.at[row, "reuse_factor"] = float(r["reuse_factor"])
        if isinstance(r["strategy"], str) and r["strategy"].lower() in ("latency", "resource"):
            df.at[row, "strategy"] = r["strategy"].capitalize()
        wb = _bits(r["weight_t"])
        if np.isfinite(wb) and cs not in ("activ_config", "pooling1d_config", "pooling2d_config"):
            df.at[row, "weight_bits"] = wb
        if isinstance(r["io_type"], str) and r["io_type"].startswith("io_") and pd.isna(df.at[row, "io_type"]):
            df.at[row, "io_type"] = r["io_type"]
        df.at[row, "config_source"] = str(df.at[row, "config_source"]) + "+layer_reports_index"
    return df


def _rel(p: str, root: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(root.resolve()))
    except ValueError:
        return p


def drop_copies(df: pd.DataFrame, root: Path, rel: pd.Series | None = None) -> pd.DataFrame:
    """Without the report folders that ``reports_index.csv`` lists as byte-identical copies of
    another project's report (``duplicate_of``): a report copied into another project is not
    that project's synthesis (the copy kept next to a different network, with other sizes and
    weights, would be fitted and scored as if it were), and one design counted twice weighs
    double. The first copy stays. ``rel``: the rows' report paths relative to ``root``, where
    the caller has them already (resolving every path is the slow part)."""
    idx_path = root / "reports_index.csv"
    if not idx_path.is_file() or df.empty:
        return df
    idx = pd.read_csv(idx_path, usecols=["report", "duplicate_of"])
    copies = {str(Path(r).parent) for r, d in zip(idx["report"], idx["duplicate_of"])
              if isinstance(d, str) and d}
    rel = rel if rel is not None else df["report"].map(lambda p: _rel(p, root))
    folder = rel.map(lambda r: str(Path(r).parent))
    return df[~folder.isin(copies)].reset_index(drop=True)


def load_corpus(root: Path = DEFAULT_DATA, sources: set[str] | None = None,
                progress: bool = False) -> pd.DataFrame:
    """All report rows (+ N-TORC tables) of ``root``, tagged with ``source_repo``, less the
    copied reports (:func:`drop_copies`); optional filter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = read_reports(root, progress=progress)
    rel = df["report"].map(lambda p: _rel(p, root))
    df["source_repo"] = rel.str.split("/").str[0]
    df = drop_copies(df, root, rel)
    df = enrich_from_index(df, root)
    nt = root / NTORC_DIR
    if nt.is_dir():
        t = read_ntorc_tables(nt)
        t["source_repo"] = "HeRCLab+N-TORC"
        df = pd.concat([df, t], ignore_index=True)
    if sources is not None:
        df = df[df["source_repo"].isin(sources)].reset_index(drop=True)
    return df


def _card(model: ResourceModel, df: pd.DataFrame, acc: dict[str, dict[str, tuple]]) -> str:
    from connas4ml_torch.hardware.analytic.layers import COMPONENTS
    from connas4ml_torch.hardware.analytic.network import GLUE
    from connas4ml_torch.hardware.features import OFFSETS

    d = model.domain_
    rows = training_rows(df)
    counts = rows.groupby("source_repo").size().to_dict() if len(rows) else {}
    projects = [p for p in project_layers(df) if p["complete"]]
    pc = pd.Series([p["source_repo"] for p in projects]).value_counts().to_dict()
    lines = [
        "# Default ResourceModel - model card", "",
        f"Fitted {_dt.date.today().isoformat()} by `python -m connas4ml_torch.hardware.fit_default` "
        "(rerun it to rebuild this folder). Saved with `skops` (loaded with an exact type list).", "",
        "## What it is", "",
        "An analytic model of what hls4ml's templates instantiate (multiplications per "
        "initiation and their DSP/LUT binding, adder trees, registers per pipeline stage, weight "
        "ROMs, lookup tables, stream FIFOs, pipeline depth and II; `docs/hardware_model.md`) "
        "times a learned correction: one positive multiplier per analytic component and a few "
        "category offsets per resource, a monotone logistic DSP share, and at model level a "
        "scale on the layer sum plus glue. Every parameter is pulled to its physical default by a "
        "ridge, so where the data below is silent the analytic count carries the prediction.", "",
        "## Training data (permissively licensed sources only)", "",
        "| source | licence | layer rows | complete projects |", "|---|---|---|---|",
    ]
    for s, lic in PERMISSIVE_SOURCES.items():
        lines.append(f"| {s} | {lic} | {counts.get(s, 0)} | {pc.get(s, 0)} |")
    lines += [
        "", f"N-TORC's tables are subsampled to {model.max_rows_per_source} rows; every source "
        "weighs the same in the fit.", "", "## Domain (outside it predictions carry findings)", "",
        f"- layer types: {d['layer_type']}; strategies: {d['strategy']}; io types: {d['io_type']}",
        f"- HLS tools: {d['vitis']}; part families: {d['family']}",
    ]
    for k, (lo, hi) in d["ranges"].items():
        lines.append(f"- {k}: {lo:g} .. {hi:g}")
    lines += ["", "## Fitted correction", "",
              "| target | component multipliers exp(u) | offsets exp(theta) |", "|---|---|---|"]
    for t, comps in COMPONENTS.items():
        u = ", ".join(f"{c} {np.exp(v):.2f}" for c, v in zip(comps, model.params_[f"{t}.u"]))
        th = ", ".join(f"{o} {np.exp(v):.2f}" for o, v in zip(OFFSETS, model.params_[f"{t}.theta"]))
        lines.append(f"| {t} | {u} | {th} |")
    b = model.params_["DSP.beta"]
    th = ", ".join(f"{o} {v:+.2f}" for o, v in zip(OFFSETS, model.params_["DSP.theta"]))
    lines.append(f"| DSP share | sigmoid({model.params_['DSP.alpha'][0]:.2f} + {b[0]:.2f} narrow + "
                 f"{b[1]:.2f} wide + {b[2]:.2f} csd digits + offsets) | {th} |")
    for t in ("LUT", "FF", "BRAM_18K", "latency", "II"):
        tau = float(np.exp(model.net_params_[f"net.{t}.tau"][0]))
        g = ", ".join(f"{c} {np.exp(v):.2f}" for c, v in zip(GLUE[t], model.net_params_[f"net.{t}.g"]))
        lines.append(f"| model-level {t} | layer sum x {tau:.2f}; glue: {g or '-'} | |")
    lines += ["", "## Measured accuracy", "",
              "Median absolute percentage error; 'other sources' = every non-permissive source of the "
              "corpus, none of which the default saw (out of the box, no calibration):", "",
              "| evaluation | " + " | ".join(TARGETS) + " |", "|---|" + "---|" * len(TARGETS)]
    for name, a in acc.items():
        lines.append(f"| {name} | " + " | ".join(
            f"{a[t][1]:.0f} ({a[t][0]})" if t in a else "-" for t in TARGETS) + " |")
    n = model.interval_counts_["model"]
    lines += ["", "## Prediction intervals", "",
              "Layer bounds (`predict(..., quantile=q)`): held-out residual quantiles of the "
              "training sources, one left out at a time. Network bounds (`predict_network`): "
              "`conformalize()` on the other sources' complete projects (split conformal, "
              f"sources as the units; {n['LUT']} projects for LUT, {n['DSP']} for DSP), which the "
              "fit never saw; their coverage, each source left out of the quantiles in turn, is "
              "in `benchmarks/RESULTS.md`. The same projects set the few-shot shrinkage of `calibrate()`; "
              "the search's `margin_quantile` uses the network bounds.", ""]
    lines += ["Leave-one-source-out numbers of the method over the whole corpus, the few-shot "
              "calibration curve and interval coverage: `benchmarks/RESULTS.md` (section "
              "`surrogate_accuracy`).", "",
              "## Use", "",
              "`ResourceModel.default()` returns a fresh copy. With 1-5 synthesized reports of your "
              "own setup (tool, part, strategy), `model.calibrate(read_reports(dir))` adapts the "
              "corrections; `model.fit(read_reports(dir))` refits from scratch (any number of rows: "
              "the ridge keeps the physics where your data is thin).", ""]
    return "\n".join(lines)


def _accuracy(model: ResourceModel, df: pd.DataFrame) -> dict[str, tuple[int, float]]:
    from connas4ml_torch.hardware.analytic.evaluate import layer_table

    out: dict[str, tuple[int, float]] = {}
    P = model.predict_projects(df)
    P = P[P["complete"]]
    for t in TARGETS:
        y, p = P[f"meas_{t}"].to_numpy(float), P[f"pred_{t}"].to_numpy(float)
        e = _ape(y, p)
        if len(e):
            out[t] = (len(e), float(np.median(e)))
    lay: dict[str, tuple[int, float]] = {}
    frame, Y = layer_table(df)
    if len(frame):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = model.predict(frame)
        for t in TARGETS:
            e = _ape(Y[t].to_numpy(float), pred[t].to_numpy(float))
            if len(e):
                lay[t] = (len(e), float(np.median(e)))
    return {"model": out, "layer": lay}


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
    full = load_corpus(args.data)
    df = full[full["source_repo"].isin(PERMISSIVE_SOURCES)].reset_index(drop=True)
    model = ResourceModel().fit(df)
    other = full[~full["source_repo"].isin(PERMISSIVE_SOURCES)]
    # the fit's own model-level intervals rest on its two complete projects: the bounds of a
    # network come from the other groups' projects instead (residual quantiles, no data kept)
    model.conformalize(other)
    a_in, a_out = _accuracy(model, df), _accuracy(model, other)
    acc = {"model level, other sources (complete projects)": a_out["model"],
           "layer level, other sources": a_out["layer"],
           "model level, training sources (in-sample)": a_in["model"],
           "layer level, training sources (in-sample)": a_in["layer"]}
    path = model.save(args.out)
    card = _card(model, df, acc)
    (path.parent / "MODEL_CARD.md").write_text(card)
    size = path.stat().st_size
    print(f"wrote {path} ({size / 1e3:.0f} kB); MODEL_CARD.md beside it")
    print(re.sub(r"\n{2,}", "\n", card))
    return 0


if __name__ == "__main__":
    sys.exit(main())
