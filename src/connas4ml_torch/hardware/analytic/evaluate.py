"""Report tables in, predictions vs measurements out: ``predict_projects``, ``score`` and the
few-shot calibration offsets of ``ResourceModel`` (kept here to keep ``model.py`` small)."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import numpy as np
import pandas as pd

from connas4ml_torch.errors import ConfigError, OutOfDomainWarning
from connas4ml_torch.hardware.analytic import design
from connas4ml_torch.hardware.analytic.correction import DSP_LOGIT, TARGETS
from connas4ml_torch.hardware.analytic.fitting import bisect_shift, dsp_logit_residual, dsp_residual
from connas4ml_torch.hardware.analytic.reports import project_layers, training_rows
from connas4ml_torch.hardware.features import SPEC_COLUMNS, specs_to_frame
from connas4ml_torch.hardware.resources import canonical_resource

__all__ = ["predict_projects", "score", "calibration_offsets", "layer_table", "conformal_residuals",
           "targets_frame"]


def layer_table(reports: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(LayerSpec frame, measured targets) of the configured layer rows of a report table."""
    rows = training_rows(reports)
    if rows.empty:
        return specs_to_frame(pd.DataFrame(columns=["layer_type", "n_in", "n_out"])), pd.DataFrame(
            columns=list(TARGETS))
    frame = specs_to_frame(rows[[c for c in SPEC_COLUMNS if c in rows]])
    Y = pd.DataFrame({t: rows["y_" + t].to_numpy(float) for t in TARGETS})
    Y["source_repo"] = rows["source_repo"].to_numpy()
    return frame, Y


def targets_frame(y: Any, n: int) -> pd.DataFrame:
    """``y`` as a DataFrame of ``TARGETS`` columns (resource names canonicalised), one row per layer."""
    Y = pd.DataFrame(y).reset_index(drop=True)
    ren = {}
    for c in Y.columns:
        with contextlib.suppress(ValueError):
            ren[c] = canonical_resource(c, allowed=TARGETS)
    Y = Y.rename(columns=ren)
    if not set(Y.columns) & set(TARGETS):
        raise ConfigError(f"y has none of the targets {TARGETS}; got {list(Y.columns)}")
    if len(Y) != n:
        raise ConfigError(f"X has {n} layers but y has {len(Y)} rows")
    return Y


def predict_projects(model: Any, reports: pd.DataFrame, interval: float = 0.9) -> pd.DataFrame:
    """See :meth:`ResourceModel.predict_projects`."""
    lo_q, hi_q = (1 - interval) / 2, 1 - (1 - interval) / 2
    out = []
    for p in project_layers(reports):
        rec: dict[str, Any] = {"source": p["source"], "report": p["report"],
                               "source_repo": p["source_repo"], "complete": p["complete"],
                               "n_layers": p["n_layers"], "n_unconfigured": p["n_unconfigured"],
                               "n_unmodeled": p["n_unmodeled"]}
        for t in TARGETS:
            rec[f"meas_{t}"] = p["measured"][t]
        if p["n_layers"] == 0:
            rec.update({f"{k}_{t}": np.nan for k in ("pred", "lo", "hi") for t in TARGETS})
            rec["n_domain_findings"] = 0
            out.append(rec)
            continue
        frame = specs_to_frame(p["specs"][[c for c in SPEC_COLUMNS if c in p["specs"]]])
        net = model._network(frame, None)
        lo = model._network(frame, lo_q)
        hi = model._network(frame, hi_q)
        for t in TARGETS:
            rec[f"pred_{t}"], rec[f"lo_{t}"], rec[f"hi_{t}"] = net[t], lo[t], hi[t]
        rec["n_domain_findings"] = len(net.domain)
        out.append(rec)
    return pd.DataFrame(out)


def score(model: Any, X: Any, y: Any = None) -> float:
    """Mean over targets of R^2 of log1p values (layer level)."""
    from sklearn.metrics import r2_score

    if isinstance(X, pd.DataFrame) and "level" in X.columns and y is None:
        frame, Y = layer_table(X)
    else:
        frame = specs_to_frame(X)
        Y = targets_frame(y, len(frame))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        P = model.predict(frame)
    vals = []
    for t in TARGETS:
        if t not in Y:
            continue
        yt, pt = pd.to_numeric(Y[t], errors="coerce").to_numpy(float), P[t].to_numpy(float)
        ok = np.isfinite(yt) & np.isfinite(pt) & (yt >= 0)
        if ok.sum() >= 2:
            vals.append(r2_score(np.log1p(yt[ok]), np.log1p(pt[ok])))
    if not vals:
        raise ConfigError("no target has two or more rows to score")
    return float(np.mean(vals))


def _n_reports(reports: pd.DataFrame) -> int:
    """Independent reports in a table: its projects, each row of a per-layer table (N-TORC)."""
    if "source" not in reports:
        return max(len(reports), 1)
    table = reports.get("format", pd.Series("", index=reports.index)).astype(str) == "csv"
    return max(int(reports.loc[~table, "source"].nunique()) + int(table.sum()), 1)


