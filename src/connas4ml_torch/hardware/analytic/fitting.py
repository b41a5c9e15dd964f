"""Fitting plumbing of ``ResourceModel``: designs, source weights, network aggregates and the
held-out residuals that give the prediction intervals (leave one source out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from connas4ml_torch.hardware.analytic import design
from connas4ml_torch.hardware.analytic.correction import (
    DSP_LOGIT,
    TARGETS,
    dsp_logit_shift,
    fit_layers,
    fit_network,
    predict_layers,
    predict_totals,
)
from connas4ml_torch.hardware.analytic.layers import COMPONENTS
from connas4ml_torch.hardware.analytic.network import (
    array_registers,
    boundary_cycles,
    latency_contributions,
    network_glue,
)

__all__ = ["QGRID", "LayerData", "NetData", "layer_data", "net_data", "fit_params",
           "network_arrays", "loso_residuals", "source_weights", "interval_quantiles",
           "outward_bound", "bisect_shift", "dsp_logit_residual", "dsp_residual",
           "DSP_LOGIT_LIMIT", "DSP_ZERO"]

QGRID = np.round(np.linspace(0.01, 0.99, 99), 2)  # probabilities of the stored residual quantiles


@dataclass
class LayerData:
    """Designs and measured targets of training layers."""

    D: dict[str, np.ndarray]
    Y: dict[str, np.ndarray]
    groups: np.ndarray

    def subset(self, mask: np.ndarray) -> LayerData:
        return LayerData({k: v[mask] for k, v in self.D.items()},
                         {k: v[mask] for k, v in self.Y.items()}, self.groups[mask])


@dataclass
class NetData:
    """Complete projects: their layer frames and designs, and the measured totals."""

    frames: list[pd.DataFrame]
    designs: list[dict[str, np.ndarray]]
    Y: dict[str, np.ndarray]
    groups: np.ndarray
    info: list[dict[str, Any]] = field(default_factory=list)

    def subset(self, mask: np.ndarray) -> NetData:
        idx = np.flatnonzero(mask)
        return NetData([self.frames[i] for i in idx], [self.designs[i] for i in idx],
                       {k: v[mask] for k, v in self.Y.items()}, self.groups[mask],
                       [self.info[i] for i in idx] if self.info else [])


def source_weights(groups: np.ndarray) -> np.ndarray:
    """Every source the same total weight (a source with 9,000 rows counts as one with 3)."""
    g = pd.Series(np.asarray(groups, dtype=object))
    return (1.0 / g.map(g.value_counts())).to_numpy(float)


def layer_data(frame: pd.DataFrame, Y: pd.DataFrame, groups: np.ndarray) -> LayerData:
    D = design(frame)
    return LayerData(D, {t: pd.to_numeric(Y[t], errors="coerce").to_numpy(float) if t in Y
                         else np.full(len(frame), np.nan) for t in TARGETS}, np.asarray(groups))


def net_data(projects: list[dict[str, Any]]) -> NetData:
    frames = [p["frame"] for p in projects]
    return NetData(frames, [design(f) for f in frames],
                   {t: np.array([p["measured"][t] for p in projects], float) for t in TARGETS},
                   np.array([p["source_repo"] for p in projects], dtype=object), projects)


def _comps(D: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {t: D[f"A.{t}"] for t in COMPONENTS}


def layer_predictions(params: dict[str, np.ndarray], D: dict[str, np.ndarray],
                      dsp_logit: float = 0.0) -> dict[str, np.ndarray]:
    out = predict_layers(params, _comps(D), D["Z"], D["X"], D["cand"])
    out["DSP"] = np.minimum(dsp_logit_shift(out["DSP"], D["dsp_open"], dsp_logit), D["dsp_max"])
    return out


def network_arrays(params: dict[str, np.ndarray], frame: pd.DataFrame,
                   D: dict[str, np.ndarray], dsp_logit: float = 0.0
                   ) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, float]]:
    """(per-layer predictions with latency as network shares, aggregates S, glue components G)."""
    L = layer_predictions(params, D, dsp_logit)
    L["latency"] = latency_contributions(frame, L.pop("latency_raw"), L["II"])
    L["FF"] = L["FF"] + array_registers(frame)
    L["latency_boundary"] = boundary_cycles(frame)
    S = {t: float(L[t].sum()) for t in TARGETS if t != "II"}
    S["latency_unit"] = float(np.minimum(L["latency"], 1.0).sum())
    S["latency_boundary"] = float(L["latency_boundary"].sum())
    S["II"] = float(L["II"].max()) if len(L["II"]) else 1.0
    return L, S, network_glue(frame, L["II"])


def _aggregate(params: dict[str, np.ndarray], nd: NetData) -> tuple[dict, dict]:
    S_rows, G_rows = [], []
    for f, D in zip(nd.frames, nd.designs):
        _, S, G = network_arrays(params, f, D)
        S_rows.append(S)
        G_rows.append(G)
    S = {t: np.array([s[t] for s in S_rows], float) for t in (*TARGETS, "latency_unit", "latency_boundary")}
    keys = G_rows[0].keys() if G_rows else []
    G = {k: np.array([g[k] for g in G_rows], float) for k in keys}
    return S, G


def fit_params(ld: LayerData, nd: NetData | None, ridge: float, net_ridge: float,
               start: dict[str, np.ndarray] | None = None) -> tuple[dict, dict]:
    """Layer correction on ``ld``, then the model-level terms on ``nd`` (if any projects)."""
    from connas4ml_torch.hardware.analytic.correction import default_network_params

    p = fit_layers(_comps(ld.D), ld.D["Z"], ld.D["X"], ld.D["cand"], ld.Y,
                   source_weights(ld.groups), ridge, start)
    if nd is None or not nd.frames:
        return p, default_network_params()
    S, G = _aggregate(p, nd)
    return p, fit_network(S, G, nd.Y, source_weights(nd.groups), net_ridge)


DSP_LOGIT_LIMIT = 12.0  # a DSP share moved this far in logit space is all or nothing


# a report's DSP count is whole: 0 says the expectation was below half a slice, not that it was 0
DSP_ZERO = 0.5


def dsp_residual(y: np.ndarray | float, pred: np.ndarray | float) -> np.ndarray:
    """``log1p(y) - log1p(pred)`` of DSP counts, censored at the rounding: a measured 0 only says
    the expectation was below ``DSP_ZERO``, so it pulls a prediction down to there and no
    further (it was the -12 end of every shift: one 0-DSP report moved a calibration by all the
    shrinkage allowed; docs/hardware_model.md, section 7)."""
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    return np.where(y >= DSP_ZERO, np.log1p(y) - np.log1p(pred),
                    np.minimum(np.log1p(DSP_ZERO) - np.log1p(pred), 0.0))


def bisect_shift(resid, limit: float = DSP_LOGIT_LIMIT) -> float:
    """The largest shift in [-limit, limit] at which ``resid`` (non-increasing in the shift) is
    still >= 0: its root, or the nearer end when no shift reaches it (a measured DSP count beyond
    what the shares can give); 0 when no shift moves it (the shares hold no DSP candidates)."""
    lo, hi = -limit, limit
    r_lo, r_hi = resid(lo), resid(hi)
    if r_lo == r_hi:
        return 0.0
    if r_lo < 0.0:
        return lo
    if r_hi >= 0.0:
        return hi
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if resid(mid) >= 0.0 else (lo, mid)
    return 0.5 * (lo + hi)


def dsp_logit_residual(p: dict, q: dict, frame: pd.DataFrame, D: dict[str, np.ndarray],
                       y: float) -> float:
    """The logit shift of every layer's DSP share that makes a network's predicted DSP total
    its measured ``y``: the residual of the DSP binding, in the space where it is one number
    (a log-space residual cannot say "these products went to LUTs": docs/hardware_model.md,
    section 6)."""
    def resid(c: float) -> float:
        _, S, G = network_arrays(p, frame, D, c)
        tot = predict_totals(q, {k: np.array([v]) for k, v in S.items()},
                             {k: np.array([v]) for k, v in G.items()})[0]["DSP"][0]
        return float(dsp_residual(y, tot))
    return bisect_shift(resid)


def project_totals(p: dict, q: dict, nd: NetData) -> dict[str, np.ndarray]:
    if not nd.frames:
        return {t: np.zeros(0) for t in TARGETS}
    S, G = _aggregate(p, nd)
    return predict_totals(q, S, G)[0]


def loso_residuals(ld: LayerData, nd: NetData | None, ridge: float, net_ridge: float,
                   start: dict[str, np.ndarray] | None = None
                   ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, np.ndarray]]]:
    """``log((y+1)/(pred+1))`` of every layer and project, each predicted by a model fitted
    without its source (the honest spread of the model on a source it has not seen), and the
    source of each residual; for projects also the DSP binding's residual (``DSP_LOGIT``, the
    logit shift that matches the measured DSP total: ``dsp_logit_residual``)."""
    keys = (*TARGETS, DSP_LOGIT)
    out: dict[str, dict[str, list]] = {"layer": {t: [] for t in keys}, "model": {t: [] for t in keys}}
    src_of: dict[str, dict[str, list]] = {"layer": {t: [] for t in keys},
                                          "model": {t: [] for t in keys}}
    srcs = sorted(set(ld.groups) | (set(nd.groups) if nd is not None else set()))
    if len(srcs) < 2:
        empty = {lv: {t: np.zeros(0) for t in keys} for lv in out}
        return empty, {lv: {t: np.zeros(0, dtype=object) for t in keys} for lv in out}
    for s in srcs:
        tr = ld.groups != s
        ntr = nd.groups != s if nd is not None else None
        p, q = fit_params(ld.subset(tr), nd.subset(ntr) if nd is not None else None, ridge,
                          net_ridge, start)
        te = ld.subset(~tr)
        if len(te.groups):
            pred = layer_predictions(p, te.D)
            for t in TARGETS:
                y = te.Y[t]
                ok = np.isfinite(y) & (y >= 0) & ((y >= 1) if t in ("latency", "II") else True)
                out["layer"][t].append(np.log1p(y[ok]) - np.log1p(pred[t][ok]))
                src_of["layer"][t].append(np.full(int(ok.sum()), s, dtype=object))
        if nd is not None and (~ntr).any():
            nte = nd.subset(~ntr)
            tot = project_totals(p, q, nte)
            for t in TARGETS:
                y = nte.Y[t]
                ok = np.isfinite(y) & (y >= 0)
                out["model"][t].append(np.log1p(y[ok]) - np.log1p(tot[t][ok]))
                src_of["model"][t].append(np.full(int(ok.sum()), s, dtype=object))
            y = nte.Y["DSP"]
            idx = np.flatnonzero(np.isfinite(y) & (y >= 0))
            out["model"][DSP_LOGIT].append(np.array(
                [dsp_logit_residual(p, q, nte.frames[i], nte.designs[i], y[i]) for i in idx]))
            src_of["model"][DSP_LOGIT].append(np.full(idx.size, s, dtype=object))
    res = {lv: {t: (np.concatenate(v) if v else np.zeros(0)) for t, v in d.items()}
           for lv, d in out.items()}
    grp = {lv: {t: (np.concatenate(v) if v else np.zeros(0, dtype=object)) for t, v in d.items()}
           for lv, d in src_of.items()}
    return res, grp


def shrinkage(r: np.ndarray, g: np.ndarray) -> float:
    """Empirical-Bayes shrinkage of a per-source offset from held-out residuals: the within-
    source variance over the between-source variance of the source medians (how many reports
    of a new source it takes before its own offset beats the fitted model), both from median
    absolute deviations so that one odd report does not decide; clipped to [0.25, 8]."""
    if r.size < 4 or len(set(g)) < 3:
        return 1.0
    df = pd.DataFrame({"r": r, "g": g})

    def mad2(x: pd.Series) -> float:
        return float((1.4826 * np.median(np.abs(x - np.median(x)))) ** 2)

    sizes = df["g"].value_counts()
    multi = sizes[sizes > 1].index
    within = float(np.median([mad2(df.loc[df["g"] == s, "r"]) for s in multi])) if len(multi) else 0.0
    between = mad2(df.groupby("g")["r"].median()) - within / max(float(sizes.mean()), 1.0)
    return float(np.clip(within / max(between, 1e-3), 0.25, 8.0))


def outward_bound(v: np.ndarray, quantile: float | None) -> np.ndarray:
    """An interval bound of a count (LUT, DSP, cycles...) rounded away from the point: a lower
    bound of 0.02 DSP means 0, an upper bound of 12.3 cycles means 13 (the point is left as it
    is: it is an expectation, not a count)."""
    if quantile is None or quantile == 0.5:
        return v
    return np.floor(v + 1e-9) if quantile < 0.5 else np.ceil(v - 1e-9)


def interval_quantiles(r: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Held-out residual quantiles at ``QGRID``, every source weighing the same. With ``n``
    sources the levels are stretched away from the median by ``(n + 1) / n`` (the split-conformal
    finite-sample correction, sources being the exchangeable units): the empirical quantiles of
    ~20 held-out sources cover a new source less often than their nominal level."""
    if r.size == 0:
        return np.zeros(len(QGRID))
    w = source_weights(groups)
    n = len(set(groups.tolist()))
    o = np.argsort(r)
    cw = np.cumsum(w[o]) / w.sum()
    levels = np.clip(0.5 + (QGRID - 0.5) * (n + 1) / n, 0.0, 1.0)
    return np.interp(levels, cw - w[o] / (2 * w.sum()), r[o])
