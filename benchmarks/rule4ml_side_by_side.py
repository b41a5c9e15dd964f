"""Side by side with rule4ml: both cost models predict the same real hls4ml projects.

rule4ml (PyPI ``rule4ml``, IMPETUS; neural surrogates of hls4ml resources and latency, shipped
weights, TensorFlow + torch_geometric) and our default ``ResourceModel`` predict the model-level
reports of the report corpus (``../shared/data/hls4ml-reports``) that rule4ml supports. Both are
scored against the top-level csynth report (LUT, FF, DSP, BRAM_18K, worst-case latency) and,
separately, against Vivado post-synthesis utilization where the project has it (``vsynth_*``).
Error: absolute percentage error (APE) on the rows where both predict and the measured value is
> 0 ("rows both support"), summarised by the median. Not CI, not a runtime dependency: rule4ml
runs in its own virtual environment through ``benchmarks/_rule4ml_worker.py`` (JSON in/out),
with the interpreter ``RULE4ML_PYTHON``; without it the script says so and exits 0 unwritten.

Selection (``strict``, the rows rule4ml supports; a model-level report qualifies when):
  1. the project's layer reports hold only Dense layers and Activation/Softmax layers whose
     activation rule4ml knows (relu, sigmoid, tanh, softmax; linear is dropped, as rule4ml
     does); non-layer functions (AXI wrappers, dataflow entry blocks) are allowed;
  2. it is io_parallel;
  3. every Dense layer states n_in, n_out, reuse factor, strategy, weight type and its config
     index (the layer order), and the Dense sizes chain (n_in = previous n_out);
  4. one strategy for all Dense layers (rule4ml: latency or resource);
  5. one precision: every Dense weight type is the same signed ``ap_fixed<W,I>`` and equals the
     hls4ml_config.yml default precision where the project states one (rule4ml takes a single
     model precision; mixed-precision networks cannot be described to it);
  6. the part is the part of a rule4ml board (pynq-z2, zcu102, alveo-u200, alveo-u250);
  7. the HLS tool version (YYYY.N) is one rule4ml knows (2019.1 .. 2024.2).
rule4ml gets the network as its reports describe it, in config order (Input(n_in), Dense(n_out)
with its reuse factor, Activation(...)), the board, strategy, precision and tool version. The
hls4ml version that built a project is in none of its files, so rule4ml predicts for every hls4ml
version it knows and is scored on their mean; "ahead" needs our median APE below rule4ml's for
the mean and for each version. A first Dense layer without an input width gets the width of the
hls4ml_config.yml default precision (hls4ml's input type), for both models.

``extended`` (reported, not part of the verdict): the same rule with rule 6 and 7 relaxed: a
part of another board's family is mapped to the nearest rule4ml board (xc7z/xc7v -> pynq-z2,
xczu -> zcu102, xcvu9p/xcu200 -> alveo-u200, other Virtex/Alveo UltraScale+ -> alveo-u250) and
a tool version outside rule4ml's list to the nearest one in it.

Ours: ``ours()`` calls ``ResourceModel.default().predict_projects`` where it exists and otherwise
sums ``predict_network`` over each project's Dense layer rows (as LayerSpec). Our default model
was fitted on the permissively licensed sources (``fit_default.PERMISSIVE_SOURCES``): their rows
are in-sample for us, so the held-out rows are summarised separately.

    # once: rule4ml in its own venv (rule4ml asks for full tensorflow and an unpinned torch;
    # tensorflow-cpu and the local CPU torch wheel are installed instead, rule4ml with --no-deps)
    python3 -m venv ../venv-rule4ml
    ../venv-rule4ml/bin/pip install torch==2.13.0
    ../venv-rule4ml/bin/pip install tensorflow-cpu torch-geometric pandas scikit-learn \\
        keras keras-tuner optuna tqdm
    ../venv-rule4ml/bin/pip install --no-deps rule4ml==0.2.0
    RULE4ML_PYTHON=../venv-rule4ml/bin/python \\
        python benchmarks/rule4ml_side_by_side.py [--data DIR] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

from connas4ml_torch import ResourceModel  # noqa: E402
from connas4ml_torch.hardware.fit_default import (  # noqa: E402
    DEFAULT_DATA,
    PERMISSIVE_SOURCES,
    load_corpus,
)

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_rule4ml_worker.py"
DEFAULT_RULE4ML_PYTHON = "../venv-rule4ml/bin/python"
TARGETS = ("LUT", "FF", "DSP", "BRAM_18K", "latency_cycles")
MEASURED = {
    "LUT": "LUT",
    "FF": "FF",
    "DSP": "DSP",
    "BRAM_18K": "BRAM_18K",
    "latency_cycles": "lat_worst",
}
POST_SYNTH = {
    "LUT": "vsynth_LUT",
    "FF": "vsynth_FF",
    "DSP": "vsynth_DSP",
    "BRAM_18K": "vsynth_BRAM_18K",
}
RULE4ML_KEY = {
    "LUT": "LUT",
    "FF": "FF",
    "DSP": "DSP",
    "BRAM_18K": "BRAM",
    "latency_cycles": "CYCLES",
}
ACTIVATIONS = {"relu", "sigmoid", "tanh", "softmax", "linear"}
LAYER_KINDS = {"Dense", "Activation", "Softmax"}
FIXED = re.compile(r"^(?:ap_)?fixed<\s*(\d+)\s*,\s*(\d+)\s*>$")
# extended selection: part prefix -> nearest rule4ml board (first match wins)
NEAREST_BOARD = (
    ("xc7z", "pynq-z2"),
    ("xc7v", "pynq-z2"),
    ("xczu", "zcu102"),
    ("xcvu9p", "alveo-u200"),
    ("xcu200", "alveo-u200"),
    ("xcvu", "alveo-u250"),
    ("xcu", "alveo-u250"),
)


# ------------------------------------------------------------------------------------------------
# rule4ml, through its own interpreter
# ------------------------------------------------------------------------------------------------
def rule4ml_python() -> str:
    return os.environ.get("RULE4ML_PYTHON", DEFAULT_RULE4ML_PYTHON)


def _worker(args: list[str], payload: dict | None, timeout: float) -> dict:
    env = dict(
        os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONWARNINGS="ignore"
    )
    env.pop("PYTHONPATH", None)  # the worker must not see this project's tree
    proc = subprocess.run(
        [rule4ml_python(), str(WORKER), *args],
        env=env,
        text=True,
        input=json.dumps(payload) if payload is not None else None,
        capture_output=True,
        timeout=timeout,
    )
    try:
        out = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        out = {}
    if proc.returncode != 0 or "error" in out or not out:
        why = out.get("error") or (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"rule4ml worker exited {proc.returncode}: {why}")
    return out


def rule4ml_describe() -> dict:
    """What rule4ml accepts (boards, strategies, versions); RuntimeError when it is unavailable."""
    py = rule4ml_python()
    if not Path(py).is_file():
        raise RuntimeError(
            f"no rule4ml interpreter at {py} (set RULE4ML_PYTHON; the setup is "
            "in this script's docstring)"
        )
    return _worker(["--describe"], None, timeout=120)


def rule4ml_predict(nets: list[dict]) -> dict:
    return _worker([], {"networks": nets}, timeout=1800)


# ------------------------------------------------------------------------------------------------
# selection: a project -> the network description rule4ml wants
# ------------------------------------------------------------------------------------------------
def _norm_part(part: object) -> str:
    return str(part).lower().replace("-", "")


def _precision(text: object) -> str | None:
    """``ap_fixed<W, I>`` (rule4ml's spelling) or None when ``text`` is no signed fixed type."""
    if not isinstance(text, str):
        return None
    m = FIXED.match(text.strip().lower())
    return f"ap_fixed<{int(m.group(1))}, {int(m.group(2))}>" if m else None


def _first(*vals: object) -> object:
    for v in vals:
        if isinstance(v, str) and v and v.lower() != "nan":
            return v
        if v is not None and not isinstance(v, str) and not pd.isna(v):
            return v
    return None


def network(m: pd.Series, lay: pd.DataFrame) -> tuple[dict | None, str, str]:
    """(network description, reason code, detail) of one model-level report's project."""
    if lay.empty:
        return None, "no_layer_reports", "no layer reports"
    kinds = set(lay["layer_type"].dropna()) - {"other"}
    if kinds - LAYER_KINDS:
        return None, "non_dense_layers", ", ".join(sorted(kinds - LAYER_KINDS))
    io = _first(
        m.get("io_type"),
        m.get("cfg_io_type"),
        *(set(lay["io_type"].dropna()) if lay["io_type"].nunique() == 1 else []),
    )
    if io is None:
        return None, "io_type_unknown", "no io type in the reports or hls4ml_config.yml"
    if io != "io_parallel":
        return None, "not_io_parallel", str(io)
    acts = lay[lay["layer_type"].isin(["Activation", "Softmax"])]
    bad = set(acts["activation"].fillna("?").str.lower()) - ACTIVATIONS
    if bad:
        return None, "unknown_activation", ", ".join(sorted(bad))
    dense = lay[lay["layer_type"] == "Dense"]
    need = ["n_in", "n_out", "reuse_factor", "strategy", "weight_bits", "config_index"]
    if dense.empty or dense[need].isna().any().any():
        return (
            None,
            "dense_config_incomplete",
            "Dense layer without "
            + ", ".join(c for c in need if dense.empty or dense[c].isna().any()),
        )
    seq = pd.concat([dense, acts[acts["activation"].str.lower() != "linear"]])
    if seq["config_index"].isna().any():
        return None, "order_unknown", "activation without config index"
    strategies = set(dense["strategy"].astype(str).str.lower())
    if len(strategies) != 1:
        return None, "mixed_strategy", ", ".join(sorted(strategies))
    default = m.get("cfg_precision")
    written = [t for t in dense["weight_type"] if isinstance(t, str)]
    if any(_precision(t) is None for t in written):
        return None, "precision_not_ap_fixed", ", ".join(sorted(set(written)))
    wtypes = {_precision(t) if isinstance(t, str) else None for t in dense["weight_type"]}
    if None in wtypes:  # weight type not written: the default precision, if its width matches
        p = _precision(default)
        wb = set(dense.loc[dense["weight_type"].isna(), "weight_bits"].astype(int))
        if p is None or wb != {int(FIXED.match(p.replace(" ", "")).group(1))}:
            return None, "precision_not_ap_fixed", f"weight types {sorted(map(str, wtypes))}"
        wtypes = (wtypes - {None}) | {p}
    if len(wtypes) != 1:
        return None, "mixed_precision", ", ".join(sorted(wtypes))
    prec = wtypes.pop()
    if isinstance(default, str) and _precision(default) not in (None, prec):
        return None, "mixed_precision", f"Dense weights {prec}, model default {default}"
    if isinstance(default, str) and _precision(default) is None:
        return None, "precision_not_ap_fixed", str(default)
    layers, prev, n_in, k = [], None, None, 0
    for _, r in seq.assign(_o=seq["config_index"].astype(float)).sort_values("_o").iterrows():
        if r["layer_type"] == "Dense":
            if prev is not None and int(r["n_in"]) != prev:
                return None, "sizes_do_not_chain", f"{prev} -> Dense({int(r['n_in'])}, ...)"
            n_in = int(r["n_in"]) if n_in is None else n_in
            prev, k = int(r["n_out"]), k + 1
            layers.append(
                {
                    "kind": "dense",
                    "name": f"fc{k}",
                    "units": prev,
                    "reuse_factor": int(r["reuse_factor"]),
                }
            )
        else:
            if n_in is None:
                n_in = int(r["n_in"]) if pd.notna(r["n_in"]) else None
            layers.append({"kind": "activation", "activation": str(r["activation"]).lower()})
    if n_in is None:
        return None, "dense_config_incomplete", "input width unknown"
    rf = _first(m.get("cfg_reuse"))
    net = {
        "n_in": n_in,
        "layers": layers,
        "strategy": strategies.pop(),
        "precision": prec,
        "reuse_factor": int(rf) if rf is not None else int(dense["reuse_factor"].min()),
    }
    return net, "ok", ""


def board_for(part: object, boards: dict[str, str], extended: bool) -> str | None:
    p = _norm_part(part)
    for name, bp in boards.items():
        if _norm_part(bp) == p:
            return name
    if extended:
        for prefix, name in NEAREST_BOARD:
            if p.startswith(prefix) and name in boards:
                return name
    return None


def version_for(tool_version: object, known: list[str], extended: bool) -> str | None:
    m = re.match(r"(\d{4})\.(\d)", str(tool_version))
    if not m:
        return None
    v = f"{m.group(1)}.{m.group(2)}"
    if v in known or not extended or not known:
        return v if v in known else None
    num = {k: float(k) for k in known}
    return min(known, key=lambda k: (abs(num[k] - float(v)), k))


def fill_input_bits(df: pd.DataFrame, sources: set[str]) -> pd.DataFrame:
    """A first Dense layer with no input width gets the default precision's width (hls4ml's
    ``input_t``), read from the project's hls4ml_config.yml; nothing else is filled."""
    df = df.copy()
    models = df[(df["level"] == "model") & df["source"].isin(sources)].set_index("source")
    for src, m in models.iterrows():
        p = _precision(m.get("cfg_precision"))
        sel = (df["source"] == src) & (df["level"] == "layer") & (df["layer_type"] == "Dense")
        if p is None or not sel.any():
            continue
        first = pd.to_numeric(df.loc[sel, "config_index"], errors="coerce").idxmin()
        if pd.isna(df.at[first, "input_bits"]):
            df.at[first, "input_bits"] = float(FIXED.match(p.replace(" ", "")).group(1))
    return df


def select(df: pd.DataFrame, desc: dict, root: Path) -> tuple[pd.DataFrame, list[dict]]:
    """One row per model-level report: its network (or None), set (strict/extended/excluded)."""
    lay_all = df[df["level"] == "layer"]
    lay_all = lay_all[lay_all["primary"].fillna(True).astype(bool)]
    groups = dict(tuple(lay_all.groupby("source")))
    boards, known = desc["boards"], list(desc.get("vivado_version", []))
    rows, nets = [], []
    for _, m in df[df["level"] == "model"].iterrows():
        net, code, detail = network(m, groups.get(m["source"], lay_all.iloc[:0]))
        rec = {
            "report": str(m["report"]),
            "source": m["source"],
            "source_repo": m["source_repo"],
            "part": m["part"],
            "tool_version": m["tool_version"],
            "set": "excluded",
            "reason": code,
            "detail": detail,
        }
        if net is not None and net["strategy"] not in desc.get("strategy", []):
            net, rec["reason"], rec["detail"] = None, "strategy_not_rule4ml", net["strategy"]
        if net is not None:
            b = board_for(m["part"], boards, False)
            v = version_for(m["tool_version"], known, False)
            be = board_for(m["part"], boards, True)
            ve = version_for(m["tool_version"], known, True)
            if b and v:
                rec.update(set="strict", board=b, vivado_version=v, reason="ok")
            elif be and ve:
                rec.update(
                    set="extended",
                    board=be,
                    vivado_version=ve,
                    reason="part_not_rule4ml_board" if not b else "tool_version_outside_rule4ml",
                    detail=f"{m['part']} -> {be}, {m['tool_version']} -> {ve}",
                )
            else:
                rec.update(
                    reason="part_not_rule4ml_board" if not be else "tool_version_outside_rule4ml",
                    detail=f"{m['part']}, {m['tool_version']}",
                )
        if rec["set"] != "excluded":
            nets.append(
                {
                    "id": rec["report"],
                    "board": rec["board"],
                    "vivado_version": rec["vivado_version"],
                    **net,
                }
            )
            shape = "-".join(
                [str(net["n_in"])]
                + [str(lay["units"]) for lay in net["layers"] if lay["kind"] == "dense"]
            )
            rec.update(
                strategy=net["strategy"],
                precision=net["precision"],
                reuse_factor=net["reuse_factor"],
                shape=shape,
            )
            rec["same_as"] = json.dumps(
                [
                    shape,
                    net["strategy"],
                    net["reuse_factor"],
                    net["precision"],
                    _norm_part(m["part"]),
                    str(m["tool_version"]),
                    *(_first(m.get(c)) for c in MEASURED.values()),
                ]
            )
        rows.append(rec)
    sel = pd.DataFrame(rows)
    # a report copied into several folders or forks (same network, settings and numbers) counts once
    dup = (sel["set"] != "excluded") & sel.duplicated("same_as", keep="first")
    sel.loc[dup, ["set", "reason", "detail"]] = ["excluded", "duplicate_report", ""]
    nets = [n for n in nets if n["id"] in set(sel.loc[sel["set"] != "excluded", "report"])]
    sel["short"] = [_short(r, root) for r in sel["source"]]
    return sel, nets


def _short(source: str, root: Path) -> str:
    try:
        rel = Path(source).resolve().relative_to(root.resolve())
    except ValueError:
        return str(source)
    parts = rel.parts
    tail = [p for p in parts[2:] if p not in ("hls4ml_prj", "myproject_prj", "solution1")]
    return f"{parts[0]}: {'/'.join(tail[-2:]) or parts[-1]}"


# ------------------------------------------------------------------------------------------------
# ours, through whichever API the installed ResourceModel has
# ------------------------------------------------------------------------------------------------
def _spec(r: pd.Series) -> object:
    from connas4ml_torch.hardware.layerspec import LayerSpec

    def opt_int(v: object) -> int | None:
        return None if v is None or pd.isna(v) else int(v)

    return LayerSpec(
        layer_type=str(r["layer_type"]),
        n_in=int(r["n_in"]),
        n_out=int(r["n_out"]),
        kernel=tuple(r["kernel"]),
        out_size=tuple(r["out_size"]),
        weight_bits=int(r["weight_bits"]),
        input_bits=int(r["input_bits"]),
        result_bits=opt_int(r["result_bits"]),
        reuse_factor=int(r["reuse_factor"]),
        strategy=str(r["strategy"]),
        io_type=str(r["io_type"]),
        backend=str(r["backend"]),
        part=str(r["part"]),
        clock_period=float(r["clock_period"]),
        tool_version=None if pd.isna(r["tool_version"]) else str(r["tool_version"]),
    )


def ours(df_projects: pd.DataFrame) -> pd.DataFrame:
    """Predicted model-level LUT/FF/DSP/BRAM_18K/latency_cycles per model-level report (index:
    ``report``) of a read_reports() table, plus ``api`` (which ResourceModel API gave them)."""
    model = ResourceModel.default()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if hasattr(model, "predict_projects"):
            P = model.predict_projects(df_projects)
            out = pd.DataFrame(index=pd.Index(P["report"].astype(str), name="report"))
            for t in TARGETS:
                names = [f"pred_{t}"] + (["pred_latency"] if t == "latency_cycles" else [])
                col = next((c for c in names if c in P.columns), None)
                out[t] = P[col].to_numpy(float) if col else np.nan
            out["api"] = "predict_projects"
            return out
        # the LayerSpec API of today's ResourceModel (rows_to_specs_frame goes with it)
        from connas4ml_torch.hardware.features import rows_to_specs_frame

        lay = df_projects[
            (df_projects["level"] == "layer") & (df_projects["layer_type"] == "Dense")
        ]
        lay = lay[lay["primary"].fillna(True).astype(bool)]
        groups = dict(tuple(lay.groupby("source")))
        recs = []
        for _, m in df_projects[df_projects["level"] == "model"].iterrows():
            rec = {
                "report": str(m["report"]),
                **{t: np.nan for t in TARGETS},
                "api": "predict_network over Dense rows",
            }
            rows = groups.get(m["source"])
            if rows is not None and len(rows):
                try:
                    specs = [_spec(r) for _, r in rows_to_specs_frame(rows).iterrows()]
                except (ValueError, TypeError):
                    specs = []
                if specs:
                    net = model.predict_network(specs)
                    for t in TARGETS:
                        rec[t] = float(
                            net.get(t, net.get("latency", np.nan))
                            if t == "latency_cycles"
                            else net[t]
                        )
            recs.append(rec)
        return pd.DataFrame(recs).set_index("report")


# ------------------------------------------------------------------------------------------------
# comparison
# ------------------------------------------------------------------------------------------------
def _ape(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return 100 * np.abs(p - y) / y


def long_table(
    sel: pd.DataFrame, df: pd.DataFrame, mine: pd.DataFrame, r4: pd.DataFrame, versions: list[str]
) -> pd.DataFrame:
    """One row per (report, truth kind, target) where both predict and the truth is > 0."""
    mrow = df[df["level"] == "model"].assign(report=lambda d: d["report"].astype(str))
    mrow = mrow.drop_duplicates("report").set_index("report")
    out = []
    for _, s in sel[sel["set"] != "excluded"].iterrows():
        rep = s["report"]
        if rep not in r4.index or rep not in mine.index:
            continue
        for kind, cols in (("csynth", MEASURED), ("vsynth", POST_SYNTH)):
            for t, col in cols.items():
                y = pd.to_numeric(pd.Series([mrow.at[rep, col]]), errors="coerce").iloc[0]
                p_ours = float(mine.at[rep, t])
                p_r4 = {v: r4.at[rep, f"{RULE4ML_KEY[t]}@{v}"] for v in versions}
                if not (
                    np.isfinite(y)
                    and y > 0
                    and np.isfinite(p_ours)
                    and all(np.isfinite(list(p_r4.values())))
                ):
                    continue
                rec = {
                    "report": rep,
                    "short": s["short"],
                    "source_repo": s["source_repo"],
                    "set": s["set"],
                    "kind": kind,
                    "target": t,
                    "y": float(y),
                    "ours": p_ours,
                    "rule4ml": float(np.mean(list(p_r4.values()))),
                    "in_our_training": s["source_repo"] in PERMISSIVE_SOURCES,
                }
                rec.update({f"rule4ml@{v}": float(p) for v, p in p_r4.items()})
                out.append(rec)
    L = pd.DataFrame(out)
    if len(L):
        L["ape_ours"] = _ape(L["y"].to_numpy(), L["ours"].to_numpy())
        for c in ["rule4ml", *(f"rule4ml@{v}" for v in versions)]:
            L[f"ape_{c}"] = _ape(L["y"].to_numpy(), L[c].to_numpy())
    return L


def summary(L: pd.DataFrame, versions: list[str], targets: tuple[str, ...]) -> list[dict]:
    res = []
    for t in targets:
        g = L[L["target"] == t] if len(L) else L
        rec = {"target": t, "rows": int(len(g))}
        if len(g):
            rec["ours"] = float(np.median(g["ape_ours"]))
            rec["rule4ml"] = float(np.median(g["ape_rule4ml"]))
            for v in versions:
                rec[f"rule4ml@{v}"] = float(np.median(g[f"ape_rule4ml@{v}"]))
            rec["ahead"] = bool(all(rec["ours"] < rec[k] for k in rec if k.startswith("rule4ml")))
        res.append(rec)
    return res


def _f(x: object) -> str:
    return "-" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.1f}"


def _n(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:,.0f}" if abs(x) >= 10 else f"{x:.1f}"


def _slug(s: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", s).strip("_")


def _table(rows: list[dict], versions: list[str], verdict: bool) -> list[str]:
    vcols = "".join(f" rule4ml, hls4ml {v} |" for v in versions)
    head = (
        "| target | rows both support | ours median APE % | rule4ml median APE % (mean of "
        "hls4ml versions) |" + vcols + (" ahead of rule4ml |" if verdict else "")
    )
    lines = [head, "|---|---:|---:|---:|" + "---:|" * len(versions) + ("---|" if verdict else "")]
    for r in rows:
        cells = [
            r["target"],
            str(r["rows"]),
            _f(r.get("ours")),
            _f(r.get("rule4ml")),
            *(_f(r.get(f"rule4ml@{v}")) for v in versions),
        ]
        if verdict:
            cells.append("no rows" if not r["rows"] else "yes" if r["ahead"] else "no")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _figures(prefix: str, rows: list[dict], versions: list[str], figs: dict) -> None:
    for r in rows:
        k = f"{prefix}_{r['target']}"
        figs[f"{k}_rows"] = r["rows"]
        if r["rows"]:
            figs[f"{k}_ours_median_ape_pct"] = round(r["ours"], 2)
            figs[f"{k}_rule4ml_median_ape_pct"] = round(r["rule4ml"], 2)
            for v in versions:
                figs[f"{k}_rule4ml_hls4ml_{_slug(v)}_median_ape_pct"] = round(r[f"rule4ml@{v}"], 2)
            figs[f"{k}_ahead_of_rule4ml"] = r["ahead"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="report corpus folder")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    try:
        desc = rule4ml_describe()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"rule4ml is not available, nothing measured or written: {exc}")
        return 0
    if not args.data.is_dir():
        print(f"report corpus {args.data} not found (pass --data)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    df = load_corpus(args.data)
    df = df[df["source"].notna()].reset_index(drop=True)
    sel, nets = select(df, desc, args.data)
    chosen = set(sel.loc[sel["set"] != "excluded", "source"])
    df = fill_input_bits(df, chosen)
    read_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    try:
        r4out = rule4ml_predict(nets)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"rule4ml failed, nothing written: {exc}")
        return 0
    r4_s = time.perf_counter() - t1
    versions = [str(v) for v in r4out["hls4ml_versions"]]
    P = pd.DataFrame(r4out["predictions"])
    r4 = pd.DataFrame(index=pd.Index(sorted(set(P["id"])) if len(P) else [], name="report"))
    for v in versions:
        pv = P[P["hls4ml_version"] == v].set_index("id") if len(P) else P
        for k in RULE4ML_KEY.values():
            r4[f"{k}@{v}"] = pv[k].reindex(r4.index).to_numpy(float) if len(pv) else np.nan

    t2 = time.perf_counter()
    mine = ours(df[df["source"].isin(chosen)])
    ours_s = time.perf_counter() - t2
    api = str(mine["api"].iloc[0]) if len(mine) else "-"

    L = long_table(sel, df, mine, r4, versions)
    C = L[L["kind"] == "csynth"] if len(L) else L
    V = L[L["kind"] == "vsynth"] if len(L) else L
    strict = summary(C[C["set"] == "strict"] if len(C) else C, versions, TARGETS)
    held = summary(
        C[(C["set"] == "strict") & ~C["in_our_training"]] if len(C) else C, versions, TARGETS
    )
    post = summary(V[V["set"] == "strict"] if len(V) else V, versions, tuple(POST_SYNTH))
    ext = summary(C, versions, TARGETS)
    post_ext = summary(V, versions, tuple(POST_SYNTH))

    n_strict = int((sel["set"] == "strict").sum())
    n_ext = int((sel["set"] != "excluded").sum())
    figs: dict[str, float | int | str | bool] = {
        "model_reports_read": int(len(sel)),
        "strict_reports": n_strict,
        "extended_reports": n_ext,
        "rule4ml_version": r4out["version"],
        "rule4ml_hls4ml_versions": ", ".join(versions),
        "rule4ml_errors": len(r4out["errors"]),
        "ours_api": api,
        "read_s": round(read_s, 1),
        "rule4ml_s": round(r4_s, 1),
        "rule4ml_load_s": r4out.get("load_s", float("nan")),
        "ours_s": round(ours_s, 2),
    }
    _figures("strict", strict, versions, figs)
    _figures("strict_heldout", held, versions, figs)
    _figures("strict_vsynth", post, versions, figs)
    _figures("extended", ext, versions, figs)
    _figures("extended_vsynth", post_ext, versions, figs)
    reasons = sel.loc[sel["set"] == "excluded", "reason"].value_counts()
    for code, n in reasons.items():
        figs[f"excluded_reports_{code}"] = int(n)

    lines = [
        f"rule4ml {r4out['version']} (default GNN estimators) and our default ResourceModel "
        f"({api}) on the real hls4ml reports of `{args.data.name}`: {len(sel)} model-level "
        f"reports read, {n_strict} that rule4ml supports (strict), {n_ext - n_strict} more "
        "on a nearest board/tool version (extended). Median absolute percentage error against "
        "the csynth report on the rows both support (measured > 0; BRAM is 0 in most "
        "io_parallel Latency projects). rule4ml is scored on the mean of its predictions for "
        f"hls4ml {' and '.join(versions)} (no project states its hls4ml version); 'ahead' needs "
        "our median below each rule4ml column.",
        "",
        "Selection: Dense (+ relu/sigmoid/tanh/softmax) networks, io_parallel, every Dense "
        "layer's sizes, reuse factor, strategy, weight type and order stated, one strategy, one "
        "signed ap_fixed precision (= the config default), part of a rule4ml board "
        f"({', '.join(desc['boards'])}), HLS tool version in rule4ml's "
        f"{desc['vivado_version'][0]}..{desc['vivado_version'][-1]}.",
        "",
        "**Strict (the rows rule4ml supports), csynth:**",
        "",
        *_table(strict, versions, True),
        "",
        "Verdict, ahead of rule4ml on the rows both support: "
        + ", ".join(
            f"{r['target']} {'no rows' if not r['rows'] else 'yes' if r['ahead'] else 'no'}"
            for r in strict
        )
        + ".",
        "",
        "Strict rows from sources our default model was not fitted on (held out for us; rule4ml "
        "never saw any of them):",
        "",
        *_table(held, versions, True),
        "",
        "Strict, against Vivado post-synthesis utilization (vsynth):",
        "",
        *_table(post, versions, True),
        "",
        "Per source (strict, csynth), median APE % ours / rule4ml (rows):",
        "",
        "| source | in our training data | " + " | ".join(TARGETS) + " |",
        "|---|---|" + "---|" * len(TARGETS),
    ]
    S = C[C["set"] == "strict"] if len(C) else C
    for src in sorted(set(S["source_repo"])) if len(S) else []:
        g = S[S["source_repo"] == src]
        cells = []
        for t in TARGETS:
            h = g[g["target"] == t]
            cells.append(
                f"{np.median(h['ape_ours']):.0f} / {np.median(h['ape_rule4ml']):.0f} ({len(h)})"
                if len(h)
                else "-"
            )
            if len(h):
                figs[f"strict_source_{_slug(src)}_{t}_rows"] = int(len(h))
                figs[f"strict_source_{_slug(src)}_{t}_ours_median_ape_pct"] = round(
                    float(np.median(h["ape_ours"])), 2
                )
                figs[f"strict_source_{_slug(src)}_{t}_rule4ml_median_ape_pct"] = round(
                    float(np.median(h["ape_rule4ml"])), 2
                )
        lines.append(
            f"| {src} | {'yes' if src in PERMISSIVE_SOURCES else 'no'} | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        "Per project, measured / ours / rule4ml (csynth; rule4ml: mean over hls4ml versions):",
        "",
        "| set | project | board, tool | network | strategy, RF, precision | LUT | FF | "
        "DSP | BRAM_18K | latency [cycles] |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    mrow = df[df["level"] == "model"].assign(report=lambda d: d["report"].astype(str))
    mrow = mrow.drop_duplicates("report").set_index("report")
    for _, s in (
        sel[sel["set"] != "excluded"]
        .sort_values(["set", "short"], ascending=[False, True])
        .iterrows()
    ):
        rep = s["report"]
        cells = []
        for t in TARGETS:
            y = pd.to_numeric(pd.Series([mrow.at[rep, MEASURED[t]]]), errors="coerce").iloc[0]
            o = float(mine.at[rep, t]) if rep in mine.index else np.nan
            r = (
                float(np.mean([r4.at[rep, f"{RULE4ML_KEY[t]}@{v}"] for v in versions]))
                if rep in r4.index
                else np.nan
            )
            cells.append(f"{_n(y)} / {_n(o)} / {_n(r)}")
        lines.append(
            f"| {s['set']} | {s['short']} | {s['board']}, {s['tool_version']} | "
            f"{s['shape']} | {s['strategy']}, {int(s['reuse_factor'])}, {s['precision']} | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        "**Extended (strict + nearest board / tool version; not the verdict), csynth:**",
        "",
        *_table(ext, versions, False),
        "",
        "Extended, post-synthesis:",
        "",
        *_table(post_ext, versions, False),
        "",
        "Excluded model-level reports, by the first rule they fail: "
        + ", ".join(f"{code} {n}" for code, n in reasons.items())
        + ".",
    ]
    if r4out["errors"]:
        lines += [
            "",
            "rule4ml refused: "
            + "; ".join(f"{_short(str(k), args.data)}: {v}" for k, v in r4out["errors"].items()),
        ]
    lines += [
        "",
        f"Wall time: corpus read {read_s:.0f} s, rule4ml {r4_s:.0f} s (of which loading "
        f"its estimators {r4out.get('load_s', 0):.0f} s), ours {ours_s:.1f} s.",
    ]
    record(__file__, figs, "\n".join(lines), write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