def _dsp_logit_fit(model: Any, projects: list[dict], frames: list[pd.DataFrame],
                   frame: pd.DataFrame, Y: pd.DataFrame, how: str) -> float:
    """The extra DSP logit shift that zeroes the mean log1p residual of the user's reports
    (bisection: the prediction grows monotonically with the shift)."""
    base = model._dsp_logit(None)
    if how == "model":
        ys = [(p["measured"]["DSP"], f) for p, f in zip(projects, frames)
              if np.isfinite(p["measured"]["DSP"]) and p["measured"]["DSP"] >= 0]

        def resid(c: float) -> float:
            return float(np.mean([dsp_residual(y, model._network(f, None, base + c)["DSP"])
                                  for y, f in ys]))
    else:
        yt = pd.to_numeric(Y["DSP"], errors="coerce").to_numpy(float)
        ok = np.isfinite(yt) & (yt >= 0)

        def resid(c: float) -> float:
            p = model._layers(frame, None, dsp_logit=base + c)[0]["DSP"].to_numpy(float)
            return float(np.mean(dsp_residual(yt[ok], p[ok])))
    return bisect_shift(resid)


def calibration_offsets(model: Any, reports: pd.DataFrame,
                        shrinkage: float | None) -> tuple[dict[str, float], dict[str, Any]]:
    """Per-target log1p offsets from the user's reports, and the DSP share's logit shift
    (``DSP_LOGIT``); see ``ResourceModel.calibrate``."""
    projects = [p for p in project_layers(reports) if p["complete"]]
    frame, Y = layer_table(reports)
    base = dict(model.calibration_) if hasattr(model, "calibration_") else {t: 0.0 for t in TARGETS}
    offs, used, counts = {}, {}, {}
    layer_pred = None
    if len(frame):
        layer_pred, _ = model._layers(frame, None)
    frames = [specs_to_frame(p["specs"][[c for c in SPEC_COLUMNS if c in p["specs"]]])
              for p in projects]
    for t in TARGETS:
        res = []
        for p, f in zip(projects, frames):
            y = p["measured"][t]
            if not np.isfinite(y) or y < 0:
                continue
            res.append(np.log1p(y) - np.log1p(model._network(f, None)[t]))
        how = "model"
        if not res and layer_pred is not None:
            yt = pd.to_numeric(Y[t], errors="coerce").to_numpy(float)
            ok = np.isfinite(yt) & (yt >= 0) & ((yt >= 1) if t in ("latency", "II") else True)
            res = list(np.log1p(yt[ok]) - np.log1p(layer_pred[t].to_numpy(float)[ok]))
            how = "layer"
        n = len(res)
        s = shrinkage if shrinkage is not None else float(getattr(model, "shrinkage_", {}).get(t, 1.0))
        if how == "layer":  # layers of one project are not independent reports
            n_eff = min(n, _n_reports(reports))
        else:
            n_eff = n
        used[t] = how if n else "none"
        counts[t] = n
        offs[t] = float(base.get(t, 0.0))
        if not n:
            continue
        if t == "DSP":  # the share moves in logit space: a closed binding can open again
            shift = _dsp_logit_fit(model, projects, frames, frame, Y, how)
            if shrinkage is None:  # the spread of held-out binding shifts, where fitted
                s = float(getattr(model, "shrinkage_", {}).get(DSP_LOGIT, s))
            offs[DSP_LOGIT] = float(base.get(DSP_LOGIT, 0.0)) + shift * n_eff / (n_eff + s)
        else:
            offs[t] += float(np.mean(res)) * n_eff / (n_eff + s)
    offs.setdefault(DSP_LOGIT, float(base.get(DSP_LOGIT, 0.0)))
    info = {"n_reports": len(projects) + int(len(frame) > 0 and not projects),
            "n_model_reports": len(projects), "n_layer_rows": int(len(frame)),
            "used": used, "rows": counts,
            "factor": {t: float(np.exp(offs[t])) for t in TARGETS},
            "dsp_logit_shift": offs[DSP_LOGIT]}
    return offs, info


def conformal_residuals(model: Any, reports: pd.DataFrame
                        ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Model-level residuals ``log1p(y) - log1p(pred)`` of the complete projects in ``reports``
    (and the DSP binding's logit residual under ``DSP_LOGIT``), with each one's source: the
    material of ``ResourceModel.conformalize``."""
    res: dict[str, list] = {t: [] for t in (*TARGETS, DSP_LOGIT)}
    grp: dict[str, list] = {t: [] for t in res}
    for p in project_layers(reports):
        if not p["complete"]:
            continue
        frame = specs_to_frame(p["specs"][[c for c in SPEC_COLUMNS if c in p["specs"]]])
        net = model._network(frame, None)
        for t in TARGETS:
            y = p["measured"][t]
            if np.isfinite(y) and y >= 0 and (y >= 1 or t not in ("latency", "II")):
                res[t].append(float(np.log1p(y) - np.log1p(net[t])))
                grp[t].append(p["source_repo"])
        y = p["measured"]["DSP"]
        if np.isfinite(y) and y >= 0:
            res[DSP_LOGIT].append(dsp_logit_residual(model.params_, model.net_params_, frame,
                                                     design(frame), y) - model._dsp_logit(None))
            grp[DSP_LOGIT].append(p["source_repo"])
    return ({t: np.asarray(v, float) for t, v in res.items()},
            {t: np.asarray(v, dtype=object) for t, v in grp.items()})
