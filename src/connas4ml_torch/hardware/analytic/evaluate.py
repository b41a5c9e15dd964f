"""Report tables in, predictions vs measurements out: ``predict_projects``, ``score`` and the
few-shot calibration offsets of ``ResourceModel`` (kept here to keep ``model.py`` small)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from connas4ml_torch.errors import ConfigError, OutOfDomainWarning
from connas4ml_torch.hardware.analytic.correction import TARGETS
from connas4ml_torch.hardware.analytic.reports import project_layers, training_rows
from connas4ml_torch.hardware.features import SPEC_COLUMNS, specs_to_frame

__all__ = ["predict_projects", "score", "calibration_offsets", "layer_table"]


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
        from connas4ml_torch.hardware.model import _targets_frame

        frame = specs_to_frame(X)
        Y = _targets_frame(y, len(frame))
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


def calibration_offsets(model: Any, reports: pd.DataFrame,
                        shrinkage: float | None) -> tuple[dict[str, float], dict[str, Any]]:
    """Per-target log1p offsets from the user's reports (see ``ResourceModel.calibrate``)."""
    projects = [p for p in project_layers(reports) if p["complete"]]
    frame, Y = layer_table(reports)
    base = dict(model.calibration_) if hasattr(model, "calibration_") else {t: 0.0 for t in TARGETS}
    offs, used, counts = {}, {}, {}
    layer_pred = None
    if len(frame):
        layer_pred, _ = model._layers(frame, None)
    for t in TARGETS:
        res = []
        for p in projects:
            y = p["measured"][t]
            if not np.isfinite(y) or y < 0:
                continue
            f = specs_to_frame(p["specs"][[c for c in SPEC_COLUMNS if c in p["specs"]]])
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
        delta = float(np.mean(res)) * n_eff / (n_eff + s) if n else 0.0
        offs[t] = float(base.get(t, 0.0)) + delta
        used[t] = how if n else "none"
        counts[t] = n
    info = {"n_reports": len(projects) + int(len(frame) > 0 and not projects),
            "n_model_reports": len(projects), "n_layer_rows": int(len(frame)),
            "used": used, "rows": counts, "factor": {t: float(np.exp(v)) for t, v in offs.items()}}
    return offs, info
