"""Accuracy of the hardware model on report sources it has never seen (leave one source out).

For every repository (source) of ../shared/data/hls4ml-reports with configured layer rows or a
complete project: fit ``ResourceModel`` on all OTHER sources, predict the held-out one. Whole
sources are held out, never rows. Headline: MODEL level (``predict_projects``: each top-level
report vs the network prediction of its layers + glue), on complete projects (every Dense/Conv
configured, no unmodeled layer kind); layer level beside it. Per target: median absolute
percentage error (APE), 90% interval coverage (held-out truth inside [q05, q95]), impossible
predictions (negative, DSP above the slices the multiplications can use, latency/II < 1).
Few-shot calibration: for held-out sources with several reports, ``calibrate()`` on k = 1..5 of
them (random draws) and the error on the rest, k = 0 (out of the box) to 5.
Then the SHIPPED models (fitted on the permissive sources only) on the other sources: the new
default vs the old default file (its code taken from git, run in a subprocess), before/after.

    python benchmarks/surrogate_accuracy.py [--no-write] [--draws 5] [--old-ref 571d9c8]

Row selection is reusable: ``heldout_splits(df)`` yields ``(source, train_df, test_df)``;
``project_errors``/``layer_errors`` turn predictions into the per-row table this script pools.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

from connas4ml_torch.errors import OutOfDomainWarning  # noqa: E402
from connas4ml_torch.hardware.analytic import design  # noqa: E402
from connas4ml_torch.hardware.analytic.evaluate import layer_table  # noqa: E402
from connas4ml_torch.hardware.analytic.reports import project_layers  # noqa: E402
from connas4ml_torch.hardware.fit_default import (  # noqa: E402
    DEFAULT_DATA,
    PERMISSIVE_SOURCES,
    load_corpus,
)
from connas4ml_torch.hardware.model import ResourceModel  # noqa: E402

TARGETS = ("LUT", "FF", "DSP", "BRAM_18K", "latency")
ALL = ("LUT", "FF", "BRAM_18K", "DSP", "latency", "II")
REPO = Path(__file__).resolve().parents[1]


def heldout_splits(df: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """(source, everything else, the source) for every source with something to evaluate."""
    _, Y = layer_table(df)
    projects = project_layers(df)
    useful = set(Y["source_repo"]) if "source_repo" in Y else set()
    useful |= {p["source_repo"] for p in projects if p["complete"]}
    for s in sorted(useful):
        yield s, df[df["source_repo"] != s], df[df["source_repo"] == s]


def _ape(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    ok = np.isfinite(y) & np.isfinite(p) & (y > 0)
    return 100 * np.abs(p[ok] - y[ok]) / y[ok]


def layer_errors(model: ResourceModel, test: pd.DataFrame, source: str) -> pd.DataFrame:
    """One row per (held-out layer, target): truth, prediction, 90% bounds, DSP bound."""
    if len(test) > 3000:  # a per-layer table source (N-TORC): a fixed sample keeps this fast
        test = test.sample(3000, random_state=0)
    frame, Y = layer_table(test)
    if frame.empty:
        return pd.DataFrame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        P, lo, hi = model.predict(frame), model.predict(frame, 0.05), model.predict(frame, 0.95)
        # the same layers with their weight statistics hidden: what the feature changes
        blind = frame.assign(n_nonzero_weights=np.nan, csd_digits=np.nan)
        Pb = model.predict(blind)
    known = frame["n_nonzero_weights"].notna().to_numpy() if "n_nonzero_weights" in frame else \
        np.zeros(len(frame), bool)
    bound = design(frame)["dsp_max"]
    recs = []
    for t in ALL:
        for i in range(len(frame)):
            recs.append({"source": source, "target": t, "kind": frame["layer_type"].iat[i],
                         "y": Y[t].iat[i], "p": P[t].iat[i], "lo": lo[t].iat[i], "hi": hi[t].iat[i],
                         "dsp_bound": bound[i], "weights_known": bool(known[i]),
                         "p_without_weights": Pb[t].iat[i]})
    return pd.DataFrame(recs)


def project_errors(model: ResourceModel, test: pd.DataFrame, source: str) -> pd.DataFrame:
    """One row per (held-out model-level report, target), with ``complete``."""
    P = model.predict_projects(test)
    if P.empty:
        return pd.DataFrame()
    recs = []
    for _, r in P[P["n_layers"] > 0].iterrows():
        for t in ALL:
            recs.append({"source": source, "target": t, "project": r["source"], "complete": r["complete"],
                         "y": r[f"meas_{t}"], "p": r[f"pred_{t}"], "lo": r[f"lo_{t}"], "hi": r[f"hi_{t}"]})
    return pd.DataFrame(recs)


def _reports_of(test: pd.DataFrame) -> list[pd.DataFrame]:
    """The held-out source cut into 'reports' a user could give: one project (its model and
    layer rows) each; sources of per-layer tables (N-TORC) give one layer row each. Only
    reports with at least one configured layer (the others can neither calibrate nor score)."""
    out = []
    for _src, g in test.groupby("source"):
        if (g["level"] == "model").any() or g.get("format", pd.Series([""])).iloc[0] != "csv":
            out.append(g)
        else:  # a table source: a fixed sample of 200 rows, one report each
            g = g.sample(min(len(g), 200), random_state=0)
            out.extend(g.iloc[[i]] for i in range(len(g)))
    # a report can only calibrate (or be scored) if it has a configured layer
    return [r for r in out if not layer_table(r)[0].empty]


def calibration_curve(model: ResourceModel, test: pd.DataFrame, source: str, draws: int,
                      ks=(0, 1, 2, 3, 4, 5)) -> list[dict]:
    """Median APE on a held-out source's other reports after ``calibrate()`` on k of them.

    Per draw, up to five reports form the calibration pool and the rest are the fixed test set;
    k = 0..5 calibrate on the pool's first k, so every k is scored on the same reports. Scored
    at model level (complete projects) where the test set has them, else at layer level."""
    reports = _reports_of(test)
    complete = {p["source"] for p in project_layers(test) if p["complete"]}
    if len(reports) < 2:
        return []
    rng = np.random.default_rng(0)
    recs = []
    for d in range(draws):
        order = rng.permutation(len(reports))
        pool_n = min(5, len(reports) - 1)
        pool, rest_i = order[:pool_n], order[pool_n:]
        rest = pd.concat([reports[i] for i in rest_i])
        lev = "model" if complete & set(rest["source"]) else "layer"
        for k in ks:
            if k > pool_n:
                break
            m = copy.deepcopy(model)
            if k:
                m.calibrate(pd.concat([reports[i] for i in pool[:k]]))
            E = project_errors(m, rest, source) if lev == "model" else layer_errors(m, rest, source)
            if E.empty:
                continue
            if lev == "model":
                E = E[E["complete"]]
            for t in TARGETS:
                e = _ape(E.loc[E["target"] == t, "y"].to_numpy(float), E.loc[E["target"] == t, "p"].to_numpy(float))
                if len(e):
                    recs.append({"source": source, "k": k, "draw": d, "level": lev, "target": t,
                                 "median_ape": float(np.median(e))})
    return recs


def _old_default_predictions(specs: list[list[dict]], ref: str) -> list[dict]:
    """Network predictions of the OLD shipped model for lists of Dense/Conv LayerSpec dicts: its
    code and model file are taken from git ``ref`` and run in a subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        arch = subprocess.run(["git", "-C", str(REPO), "archive", ref, "src"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=arch.stdout, check=True)
        Path(tmp, "in.json").write_text(json.dumps(specs))
        code = (
            "import json, warnings, sys\n"
            "warnings.simplefilter('ignore')\n"
            "from connas4ml_torch.hardware.layerspec import LayerSpec\n"
            "from connas4ml_torch.hardware.model import ResourceModel\n"
            "m = ResourceModel.default()\n"
            "out = []\n"
            "for net in json.load(open(sys.argv[1])):\n"
            "    sp = [LayerSpec(**{k: (tuple(v) if k in ('kernel', 'out_size') else v) for k, v in d.items()}) for d in net]\n"
            "    out.append(m.predict_network(sp) if sp else {})\n"
            "json.dump(out, open(sys.argv[2], 'w'))\n")
        env = {"PYTHONPATH": str(Path(tmp, "src")), "PATH": "/usr/bin:/bin"}
        subprocess.run([sys.executable, "-c", code, str(Path(tmp, "in.json")), str(Path(tmp, "out.json"))],
                       env=env, check=True, capture_output=True)
        return json.loads(Path(tmp, "out.json").read_text())


_OLD_FIELDS = ("layer_type", "n_in", "n_out", "kernel", "out_size", "weight_bits", "input_bits",
               "result_bits", "reuse_factor", "strategy", "io_type", "backend", "part",
               "clock_period", "tool_version")


def shipped_comparison(df: pd.DataFrame, ref: str) -> tuple[pd.DataFrame, str]:
    """Model-level errors of the new and the old shipped default on the non-permissive sources."""
    test = df[~df["source_repo"].isin(PERMISSIVE_SOURCES)]
    new = ResourceModel.default()
    E = project_errors(new, test, "all")
    E = E[E["complete"]].assign(model="new default")
    projects = [p for p in project_layers(test) if p["complete"]]
    nets = []
    for p in projects:
        sp = p["specs"]
        sp = sp[sp["layer_type"].isin(("Dense", "Conv1D", "Conv2D"))]
        nets.append([{k: (None if (isinstance(v, float) and np.isnan(v)) else
                          (int(v) if k in ("n_in", "n_out", "weight_bits", "input_bits", "reuse_factor",
                                           "result_bits") and v is not None else v))
                      for k, v in r.items() if k in _OLD_FIELDS} for r in sp.to_dict("records")])
    try:
        old = _old_default_predictions(nets, ref)
        note = f"old default: `src/` and model file of git {ref}"
    except (subprocess.CalledProcessError, OSError) as exc:
        old, note = [], f"old default not evaluated ({exc})"
    recs = []
    for p, o in zip(projects, old):
        for t in ALL:
            key = "latency_cycles" if t == "latency" else t
            recs.append({"source": p["source_repo"], "target": t, "project": p["source"], "complete": True,
                         "y": p["measured"][t], "p": o.get(key, np.nan), "model": "old default"})
    return pd.concat([E, pd.DataFrame(recs)], ignore_index=True), note


def shipped_intervals(df: pd.DataFrame) -> pd.DataFrame:
    """The shipped default's network bounds on each other source's complete projects, its
    intervals conformalized on the remaining other sources only (``fit_default`` uses all of
    them): the coverage a new group's projects can expect."""
    other = df[~df["source_repo"].isin(PERMISSIVE_SOURCES)]
    base = ResourceModel.default()
    out = []
    for s in sorted(other["source_repo"].unique()):
        m = copy.deepcopy(base)
        # back to what the fit alone gives (two complete projects of its own: the layer
        # quantiles), so that no quantile computed with source s survives below five projects
        m.intervals_["model"] = {t: v.copy() for t, v in base.intervals_["layer"].items()}
        m.conformalize(other[other["source_repo"] != s])
        E = project_errors(m, other[other["source_repo"] == s], s)
        if not E.empty:
            out.append(E[E["complete"]])
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def _summ(E: pd.DataFrame, key: str, figures: dict, label: str, lines: list[str]) -> None:
    cells = []
    for t in TARGETS:
        g = E[E["target"] == t]
        e = _ape(g["y"].to_numpy(float), g["p"].to_numpy(float))
        ok = np.isfinite(g["y"]) & (g["y"] >= 0) & np.isfinite(g["lo"]) if "lo" in g else None
        cov = float(((g["y"] >= g["lo"] - 1e-9) & (g["y"] <= g["hi"] + 1e-9))[ok].mean() * 100) \
            if ok is not None and ok.any() else np.nan
        per_src = g.assign(a=np.nan)
        if len(e):
            figures[f"{key}_{t}_median_ape_pct"] = round(float(np.median(e)), 1)
            figures[f"{key}_{t}_n"] = int(len(e))
            meds = [np.median(_ape(s["y"].to_numpy(float), s["p"].to_numpy(float)))
                    for _, s in per_src.groupby("source") if len(_ape(s["y"].to_numpy(float), s["p"].to_numpy(float)))]
            figures[f"{key}_{t}_median_of_source_medians_ape_pct"] = round(float(np.median(meds)), 1)
            if np.isfinite(cov):
                figures[f"{key}_{t}_coverage90_pct"] = round(cov, 1)
                # how sharp the intervals are: the median ratio (1 + hi) / (1 + lo)
                w = np.log1p(g["hi"].to_numpy(float)) - np.log1p(g["lo"].to_numpy(float))
                figures[f"{key}_{t}_interval_width_factor"] = round(float(np.exp(np.nanmedian(w))), 2)
        cells.append(f"{np.median(e):.0f} [{figures[f'{key}_{t}_median_of_source_medians_ape_pct']:.0f}] "
                     f"({len(e)})" if len(e) else "-")
        if np.isfinite(cov):
            cells[-1] += f" / {cov:.0f}%"
    lines.append(f"| {label} | " + " | ".join(cells) + " |")


def _impossible(L: pd.DataFrame, M: pd.DataFrame) -> int:
    n = int((L["p"] < 0).sum() + (M["p"] < 0).sum())
    d = L[L["target"] == "DSP"]
    n += int((d["p"] > d["dsp_bound"] + 1e-6).sum())
    t = L[L["target"].isin(("latency", "II"))]
    n += int((t["p"] < 1 - 1e-9).sum())
    t = M[M["target"].isin(("latency", "II"))]
    n += int((t["p"] < 1 - 1e-9).sum())
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--draws", type=int, default=5, help="random calibration sets per k")
    ap.add_argument("--old-ref", default="571d9c8", help="git ref of the old default model")
    ap.add_argument("--sources", default="", help="comma-separated held-out sources (default: all)")
    ap.add_argument("--no-shipped", action="store_true", help="skip the shipped-defaults comparison")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"report corpus {args.data} not found", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    df = load_corpus(args.data)
    Ls, Ms, curve = [], [], []
    only = {x for x in args.sources.split(",") if x}
    for s, train, test in heldout_splits(df):
        if only and s not in only:
            continue
        m = ResourceModel().fit(train)
        Ls.append(layer_errors(m, test, s))
        Ms.append(project_errors(m, test, s))
        curve += calibration_curve(m, test, s, args.draws)
        print(f"held out {s}: done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    L = pd.concat(Ls, ignore_index=True)
    M = pd.concat(Ms, ignore_index=True)
    C = pd.DataFrame(curve)
    figures: dict = {"sources": int(L["source"].nunique()), "draws": args.draws,
                     "model_level_projects_complete": int(M[M["complete"]]["project"].nunique()),
                     "model_level_projects_all": int(M["project"].nunique())}
    lines = ["Leave-one-source-out over the report corpus (all sources; whole sources held out). "
             "Cells: median APE % over held-out rows [median of the per-source medians] (rows) / 90% "
             "interval coverage; the intervals' median width (1 + hi) / (1 + lo) is in the JSON "
             "(`*_interval_width_factor`) and under the table.", "",
             "| level (held-out rows) | " + " | ".join(TARGETS) + " |",
             "|---|" + "---|" * len(TARGETS)]
    _summ(M[M["complete"]], "model_loso_complete", figures, "model, complete projects (headline)", lines)
    _summ(M, "model_loso_all", figures, "model, all projects with layers", lines)
    _summ(L, "layer_loso", figures, "layer, all configured layers", lines)
    _summ(L[L["kind"].isin(("Dense", "Conv1D", "Conv2D"))], "layer_loso_dense_conv", figures,
          "layer, Dense/Conv only", lines)
    _summ(L[L["source"] != "HeRCLab+N-TORC"], "layer_loso_reports", figures,
          "layer, report sources (no N-TORC tables)", lines)
    lines += ["", "Median 90% interval width (1 + hi) / (1 + lo), model level (complete projects) / "
              "layer level: " + ", ".join(
                  f"{t} {figures.get(f'model_loso_complete_{t}_interval_width_factor', np.nan):.1f}x / "
                  f"{figures.get(f'layer_loso_{t}_interval_width_factor', np.nan):.1f}x" for t in TARGETS)]
    W = L[L["weights_known"]]
    if len(W):
        lines += ["", "Weight statistics (non-zero weights from parameters.h; layers where known, "
                  "held out): median APE % with / without them:", "",
                  "| target | rows | with | without |", "|---|---|---|---|"]
        for t in ("LUT", "FF", "DSP", "latency"):
            g = W[W["target"] == t]
            a = _ape(g["y"].to_numpy(float), g["p"].to_numpy(float))
            b = _ape(g["y"].to_numpy(float), g["p_without_weights"].to_numpy(float))
            if len(a):
                figures[f"weights_known_{t}_median_ape_pct"] = round(float(np.median(a)), 1)
                figures[f"weights_hidden_{t}_median_ape_pct"] = round(float(np.median(b)), 1)
                lines.append(f"| {t} | {len(a)} | {np.median(a):.0f} | {np.median(b):.0f} |")
    figures["impossible_predictions"] = _impossible(L, M)
    lines += ["", f"Impossible predictions (negative, DSP above the bound, latency/II < 1): "
              f"{figures['impossible_predictions']} of {len(L) + len(M)}.", ""]
    for lev in ("model", "layer"):
        Cl = C[C["level"] == lev] if not C.empty else C
        if Cl.empty:
            continue
        # the same sources in every column: those with a full pool of five calibration reports
        full = Cl.groupby("source")["k"].max()
        if (full >= 5).any():
            Cl = Cl[Cl["source"].isin(full[full >= 5].index)]
        lines += ["", f"Few-shot `calibrate()` on k reports of the held-out source, {lev} level: "
                  "median APE % on the source's other reports (the same test reports for every k, "
                  "sources with at least six reports; median over draws, then over sources):", "",
                  "| target | " + " | ".join(f"k={k}" for k in sorted(Cl["k"].unique())) + " | sources |",
                  "|---|" + "---|" * (Cl["k"].nunique() + 1)]
        for t in TARGETS:
            g = Cl[Cl["target"] == t].groupby(["source", "k"])["median_ape"].median().unstack()
            if g.empty:
                continue
            vals = [float(np.median(g[k].dropna())) for k in g.columns]
            for k, v in zip(g.columns, vals):
                figures[f"calibrate_{lev}_k{k}_{t}_median_ape_pct"] = round(v, 1)
            lines.append(f"| {t} | " + " | ".join(f"{v:.0f}" for v in vals) + f" | {len(g)} |")
    S, note = (pd.DataFrame(columns=["model"]), "") if args.no_shipped else shipped_comparison(df, args.old_ref)
    lines += [] if args.no_shipped else ["", f"Shipped defaults (fitted on the permissive sources only) on the other sources' "
              f"complete projects, model level, median APE % ({note}):", "",
              "| model | " + " | ".join(TARGETS) + " |", "|---|" + "---|" * len(TARGETS)]
    for name, g in S.groupby("model", sort=False):
        _summ(g.assign(lo=np.nan, hi=np.nan), "shipped_" + name.replace(" ", "_"), figures, name, lines)
    if not args.no_shipped:
        Si = shipped_intervals(df)
        _summ(Si, "shipped_conformal", figures, "new default / 90% network bounds, each source left "
              "out of the conformal quantiles", lines)
        lines += ["", "Median 90% network-bound width (1 + hi) / (1 + lo) of the shipped default: " + ", ".join(
            f"{t} {figures.get(f'shipped_conformal_{t}_interval_width_factor', np.nan):.1f}x" for t in TARGETS)]
    figures["runtime_s"] = round(time.perf_counter() - t0, 1)
    lines += ["", f"Runtime {figures['runtime_s']} s."]
    record(__file__, figures, "\n".join(lines), write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
