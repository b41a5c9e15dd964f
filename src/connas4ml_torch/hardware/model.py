"""``ResourceModel``: a scikit-learn surrogate of hls4ml layer resources, fitted on real reports.

Physics first, trees for the rest. Per target (``TARGETS``) and in ``log1p`` space:

1. a physics prior ``p = coef . prior_basis(target)`` (features.PRIOR_TERMS: LUT multipliers
   ~ ``mults*b_w*b_in``, adder tree ~ ``mults*acc_bits``, DSP = DSP-mapped multiplications, BRAM =
   Resource-strategy weight words, latency ~ adder-tree depth + RF), whose few non-negative global
   coefficients are fitted by bounded least squares on ``log1p(p) - log1p(y)``;
2. per-category offsets (strategy, io type, layer kind, tool, DSP generation, part family) on the
   residual ``log1p(y) - log1p(p)``, by a non-negative ridge on (c, 1-c) pairs;
3. ``HistGradientBoostingRegressor`` with ``monotonic_cst`` on what is left (and
   ``loss="quantile"`` for prediction bounds).

Every prior term and every stage is monotone in the same directions, so predictions never shrink
when a layer or its bits grow, and resources never grow with the reuse factor (latency and II may).
Where the corpus is silent the trees are constant, so predictions scale as the prior does. Layer
predictions sum to a network prediction times a model-level factor (``total = a * sum``; latency
and II add a small non-negative glue term) calibrated on top-level reports.
"""

from __future__ import annotations

import math
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares, nnls
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from threadpoolctl import threadpool_limits

from connas4ml_torch.errors import OutOfDomainWarning  # noqa: F401 (re-exported)
from connas4ml_torch.hardware.features import (
    FAMILIES,
    FEATURE_DIRECTIONS,
    FEATURES,
    LATENCY_DROP,
    PRIOR_TERMS,
    _family,
    build_features,
    prior_basis,
    rows_to_specs_frame,
    specs_to_frame,
)
from connas4ml_torch.hardware.layerspec import LayerSpec

__all__ = ["TARGETS", "ResourceModel", "OutOfDomainWarning", "training_rows", "DEFAULT_MODEL_PATH"]

TARGETS = ("LUT", "FF", "BRAM_18K", "DSP", "latency_cycles", "II")
_TIME_TARGETS = ("latency_cycles", "II")
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "default_model" / "resource_model.skops"
_REPORT_Y = {"LUT": "LUT", "FF": "FF", "BRAM_18K": "BRAM_18K", "DSP": "DSP",
             "latency_cycles": "lat_worst", "II": "ii_max"}
_DEFAULT_CACHE: dict[str, ResourceModel] = {}


