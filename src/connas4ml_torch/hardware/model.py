"""``ResourceModel``: hls4ml's and Vivado's logic as the skeleton, a few learned parameters on top.

Prediction = analytic count (``analytic/layers.py``: what hls4ml's templates instantiate for the
layer's kind, strategy and io type, weight-aware where the weights are known) x learned
correction (``analytic/correction.py``: positive multipliers per component, category offsets,
a monotone DSP share; fitted in log space on real reports with every source weighted equally
and a ridge to the physics). Whole networks add model-level glue (``analytic/network.py``).
Impossible outputs are excluded by construction: resources >= 0, DSP <= the DSP slices the
layer's multiplications per initiation can use, latency and II >= 1 cycle. Prediction intervals
come from leave-one-source-out residuals. ``calibrate`` adapts the model to a few of the user's
own reports. Derivation and evidence: ``docs/hardware_model.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin

from connas4ml_torch.errors import ConfigError, Connas4mlError, OutOfDomainWarning
from connas4ml_torch.hardware.analytic import design
from connas4ml_torch.hardware.analytic.correction import DSP_LOGIT, TARGETS, chained, predict_totals
from connas4ml_torch.hardware.analytic.evaluate import targets_frame
from connas4ml_torch.hardware.analytic.fitting import (
    QGRID,
    fit_params,
    interval_quantiles,
    layer_data,
    layer_predictions,
    loso_residuals,
    net_data,
    network_arrays,
    outward_bound,
    shrinkage,
)
from connas4ml_torch.hardware.analytic.network import (
    array_registers,
    boundary_cycles,
    latency_contributions,
)
from connas4ml_torch.hardware.analytic.persist import DEFAULT_MODEL_PATH, load_model, save_model
from connas4ml_torch.hardware.analytic.reports import project_layers, training_rows
from connas4ml_torch.hardware.costmodel import (
    DomainFinding,
    NetworkPrediction,
    check_domain,
    fitted_domain,
    summarize_domain,
)
from connas4ml_torch.hardware.features import SPEC_COLUMNS, specs_to_frame
from connas4ml_torch.hardware.layerspec import LayerSpec

__all__ = ["TARGETS", "ResourceModel", "OutOfDomainWarning", "NotFittedModelError", "training_rows",
           "DEFAULT_MODEL_PATH"]


class NotFittedModelError(Connas4mlError, RuntimeError):
    """A ResourceModel was asked to predict before ``fit()`` (or use ``ResourceModel.default()``)."""


# call sites already warned about the domain: (file, line). Python's own once-per-location
# registry is reset whenever any library touches the warning filters (pandas does, inside
# every astype), so the library keeps its own; the model itself holds no warning state.
_WARNED_SITES: set[tuple[str, int]] = set()
_DOMAIN_MSG = ("ResourceModel: inputs outside the fitted domain; the predictions there are the "
               "analytic model's extrapolation (details: the result's domain findings)")


def _warn_domain(findings: Sequence[Any] = ()) -> None:
    """Warn (OutOfDomainWarning) once per call site of the public method, saying which features
    left the fitted domain and by how much (every finding is in the result's ``domain``)."""
    import sys

    frame = sys._getframe(2)  # the caller of predict/predict_network
    site = (frame.f_code.co_filename, frame.f_lineno)
    if site not in _WARNED_SITES:
        _WARNED_SITES.add(site)
        detail = summarize_domain(findings)
        msg = _DOMAIN_MSG + (f": {detail}" if detail else "")
        warnings.warn(msg, OutOfDomainWarning, stacklevel=3)


class ResourceModel(RegressorMixin, BaseEstimator):
    """hls4ml resource and latency model (``fit``/``predict``/``score``, scikit-learn style).

    Hyperparameters: ``ridge`` (pull of the layer correction to the physics), ``network_ridge``
    (same for the model-level terms), ``intervals`` (fit prediction intervals from held-out
    sources), ``max_rows_per_source`` (a fixed subsample of very large sources, for speed).
    Fitted: ``params_`` and ``net_params_`` (the correction), ``intervals_`` (held-out log
    residual quantiles per level and target at ``QGRID``; model-level DSP also as logit
    shifts), ``domain_``, ``n_train_``, ``calibration_`` (log factors set by :meth:`calibrate`,
    0 after ``fit``).
    """

    def __init__(self, ridge: float = 0.3, network_ridge: float = 1.0, intervals: bool = True,
                 max_rows_per_source: int = 600, random_state: int = 0) -> None:
        self.ridge = ridge
        self.network_ridge = network_ridge
        self.intervals = intervals
        self.max_rows_per_source = max_rows_per_source
        self.random_state = random_state

    # ------------------------------------------------------------------------------------------
    # fitting
    # ------------------------------------------------------------------------------------------
    def _data(self, X: Any, y: Any, groups: Any) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray,
                                                          list[dict[str, Any]]]:
        if isinstance(X, pd.DataFrame) and "level" in X.columns and y is None:
            rows = training_rows(X)
            projects = [p for p in project_layers(X) if p["complete"]]
            for p in projects:
                p["frame"] = specs_to_frame(p["specs"][[c for c in SPEC_COLUMNS if c in p["specs"]]])
            if rows.empty and not projects:
                raise ConfigError(
                    "no layer rows with a full configuration (sizes, bits, reuse factor, strategy, "
                    "io type, part) and no complete project in this report table; add "
                    "firmware/parameters.h to the projects or fill the columns")
            frame = specs_to_frame(rows[[c for c in SPEC_COLUMNS if c in rows]]) if len(rows) else \
                specs_to_frame(pd.DataFrame(columns=["layer_type", "n_in", "n_out"]))
            Y = pd.DataFrame({t: rows["y_" + t].to_numpy() for t in TARGETS}) if len(rows) else \
                pd.DataFrame(columns=list(TARGETS))
            g = rows["source_repo"].to_numpy() if len(rows) else np.array([], dtype=object)
            return frame, Y, g, projects
        if y is None:
            raise ConfigError("fit(X, y): y (a DataFrame of TARGETS) is required unless X is a "
                             "read_reports() table")
        frame = specs_to_frame(X)
        Y = targets_frame(y, len(frame))
        g = np.zeros(len(frame), dtype=object) if groups is None else np.asarray(groups, dtype=object)
        return frame, Y, g, []

    def _subsample(self, frame: pd.DataFrame, Y: pd.DataFrame, g: np.ndarray):
        keep = np.ones(len(g), bool)
        for s in pd.unique(g):
            idx = np.flatnonzero(g == s)
            if len(idx) > self.max_rows_per_source:
                rng = np.random.default_rng(self.random_state)
                drop = np.setdiff1d(idx, rng.choice(idx, self.max_rows_per_source, replace=False))
                keep[drop] = False
        return frame[keep].reset_index(drop=True), Y[keep].reset_index(drop=True), g[keep]

    def fit(self, X: Any, y: Any = None, groups: Any = None) -> ResourceModel:
        """Fit on a ``read_reports()`` table (``y=None``: its configured layer rows and complete
        projects), or on LayerSpecs + a DataFrame of ``TARGETS`` (``groups``: source per row)."""
        frame, Y, g, projects = self._data(X, y, groups)
        frame, Y, g = self._subsample(frame, Y, g)
        ld = layer_data(frame, Y, g)
        nd = net_data(projects) if projects else None
        self.params_, self.net_params_ = fit_params(ld, nd, self.ridge, self.network_ridge)
        self.domain_ = fitted_domain(frame if len(frame) else projects[0]["frame"])
        self.n_train_ = {"layer_rows": int(len(frame)), "projects": len(projects),
                         "sources": sorted(map(str, set(g) | {p["source_repo"] for p in projects}))}
        self.intervals_ = {lv: {t: np.zeros(len(QGRID)) for t in TARGETS} for lv in ("layer", "model")}
        self.interval_counts_ = {lv: {t: 0 for t in TARGETS} for lv in ("layer", "model")}
        self.shrinkage_ = {t: 1.0 for t in TARGETS}
        if self.intervals:
            res, grp = loso_residuals(ld, nd, self.ridge, self.network_ridge, self.params_)
            for t in TARGETS:  # layer quantiles; the model level falls back to them
                r, g_ = res["layer"][t], grp["layer"][t]
                self.intervals_["layer"][t] = interval_quantiles(r, g_)
                self.interval_counts_["layer"][t] = int(r.size)
                self.intervals_["model"][t] = self.intervals_["layer"][t]
                self.interval_counts_["model"][t] = int(res["model"][t].size)
                self.shrinkage_[t] = shrinkage(r, g_)
            self._model_bounds(res["model"], grp["model"])
        self.calibration_ = {t: 0.0 for t in TARGETS}
        self.calibration_info_: dict[str, Any] = {"n_reports": 0}
        return self

    # ------------------------------------------------------------------------------------------
    # prediction (pure: nothing on self changes)
    # ------------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedModelError("ResourceModel is not fitted: call fit() or ResourceModel.default()")

    def _shift(self, level: str, quantile: float | None) -> dict[str, float]:
        """Log1p shift per target: calibration plus the residual quantile (0 for the point)."""
        out = {t: float(self.calibration_.get(t, 0.0)) for t in TARGETS}
        if quantile is not None:
            q = float(quantile)
            if not 0.0 < q < 1.0:
                raise ConfigError(f"quantile must be in (0, 1), got {quantile}")
            for t in TARGETS:
                out[t] += float(np.interp(q, QGRID, self.intervals_[level][t]))
        return out

    @staticmethod
    def _apply(v: np.ndarray, shift: float, floor: float = 0.0) -> np.ndarray:
        return np.maximum(np.expm1(np.log1p(np.maximum(v, 0.0)) + shift), floor)

    def _dsp_logit(self, override: float | None) -> float:
        """The few-shot DSP calibration (a logit shift of the DSP share; 0 after ``fit``)."""
        return float(self.calibration_.get(DSP_LOGIT, 0.0)) if override is None else override

    def _layers(self, frame: pd.DataFrame, quantile: float | None, level: str = "layer",
                dsp_logit: float | None = None, shares: bool = False):
        D = design(frame)
        pred = layer_predictions(self.params_, D, self._dsp_logit(dsp_logit))
        if shares:  # the layer inside a network: its pipeline share, chained with the others
            pred["latency"] = chained(self.net_params_, latency_contributions(
                frame, pred["latency_raw"], pred["II"]), boundary_cycles(frame))
            pred["FF"] = pred["FF"] + array_registers(frame)
        sh = self._shift(level, quantile)
        out = {}
        for t in TARGETS:
            low = 1.0 if t == "II" or (t == "latency" and not shares) else 0.0
            out[t] = self._apply(pred[t], sh[t], low)
        out["DSP"] = np.minimum(out["DSP"], D["dsp_max"])
        if not shares:  # a layer's own bounds are counts; shares are parts of a network's
            out = {t: np.maximum(outward_bound(v, quantile), 1.0 if t == "II" or t == "latency" else 0.0)
                   for t, v in out.items()}
        return pd.DataFrame(out, columns=list(TARGETS)), D

    def predict(self, X: Sequence[LayerSpec] | pd.DataFrame, quantile: float | None = None) -> pd.DataFrame:
        """Per-layer predictions (columns ``TARGETS``); ``quantile=0.9`` gives the 90% upper
        bound from held-out residuals. ``.attrs["domain"]``: the domain findings."""
        self._check_fitted()
        frame = specs_to_frame(X)
        df, _ = self._layers(frame, quantile)
        findings = check_domain(frame, self.domain_)
        df.attrs["domain"] = findings
        if findings:
            _warn_domain(findings)
        return df

    def network_shares(self, X: Sequence[LayerSpec] | pd.DataFrame,
                       quantile: float | None = None) -> pd.DataFrame:
        """What each layer adds to a network's totals before the model-level scale and glue:
        ``predict()``'s values, except latency, which is the layer's share of the network's
        pipeline (below one cycle for a combinational layer that the top pipeline chains with
        its neighbours; see docs/hardware_model.md, section 3). The search's cost tables use
        these, so that tables plus the network overhead reproduce ``predict_network``. With
        ``quantile`` the shares carry the network-level bound's factor (a budget is a network's,
        and so is the spread that matters for its safety margin)."""
        self._check_fitted()
        frame = specs_to_frame(X)
        df, _ = self._layers(frame, quantile, level="model", shares=True)
        df.attrs["domain"] = check_domain(frame, self.domain_)
        return df

    def _network(self, frame: pd.DataFrame, quantile: float | None,
                 dsp_logit: float | None = None) -> NetworkPrediction:
        D = design(frame)
        L, S, G = network_arrays(self.params_, frame, D, self._dsp_logit(dsp_logit))
        S_arr = {t: np.array([v]) for t, v in S.items()}
        tot, glue = predict_totals(self.net_params_, S_arr, {k: np.array([v]) for k, v in G.items()})
        sh = self._shift("model", quantile)
        rows = {}
        for t in TARGETS:
            scale = 1.0 if t in ("DSP", "II") else float(np.exp(self.net_params_[f"net.{t}.tau"][0]))
            total = float(tot[t][0])
            # a bound below log1p = 0 is a count below 0: it is 0
            factor = float(max(np.expm1(np.log1p(total) + sh[t]), 0.0) / total) if total > 0 else 1.0
            lay = chained(self.net_params_, L[t], L["latency_boundary"]) if t == "latency" else L[t]
            rows[t] = np.append(lay * scale, glue[t][0] if t != "II" else 0.0) * factor
        if quantile is not None and DSP_LOGIT in self.intervals_["model"]:
            # the wider of two held-out DSP bounds: the count's factor (above) and the binding's
            # logit shift, which alone reaches "all in LUTs" (docs/hardware_model.md, section 6)
            shift = self._dsp_logit(dsp_logit) + np.interp(quantile, QGRID, self.intervals_["model"][DSP_LOGIT])
            moved = np.append(layer_predictions(self.params_, D, float(shift))["DSP"], rows["DSP"][-1])
            if (moved.sum() < rows["DSP"].sum()) == (quantile < 0.5):
                rows["DSP"] = moved
        rows["DSP"][:-1] = np.minimum(rows["DSP"][:-1], D["dsp_max"])
        br = pd.DataFrame(rows, columns=list(TARGETS))
        br.insert(0, "layer_type", list(frame["layer_type"]) + ["glue"])
        # a network takes at least one cycle: what a chain of combinational layers lacks is the
        # glue's (its I/O), so that the breakdown still adds up to the total
        br.loc[br.index[-1], "latency"] += max(1.0 - float(br["latency"].sum()), 0.0)
        totals = {t: float(br[t].sum()) for t in TARGETS}
        totals["II"] = float(max(br["II"].max(), 1.0))
        if quantile is not None:  # bounds of counts, rounded outward; the rows scale along
            for t in TARGETS:
                v = max(float(outward_bound(np.array(totals[t]), quantile)),
                        1.0 if t in ("II", "latency") else 0.0)
                if t == "DSP":  # never above what the multiplications can use
                    v = min(v, max(totals[t], float(D["dsp_max"].sum() + br["DSP"].iat[-1])))
                if t != "II" and totals[t] > 0:
                    br[t] = br[t] * (v / totals[t])
                totals[t] = v
        return NetworkPrediction(totals, br, check_domain(frame, self.domain_), quantile)

    def predict_network(self, specs: Sequence[LayerSpec] | pd.DataFrame,
                        quantile: float | None = None) -> NetworkPrediction:
        """Whole-network prediction: a mapping of totals (layers + activations/tables + glue),
        with ``.layers`` (the breakdown that adds up) and ``.domain`` (findings)."""
        self._check_fitted()
        frame = specs_to_frame(specs)
        if frame.empty:
            raise ConfigError("predict_network needs at least one layer")
        net = self._network(frame, quantile)
        if net.domain:
            _warn_domain(net.domain)
        return net

    def predict_projects(self, reports: pd.DataFrame, interval: float = 0.9) -> pd.DataFrame:
        """One row per model-level report of a ``read_reports()`` table: predicted and measured
        totals (``pred_<T>``, ``meas_<T>``), the ``interval`` bounds (``lo_<T>``, ``hi_<T>``),
        whether every layer could be configured (``complete``) and the domain findings count."""
        from connas4ml_torch.hardware.analytic.evaluate import predict_projects

        self._check_fitted()
        return predict_projects(self, reports, interval)

    # ------------------------------------------------------------------------------------------
    # scoring and few-shot calibration
    # ------------------------------------------------------------------------------------------
    def score(self, X: Any, y: Any = None, sample_weight: np.ndarray | None = None) -> float:
        """Mean R^2 over targets of log1p(prediction) vs log1p(truth) at layer level."""
        from connas4ml_torch.hardware.analytic.evaluate import score

        self._check_fitted()
        return score(self, X, y)

    def calibrate(self, reports: pd.DataFrame, shrinkage: float | None = None) -> ResourceModel:
        """Adapt to a few (1-5) of the user's own reports (their tool, part, strategy): per target,
        the mean log ratio of measured to predicted over the reports' complete projects (model
        level) or, where a target has none, over their configured layer rows, shrunk by
        ``n / (n + shrinkage)`` (default: ``shrinkage_``, fitted from how much sources differ
        against how much one source's reports scatter). DSP moves instead by one shift of every
        layer's DSP share in logit space (``calibration_["DSP_logit"]``), so that a binding the
        analytic model closed can open for the user's tool. Sets ``calibration_`` and
        ``calibration_info_`` (how many reports and rows were used for what); returns ``self``."""
        from connas4ml_torch.hardware.analytic.evaluate import calibration_offsets

        self._check_fitted()
        offs, info = calibration_offsets(self, reports, shrinkage)
        self.calibration_ = offs
        self.calibration_info_ = info
        return self

    def conformalize(self, reports: pd.DataFrame) -> ResourceModel:
        """Model-level prediction intervals (and the few-shot shrinkage) from complete projects
        the model was NOT fitted on (split conformal, sources as the units): the shipped default
        rests on two complete projects of its own, so its network bounds come from the other
        groups' projects. Targets with fewer than five such projects keep their intervals;
        ``conformal_counts_`` says how many each target had."""
        from connas4ml_torch.hardware.analytic.evaluate import conformal_residuals

        self._check_fitted()
        res, grp = conformal_residuals(self, reports)
        self._model_bounds(res, grp)
        self.conformal_counts_ = {t: int(r.size) for t, r in res.items()}
        return self

    def _model_bounds(self, res: dict[str, np.ndarray], grp: dict[str, np.ndarray]) -> None:
        """Model-level quantiles from held-out network residuals (>= 5 of a target; the DSP
        binding's logit shifts under ``DSP_LOGIT``, docs/hardware_model.md section 6) and the
        few-shot shrinkage (>= 8)."""
        for t, r in res.items():
            if r.size >= 5:
                self.intervals_["model"][t] = interval_quantiles(r, grp[t])
                self.interval_counts_["model"][t] = int(r.size)
            if r.size >= 8:
                self.shrinkage_[t] = shrinkage(r, grp[t])

    # ------------------------------------------------------------------------------------------
    # files
    # ------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model with ``skops.io`` (no pickle; plain numbers, strings and arrays)."""
        self._check_fitted()
        return save_model(self, path)

    @classmethod
    def load(cls, path: str | Path) -> ResourceModel:
        """Read a model written by :meth:`save`; refuses (``UnsafeFileError``) any file that
        names a type outside the exact list the library writes."""
        return load_model(cls, path)

    @classmethod
    def default(cls) -> ResourceModel:
        """A fresh copy of the model shipped with the package (fitted on permissively licensed
        reports; see ``default_model/MODEL_CARD.md``)."""
        if not DEFAULT_MODEL_PATH.is_file():
            raise FileNotFoundError(
                f"default model {DEFAULT_MODEL_PATH} is missing; rebuild it with "
                "`python -m connas4ml_torch.hardware.fit_default`")
        return cls.load(DEFAULT_MODEL_PATH)

    def domain_findings(self, X: Sequence[LayerSpec] | pd.DataFrame) -> tuple[DomainFinding, ...]:
        """The domain findings of a set of layers, without predicting."""
        self._check_fitted()
        return check_domain(specs_to_frame(X), self.domain_)

    def in_domain(self, X: Sequence[LayerSpec] | pd.DataFrame) -> np.ndarray:
        """Boolean per layer: no domain finding for it."""
        frame = specs_to_frame(X)
        bad = {f.layer for f in self.domain_findings(frame)}
        return np.array([i not in bad for i in range(len(frame))])
