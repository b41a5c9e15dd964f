"""Leave-one-source-out accuracy of the ResourceModel on the real report corpus, vs two baselines.

For every repository of ../shared/data/hls4ml-reports with configured layer reports: fit on all
other repositories, predict the held-out one, at layer level (each configured layer report) and
at model level (``predict_network`` of a project's configured layers vs its top-level report,
for projects whose every Dense/Conv layer is configured). Baselines: an hls4ml-style count
(DSP = multiplications per initiation when the product maps to a DSP, latency = adder-tree depth
(+ RF for Resource)) and an HGQ-style LUT/FF = k * sum(b_w * b_in * multiplications) with k the
median ratio on the training sources. Errors: absolute percentage error (APE) on rows with a
positive truth; "in domain" = the held-out row lies inside the training domain.

    python benchmarks/surrogate_accuracy.py [--max-iter 100] [--no-write]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

from connas4ml_torch.hardware.features import build_features, rows_to_specs_frame  # noqa: E402
from connas4ml_torch.hardware.fit_default import DEFAULT_DATA, load_corpus  # noqa: E402
from connas4ml_torch.hardware.model import OutOfDomainWarning, ResourceModel, training_rows  # noqa: E402

TARGETS = ("LUT", "FF", "DSP", "BRAM_18K", "latency_cycles")
YCOL = {"latency_cycles": "lat_worst"}


def _truth(rows: pd.DataFrame, t: str) -> np.ndarray:
    return pd.to_numeric(rows[YCOL.get(t, t)], errors="coerce").to_numpy(float)


def _ape(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    ok = np.isfinite(y) & np.isfinite(p) & (y > 0)
    return 100 * np.abs(p[ok] - y[ok]) / y[ok]


def hls4ml_count(specs: pd.DataFrame) -> pd.DataFrame:
    """hls4ml-style counts: DSP = mults/RF where products map to DSPs; latency = tree depth."""
    F = build_features(specs)
    mults = 2 ** F["log2_mults"]
    depth = np.ceil(F["log2_n_in"] + F["log2_kernel"]) + 1
    lat = np.where(F["strategy_resource"] > 0, specs["reuse_factor"].astype(float) + depth + 2, depth)
    return pd.DataFrame({"DSP": mults * F["dsp_mapped"], "latency_cycles": lat})


def hgq_bits(specs: pd.DataFrame) -> np.ndarray:
    """sum(b_w * b_in * multiplications per initiation)."""
    return 2 ** build_features(specs)["log2_mults_bits"].to_numpy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"report corpus {args.data} not found", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    df = load_corpus(args.data)
    rows = training_rows(df)
    sources = sorted(rows["source_repo"].unique())
    layer_res, model_res = [], []
    for s in sources:
        train = df[df["source_repo"] != s]
        test = rows[rows["source_repo"] == s]
        m = ResourceModel(max_iter=args.max_iter, quantiles=()).fit(train)
        specs = rows_to_specs_frame(test)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OutOfDomainWarning)
            pred = m.predict(specs)
        inside = m.in_domain(specs)
        base = hls4ml_count(specs)
        tr = training_rows(train)
        hb_tr, hb = hgq_bits(rows_to_specs_frame(tr)), hgq_bits(specs)
        for t in TARGETS:
            y = _truth(test, t)
            b = None
            if t in ("LUT", "FF"):
                yt = _truth(tr, t)
                ok = np.isfinite(yt) & (yt > 0)
                b = np.median(yt[ok] / hb_tr[ok]) * hb
            elif t in base:
                b = base[t].to_numpy(float)
            for i in range(len(test)):
                layer_res.append({"source": s, "target": t, "in_domain": bool(inside[i]), "y": y[i],
                                  "model": pred[t].iat[i], "baseline": np.nan if b is None else b[i]})
        # model level: projects whose Dense/Conv layer rows are all configured
        lay_all = df[(df["source_repo"] == s) & (df["level"] == "layer")
                     & df["layer_type"].isin(["Dense", "Conv1D", "Conv2D"])]
        if "primary" in lay_all:
            lay_all = lay_all[lay_all["primary"].fillna(True).astype(bool)]
        mods = df[(df["source_repo"] == s) & (df["level"] == "model") & (df["format"] != "json")]
        for _, mr in mods.iterrows():
            la = lay_all[lay_all["source"] == mr["source"]]
            lc = test[test["source"] == mr["source"]]
            if la.empty or len(lc) != len(la):
                continue
            sp = rows_to_specs_frame(lc)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OutOfDomainWarning)
                net = m.predict_network(sp)
            for t in TARGETS:
                y = pd.to_numeric(pd.Series([mr[YCOL.get(t, t)]]), errors="coerce").iloc[0]
                model_res.append({"source": s, "target": t, "in_domain": bool(m.in_domain(sp).all()),
                                  "y": y, "model": net[t], "baseline": np.nan})
    # in-domain check that LOSO cannot give for N-TORC (its strategy/part/tool combination exists
    # nowhere else): 5-fold CV inside N-TORC, the other sources always in the training set
    from sklearn.model_selection import KFold

    nt = rows[rows["source_repo"] == "HeRCLab+N-TORC"]
    rest = df[df["source_repo"] != "HeRCLab+N-TORC"]
    for _k, (tr_i, te_i) in enumerate(KFold(5, shuffle=True, random_state=0).split(nt)):
        m = ResourceModel(max_iter=args.max_iter, quantiles=()).fit(
            pd.concat([rest, nt.iloc[tr_i]], ignore_index=True))
        test = nt.iloc[te_i]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OutOfDomainWarning)
            pred = m.predict(rows_to_specs_frame(test))
        for t in TARGETS:
            y = _truth(test, t)
            for i in range(len(test)):
                layer_res.append({"source": "N-TORC 5-fold", "target": t, "in_domain": True,
                                  "y": y[i], "model": pred[t].iat[i], "baseline": np.nan})
    L, M = pd.DataFrame(layer_res), pd.DataFrame(model_res)
    L["group"] = np.where(L["source"] == "HeRCLab+N-TORC", "N-TORC held out",
                          np.where(L["source"] == "N-TORC 5-fold", "N-TORC 5-fold CV",
                                   "other sources held out (pooled)"))
    M["group"] = "projects held out (pooled)"
    figures: dict[str, float | int | str | bool] = {
        "layer_rows": int(len(rows)), "sources": len(sources), "max_iter": args.max_iter,
        "model_level_projects": int(len(M) // len(TARGETS)) if len(M) else 0,
    }
    lines = ["Leave-one-source-out over the report corpus (all sources; N-TORC tables included).",
             f"{len(rows)} configured layer rows from {len(sources)} sources: "
             + ", ".join(f"{s} ({(rows['source_repo'] == s).sum()})" for s in sources) + ".", "",
             "| level | evaluation | rows | target | n | model median APE % | model p90 APE % | baseline median APE % | baseline p90 APE % |",
             "|---|---|---|---|---|---|---|---|---|"]
    groups = [("layer", gname, L[L["group"] == gname]) for gname in
              ("N-TORC 5-fold CV", "other sources held out (pooled)", "N-TORC held out")]
    groups.append(("model", "projects held out (pooled)", M))
    for level, gname, R in groups:
        if R.empty:
            continue
        for subset, S in (("in domain", R[R["in_domain"]]), ("all", R)):
            if gname == "N-TORC 5-fold CV" and subset == "all":
                continue
            for t in TARGETS:
                g = S[S["target"] == t]
                em = _ape(g["y"].to_numpy(float), g["model"].to_numpy(float))
                eb = _ape(g["y"].to_numpy(float), g["baseline"].to_numpy(float))
                if not len(em):
                    continue
                short = {"N-TORC 5-fold CV": "ntorc_cv", "other sources held out (pooled)": "loso_other",
                         "N-TORC held out": "loso_ntorc", "projects held out (pooled)": "loso"}[gname]
                key = f"{level}_{short}_{subset.replace(' ', '_')}_{t}"
                figures[f"{key}_n"] = int(len(em))
                figures[f"{key}_median_ape_pct"] = round(float(np.median(em)), 2)
                figures[f"{key}_p90_ape_pct"] = round(float(np.percentile(em, 90)), 2)
                bm = f"{np.median(eb):.1f}" if len(eb) else "-"
                bp = f"{np.percentile(eb, 90):.1f}" if len(eb) else "-"
                if len(eb):
                    figures[f"{key}_baseline_median_ape_pct"] = round(float(np.median(eb)), 2)
                lines.append(f"| {level} | {gname} | {subset} | {t} | {len(em)} | {np.median(em):.1f} | "
                             f"{np.percentile(em, 90):.1f} | {bm} | {bp} |")
    lines += ["", "Per held-out source (layer level, all rows), median APE % LUT / FF / DSP / latency:", "",
              "| held-out source | rows | in-domain rows | LUT | FF | DSP | latency |", "|---|---|---|---|---|---|---|"]
    for s in [*sources, "N-TORC 5-fold"]:
        g = L[L["source"] == s]
        cells = []
        for t in ("LUT", "FF", "DSP", "latency_cycles"):
            e = _ape(g.loc[g["target"] == t, "y"].to_numpy(float), g.loc[g["target"] == t, "model"].to_numpy(float))
            cells.append(f"{np.median(e):.0f}" if len(e) else "-")
        n = int((g["target"] == "LUT").sum())
        nin = int(g.loc[g["target"] == "LUT", "in_domain"].sum())
        lines.append(f"| {s} | {n} | {nin} | " + " | ".join(cells) + " |")
    figures["runtime_s"] = round(time.perf_counter() - t0, 1)
    lines += ["", f"Runtime {figures['runtime_s']} s (max_iter={args.max_iter})."]
    record(__file__, figures, "\n".join(lines), write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