def training_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The layer rows of a :func:`read_reports` table that state a full LayerSpec configuration."""
    if "level" not in df.columns:
        raise ValueError("expected a read_reports() table (with a 'level' column)")
    lay = df[df["level"] == "layer"]
    need = ["layer_type", "n_in", "n_out", "weight_bits", "input_bits", "reuse_factor", "strategy",
            "io_type", "part", "tool"]
    ok = lay["layer_type"].isin(["Dense", "Conv1D", "Conv2D"])
    if "primary" in lay.columns:
        ok &= lay["primary"].fillna(True).astype(bool)
    for c in need:
        ok &= lay[c].notna() if c in lay.columns else False
    conv_ok = [
        lt == "Dense" or (isinstance(k, tuple) and isinstance(o, tuple) and len(k) == len(o) > 0)
        for lt, k, o in zip(lay["layer_type"], lay.get("kernel", [None] * len(lay)),
                            lay.get("out_size", [None] * len(lay)))
    ]
    return lay[ok & np.array(conv_ok, bool)]


_CAL_RANGE = (0.5, 2.0)  # model-level factor on the layer sum of a resource
_LINEAR_CATS = ("strategy_resource", "io_stream", "conv", "vitis", "dsp48e2")


def _linear_design(F: pd.DataFrame) -> np.ndarray:
    """Design of the offset stage: each binary category as the pair (c, 1-c) and each part family
    as (is, is not), so that non-negative coefficients give free per-category offsets; no size or
    bit slopes (those come from the physics prior), so extrapolation follows the prior."""
    cols = []
    for c in _LINEAR_CATS:
        v = F[c].to_numpy(float)
        cols += [v, 1.0 - v]
    fam = F["family_code"].to_numpy(float)
    for code in range(-1, len(FAMILIES)):
        v = (fam == code).astype(float)
        cols += [v, 1.0 - v]
    return np.column_stack(cols)


# lower bounds of prior coefficients (default 0): a pipelined layer takes at least one cycle
_PRIOR_LOWER = {"latency_cycles": {"1": 1.0}, "II": {"1": 1.0}}


def _fit_prior(B: np.ndarray, y: np.ndarray, w: np.ndarray, lower: np.ndarray | None = None) -> np.ndarray:
    """Coefficients ``c >= lower`` (default 0) of ``p = B @ c`` minimizing the weighted squared
    error of ``log1p(p)`` vs ``log1p(y)`` (started from NNLS on relative errors)."""
    lower = np.zeros(B.shape[1]) if lower is None else np.asarray(lower, float)
    sw = np.sqrt(w / np.maximum(y, 1.0))
    c0, _ = nnls(B * sw[:, None] / np.sqrt(np.maximum(y, 1.0))[:, None],
                 y * sw / np.sqrt(np.maximum(y, 1.0)))
    scale = np.maximum(np.abs(B).max(axis=0), 1e-12)
    zy, sq = np.log1p(y), np.sqrt(w)

    def res(x: np.ndarray) -> np.ndarray:
        return sq * (np.log1p(B @ (x / scale)) - zy)

    lo = lower * scale
    x0 = np.maximum(c0 * scale, lo + 1e-9)
    sol = least_squares(res, x0, bounds=(lo, np.inf), method="trf", x_scale="jac", max_nfev=2000)
    return np.maximum(sol.x / scale, lower)


def _constraints(target: str, feats: list[str]) -> list[int]:
    j = 1 if target in _TIME_TARGETS else 0
    return [FEATURE_DIRECTIONS[f][j] for f in feats]


class ResourceModel(RegressorMixin, BaseEstimator):
    """Per-layer hls4ml resource/latency surrogate (``fit``/``predict``/``score``, sklearn style).

    Hyperparameters: ``max_iter``, ``learning_rate``, ``max_leaf_nodes``, ``min_samples_leaf``,
    ``l2_regularization`` of the boosted trees; ``quantiles`` fitted for prediction bounds;
    ``balance_sources`` gives every report source equal total weight in the fit; ``ridge_alpha``
    regularizes the per-category offsets on top of the physics prior. Fitted: ``prior_coef_``
    (per target, the non-negative weights of ``features.PRIOR_TERMS``), ``linear_``, ``point_``,
    ``quantile_``, ``calibration_`` ((a, b): network = a * layer sum + b), ``domain_``.
    """

    def __init__(self, max_iter: int = 100, learning_rate: float = 0.1, max_leaf_nodes: int = 15,
                 min_samples_leaf: int = 5, l2_regularization: float = 1.0,
                 quantiles: tuple[float, ...] = (0.9,), balance_sources: bool = True,
                 ridge_alpha: float = 1.0, random_state: int = 0) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.quantiles = quantiles
        self.balance_sources = balance_sources
        self.ridge_alpha = ridge_alpha
        self.random_state = random_state

    # ------------------------------------------------------------------------------------------
    # fitting
    # ------------------------------------------------------------------------------------------
    def _xy(self, X: Any, y: Any) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, pd.DataFrame | None]:
        if isinstance(X, pd.DataFrame) and "level" in X.columns and y is None:
            rows = training_rows(X)
            if rows.empty:
                raise ValueError(
                    "no layer rows with a full configuration (layer_type, n_in, n_out, bits, reuse "
                    "factor, strategy, io_type, part, tool) in this report table; add "
                    "firmware/parameters.h + defines.h to the projects or fill the columns")
            specs = rows_to_specs_frame(rows)
            Y = pd.DataFrame({t: pd.to_numeric(rows[_REPORT_Y[t]], errors="coerce").to_numpy()
                              for t in TARGETS})
            groups = (rows["source_repo"] if "source_repo" in rows.columns else rows["source"])\
                .astype(str).to_numpy()
            models = X[X["level"] == "model"]
            return specs, Y, np.asarray(groups), (models, rows)
        if y is None:
            raise ValueError("fit(X, y): y (a DataFrame of TARGETS) is required unless X is a "
                             "read_reports() table")
        specs = specs_to_frame(X)
        Y = pd.DataFrame(y).reset_index(drop=True)
        missing = [t for t in TARGETS if t not in Y.columns]
        if len(Y.columns.intersection(TARGETS)) == 0:
            raise ValueError(f"y has none of the targets {TARGETS}; got {list(Y.columns)}")
        for t in missing:
            Y[t] = np.nan
        if len(Y) != len(specs):
            raise ValueError(f"X has {len(specs)} layers but y has {len(Y)} rows")
        return specs, Y[list(TARGETS)], np.zeros(len(specs)), None

    def fit(self, X: Any, y: Any = None, sample_weight: np.ndarray | None = None) -> ResourceModel:
        """Fit on a read_reports() table (y=None) or on LayerSpecs + a DataFrame of TARGETS."""
        # one OpenMP thread: report tables are small (10^3..10^4 rows), where OpenMP's start-up
        # per tree costs far more than it saves (measured 26 s vs 0.15 s for 30 trees, 2 cores)
        with threadpool_limits(limits=1, user_api="openmp"):
            return self._fit(X, y, sample_weight)

    def _fit(self, X: Any, y: Any, sample_weight: np.ndarray | None) -> ResourceModel:
        specs, Y, groups, extra = self._xy(X, y)
        F = build_features(specs)
        w = np.ones(len(F)) if sample_weight is None else np.asarray(sample_weight, float)
        if self.balance_sources and sample_weight is None:
            g = pd.Series(groups)
            w = (1.0 / g.map(g.value_counts())).to_numpy() * len(g) / max(g.nunique(), 1)
        self.prior_coef_: dict[str, np.ndarray] = {}
        self.linear_: dict[str, Ridge] = {}
        self.point_: dict[str, HistGradientBoostingRegressor] = {}
        self.quantile_: dict[str, dict[float, HistGradientBoostingRegressor]] = {}
        self.features_: dict[str, list[str]] = {}
        self.n_train_: dict[str, int] = {}
        for t in TARGETS:
            yt = Y[t].to_numpy(float)
            ok = np.isfinite(yt) & (yt >= 0)
            if ok.sum() < 5:
                continue
            feats = [f for f in FEATURES if not (t in _TIME_TARGETS and f in LATENCY_DROP)]
            cst = _constraints(t, feats)
            Xt = F.loc[ok, feats].to_numpy(float)
            z = np.log1p(yt[ok])
            lower = [_PRIOR_LOWER.get(t, {}).get(n, 0.0) for n in PRIOR_TERMS[t]]
            coef = _fit_prior(prior_basis(F.loc[ok], t), yt[ok], w[ok], np.array(lower))
            prior = np.log1p(prior_basis(F.loc[ok], t) @ coef)
            Xl = _linear_design(F.loc[ok])
            # ridge keeps the (c, 1-c) offset pairs from trading huge opposite coefficients
            lin = Ridge(alpha=self.ridge_alpha, positive=True).fit(Xl, z - prior, sample_weight=w[ok])
            resid = z - prior - lin.predict(Xl)
            kw = dict(max_iter=self.max_iter, learning_rate=self.learning_rate,
                      max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf,
                      l2_regularization=self.l2_regularization, monotonic_cst=cst,
                      random_state=self.random_state)
            point = HistGradientBoostingRegressor(**kw).fit(Xt, resid, sample_weight=w[ok])
            qs = {}
            for q in self.quantiles:
                qs[float(q)] = HistGradientBoostingRegressor(loss="quantile", quantile=float(q), **kw)\
                    .fit(Xt, resid, sample_weight=w[ok])
            self.prior_coef_[t] = coef
            self.linear_[t], self.point_[t], self.quantile_[t] = lin, point, qs
            self.features_[t] = feats
            self.n_train_[t] = int(ok.sum())
        if not self.point_:
            raise ValueError("fewer than 5 usable rows for every target; nothing to fit")
        self.domain_ = _domain(specs)
        self.calibration_ = {t: (1.0, 0.0) for t in TARGETS}
        if extra is not None:
            self._calibrate(*extra)
        self._warned_: set[str] = set()
        return self

    def _calibrate(self, models: pd.DataFrame, rows: pd.DataFrame) -> None:
        """Model-level term, fitted on top-level reports: resources ``total = a * sum`` (no
        intercept, so glue never dominates a small network; ``a`` = median ratio of report to layer
        sum, clipped to [0.5, 2]); latency ``sum + b`` and II ``max + b`` with ``b`` the median
        non-negative excess (pipeline glue, a few cycles)."""
        pairs: dict[str, list[tuple[float, float]]] = {t: [] for t in TARGETS}
        lay_by_src = dict(tuple(rows.groupby("source")))
        for _, m in models.iterrows():
            lay = lay_by_src.get(m["source"])
            if lay is None or lay.empty:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OutOfDomainWarning)
                pred = self._predict_frame(rows_to_specs_frame(lay), None)
            for t in TARGETS:
                v = pd.to_numeric(pd.Series([m.get(_REPORT_Y[t])]), errors="coerce").iloc[0]
                if t in self.point_ and np.isfinite(v):
                    s = float(pred[t].max() if t == "II" else pred[t].sum())
                    pairs[t].append((s, float(v)))
        self.n_calibration_ = {t: len(p) for t, p in pairs.items()}
        for t, p in pairs.items():
            if len(p) < 2:
                continue
            s, v = np.array(p).T
            if t in _TIME_TARGETS:
                self.calibration_[t] = (1.0, float(max(np.median(v - s), 0.0)))
                continue
            ok = (s > 0) & (v > 0)
            if ok.sum() >= 2:
                a = float(np.clip(np.median(v[ok] / s[ok]), _CAL_RANGE[0], _CAL_RANGE[1]))
                self.calibration_[t] = (a, 0.0)

    # ------------------------------------------------------------------------------------------
    # prediction
    # ------------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "point_"):
            raise RuntimeError("ResourceModel is not fitted: call fit() or ResourceModel.default()")

    def _predict_frame(self, specs: pd.DataFrame, quantile: float | None) -> pd.DataFrame:
        # one OpenMP thread: for cost-table sized inputs the tree walks are microseconds and
        # OpenMP start-up per tree dominates (5 s instead of 0.1 s for 5,000 layers on 2 cores)
        with threadpool_limits(limits=1, user_api="openmp"):
            return self._predict_frame_1(specs, quantile)

    def _predict_frame_1(self, specs: pd.DataFrame, quantile: float | None) -> pd.DataFrame:
        F = build_features(specs)
        out = {}
        for t in TARGETS:
            if t not in self.point_:
                out[t] = np.full(len(F), np.nan)
                continue
            feats = self.features_[t]
            Xt = F[feats].to_numpy(float)
            prior = np.log1p(prior_basis(F, t) @ self.prior_coef_[t])
            base = prior + self.linear_[t].predict(_linear_design(F))
            z = base + self.point_[t].predict(Xt)
            if quantile is not None:
                zq = base + self.quantile_[t][quantile].predict(Xt)
                z = np.maximum(z, zq) if quantile >= 0.5 else np.minimum(z, zq)
            out[t] = np.clip(np.expm1(z), 0.0, None)
        return pd.DataFrame(out, columns=list(TARGETS))

    def predict(self, X: Sequence[LayerSpec] | pd.DataFrame, quantile: float | None = None) -> pd.DataFrame:
        """Per-layer predictions (columns ``TARGETS``); ``quantile=0.9`` gives an upper bound."""
        self._check_fitted()
        if quantile is not None:
            q = float(quantile)
            fitted = sorted(next(iter(self.quantile_.values())).keys())
            if q not in fitted:
                raise ValueError(f"quantile {quantile} was not fitted; fitted quantiles: {fitted} "
                                 "(set ResourceModel(quantiles=...) and refit)")
            quantile = q
        specs = specs_to_frame(X)
        self._warn_domain(specs)
        return self._predict_frame(specs, quantile)

    def predict_network(self, specs: Sequence[LayerSpec], quantile: float | None = None) -> dict[str, float]:
        """Whole-network prediction: layer sum (II: max) times/plus the calibrated model term."""
        pred = self.predict(specs, quantile=quantile)
        out = {}
        for t in TARGETS:
            s = float(pred[t].max() if t == "II" else pred[t].sum())
            a, b = self.calibration_.get(t, (1.0, 0.0))
            out[t] = a * s + b
        return out

    def prior_terms(self) -> dict[str, dict[str, float]]:
        """The fitted physics prior: per target, ``{term: coefficient}`` (terms: PRIOR_TERMS)."""
        self._check_fitted()
        return {t: dict(zip(PRIOR_TERMS[t], map(float, c))) for t, c in self.prior_coef_.items()}

    def score(self, X: Any, y: Any = None, sample_weight: np.ndarray | None = None) -> float:
        """Mean R^2 over targets of log1p(prediction) vs log1p(truth) (scales differ by 1000x)."""
        specs, Y, _, _ = self._xy(X, y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OutOfDomainWarning)
            P = self._predict_frame(specs, None)
        scores = []
        for t in TARGETS:
            ok = np.isfinite(Y[t].to_numpy(float)) & np.isfinite(P[t].to_numpy(float))
            if ok.sum() >= 2:
                scores.append(r2_score(np.log1p(Y[t][ok]), np.log1p(P[t][ok])))
        if not scores:
            raise ValueError("no target has two or more rows to score")
        return float(np.mean(scores))

    # ------------------------------------------------------------------------------------------
    # domain
    # ------------------------------------------------------------------------------------------
    def in_domain(self, X: Sequence[LayerSpec] | pd.DataFrame) -> np.ndarray:
        """Boolean per layer: inside the fitted domain (categories seen, numbers within ranges)."""
        self._check_fitted()
        specs = specs_to_frame(X)
        d = self.domain_
        ok = specs["layer_type"].astype(str).isin(d["layer_types"]).to_numpy().copy()
        ok &= specs["strategy"].astype(str).str.capitalize().isin(d["strategies"]).to_numpy()
        ok &= specs["io_type"].astype(str).isin(d["io_types"]).to_numpy()
        ok &= specs["backend"].astype(str).isin(d["backends"]).to_numpy()
        ok &= np.array([_family(str(p))[0] in d["families"] for p in specs["part"].fillna("")])
        for col, (lo, hi) in d["ranges"].items():
            v = specs[col].astype(float).to_numpy()
            ok &= (v >= lo) & (v <= hi)
        return ok

    def _warn_domain(self, specs: pd.DataFrame) -> None:
        d = self.domain_
        reasons = []
        fams = {_family(str(p))[0] for p in specs["part"].fillna("").unique()}
        cats = {
            "layer_types": set(specs["layer_type"].astype(str)),
            "strategies": set(specs["strategy"].astype(str).str.capitalize()),
            "io_types": set(specs["io_type"].astype(str)),
            "backends": set(specs["backend"].astype(str)),
            "families": fams,
        }
        for key, vals in cats.items():
            extra = sorted(vals - set(d[key]))
            if extra:
                reasons.append(f"{key} {extra} not in the fitted {sorted(d[key])}")
        for col, (lo, hi) in d["ranges"].items():
            v = specs[col].astype(float) if col in specs else None
            if v is None or v.empty:
                continue
            if v.min() < lo or v.max() > hi:
                reasons.append(f"{col} outside the fitted range [{lo:g}, {hi:g}] "
                               f"(asked {v.min():g}..{v.max():g})")
        warned = getattr(self, "_warned_", set())
        for r in reasons:
            key = r.split(" (asked")[0]
            if key not in warned:
                warned.add(key)
                warnings.warn(f"ResourceModel: {r}; predictions there are extrapolations",
                              OutOfDomainWarning, stacklevel=3)
        self._warned_ = warned

    # ------------------------------------------------------------------------------------------
    # files
    # ------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model with ``skops.io`` (no pickle)."""
        import skops.io as sio

        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        warned, self._warned_ = self._warned_, set()
        try:
            sio.dump(self, path, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
        finally:
            self._warned_ = warned
        return path

    @classmethod
    def load(cls, path: str | Path) -> ResourceModel:
        """Read a model written by :meth:`save`; refuses files with types outside a trusted list."""
        import skops.io as sio

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ResourceModel file {path} does not exist")
        try:
            untrusted = sio.get_untrusted_types(file=path)
        except Exception as exc:  # skops raises zipfile/json errors on foreign files
            raise ValueError(f"{path}: not a skops ResourceModel file ({exc})") from exc
        bad = [t for t in untrusted if not _trusted_type(t)]
        if bad:
            raise ValueError(f"{path}: refuses to load types outside the trusted list: {bad}")
        obj = sio.load(path, trusted=list(untrusted))
        if not isinstance(obj, cls):
            raise ValueError(f"{path}: holds a {type(obj).__name__}, not a ResourceModel")
        if hasattr(obj, "point_") and not hasattr(obj, "prior_coef_"):
            raise ValueError(f"{path}: written by an older ResourceModel without the physics prior; "
                             "refit it (`connas4ml surrogate fit`)")
        obj._warned_ = set()
        return obj

    @classmethod
    def default(cls) -> ResourceModel:
        """The model shipped with the package (fitted on permissively licensed reports; cached)."""
        if "default" not in _DEFAULT_CACHE:
            if not DEFAULT_MODEL_PATH.is_file():
                raise FileNotFoundError(
                    f"default model {DEFAULT_MODEL_PATH} is missing; rebuild it with "
                    "`python -m connas4ml_torch.hardware.fit_default`")
            _DEFAULT_CACHE["default"] = cls.load(DEFAULT_MODEL_PATH)
        return _DEFAULT_CACHE["default"]


_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.")
_TRUSTED_EXACT = {"connas4ml_torch.hardware.model.ResourceModel"}


def _trusted_type(name: str) -> bool:
    return name in _TRUSTED_EXACT or name.startswith(_TRUSTED_PREFIXES)


def _domain(specs: pd.DataFrame) -> dict[str, Any]:
    fams = sorted({_family(str(p))[0] for p in specs["part"].fillna("").unique()})
    k = [math.prod(t) if isinstance(t, tuple) and t else 1 for t in specs["kernel"]]
    rng = {}
    for col in ("n_in", "n_out", "weight_bits", "input_bits", "reuse_factor"):
        v = specs[col].astype(float)
        rng[col] = (float(v.min()), float(v.max()))
    return {
        "layer_types": sorted(set(specs["layer_type"].astype(str))),
        "strategies": sorted(set(specs["strategy"].astype(str).str.capitalize())),
        "io_types": sorted(set(specs["io_type"].astype(str))),
        "backends": sorted(set(specs["backend"].astype(str))),
        "tool_versions": sorted({str(v) for v in specs["tool_version"] if v is not None}),
        "families": fams,
        "parts": sorted({str(p) for p in specs["part"]}),
        "ranges": rng,
        "kernel_size_max": float(max(k)) if k else 1.0,
        "n_rows": len(specs),
    }
