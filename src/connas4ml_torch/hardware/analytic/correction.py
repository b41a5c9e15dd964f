"""The learned correction on top of the analytic counts: few parameters, monotone by construction.

Per resource ``r`` and layer ``i`` (``a_ik``: analytic components of ``layers.COMPONENTS[r]``,
``z_i``: category indicators of ``features.OFFSETS``)::

    LUT, FF, BRAM_18K, latency, II:  y_ir = (sum_k exp(u_rk) a_ik) * exp(theta_r . z_i)
    DSP:                             y_i  = dsp_cand_i * sigmoid(alpha + beta . x_i + theta . z_i)

with ``beta >= 0`` (``x``: narrow/wide operand bits, constant weights' CSD digits). The
multipliers ``exp(u)`` are positive and the offsets do not depend on sizes or bits, so the
prediction inherits the counts' monotonicity; the DSP share is below one, so DSPs never exceed the
DSP slices the multiplications could use. Parameters are fitted in ``log1p`` space with a robust
loss, every report source weighted equally, and a ridge pulling each parameter to its physical
default (``u = 0``: the count as derived; ``theta = 0``), so where data is thin the physics
carries the prediction. The model level adds ``exp(tau_r) * sum(layers) + glue`` (``network.GLUE``).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from connas4ml_torch.hardware.analytic.layers import COMPONENTS, DEPTH_SCALED
from connas4ml_torch.hardware.analytic.network import GLUE
from connas4ml_torch.hardware.features import OFFSETS

__all__ = ["TARGETS", "AREA_SUM", "GLUE_SCALE", "default_params", "predict_layers", "dsp_logit_shift",
           "DSP_LOGIT",
           "fit_layers", "fit_network", "predict_totals", "default_network_params"]

TARGETS = ("LUT", "FF", "BRAM_18K", "DSP", "latency", "II")
DSP_LOGIT = "DSP_logit"  # calibration_ key of the few-shot DSP share shift (``dsp_logit_shift``)
AREA_SUM = ("LUT", "FF", "BRAM_18K", "DSP", "latency")  # summed over layers (II: max)
# physical scale of each glue component (its count times this is the default glue). FF: hls4ml's
# own test reports of one-layer io_parallel designs (a ReLU alone: 18 FF, Vivado and Vitis)
# bound the control and interface registers; the model-level fit barely moves these priors
GLUE_SCALE = {"glue_layers": {"LUT": 40.0, "FF": 6.0},
              "glue_one": {"LUT": 200.0, "FF": 12.0}, "glue_fifo_lut": {"LUT": 1.0},
              "glue_fifo_ff": {"FF": 1.0}, "glue_fifo_bram": {"BRAM_18K": 1.0},
              "glue_stream_ii": {"latency": 1.0}}
# DSP share prior: half the products on DSPs where a fabric product would cost ~50 LUTs
_DSP_ALPHA0, _DSP_BETA0 = -5.0, np.array([0.0, 0.0, 1.0])
_LOSS = dict(loss="soft_l1", f_scale=0.5, method="trf", max_nfev=400, x_scale=1.0)
# the model level has a handful of projects per source, and some carry what no layer model
# explains (an AXI wrapper's registers, a 2048-lane registered activation): a redescending loss
# lets them stop pulling the scale of everyone else's totals (leave-one-source-out model FF:
# soft_l1 32% median, cauchy 21%; docs/hardware_model.md, section 5)
_NET_LOSS = dict(_LOSS, loss="cauchy", f_scale=0.3)
# prior delay (ns) of a layer hand-over inside an io_parallel network (``network.boundary_cycles``);
# the corpus barely pins it beside ``s`` and ``tau`` (all sources fitted: 1.0 ns from a 1 ns prior,
# 2.4 from 2.5), and leave one source out 1 ns is as good as 2.5 (latency 15% / 16% pooled)
BOUNDARY_NS = 1.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def default_params(n_offsets: int) -> dict[str, np.ndarray]:
    """The physics-only correction: every component at its derived weight, no offsets."""
    p: dict[str, np.ndarray] = {}
    for t, comps in COMPONENTS.items():
        p[f"{t}.u"] = np.zeros(len(comps))
        p[f"{t}.theta"] = np.zeros(n_offsets)
    p["DSP.alpha"] = np.array([_DSP_ALPHA0])
    p["DSP.beta"] = _DSP_BETA0.copy()
    p["DSP.theta"] = np.zeros(n_offsets)
    return p


def _resource(t: str, p: dict[str, np.ndarray], A: np.ndarray, Z: np.ndarray) -> np.ndarray:
    return (A @ np.exp(p[f"{t}.u"])) * np.exp(Z @ p[f"{t}.theta"])


def _dsp(p: dict[str, np.ndarray], X: np.ndarray, Z: np.ndarray, cand: np.ndarray) -> np.ndarray:
    eta = p["DSP.alpha"][0] + X @ p["DSP.beta"] + Z @ p["DSP.theta"]
    return cand * _sigmoid(eta)


def dsp_logit_shift(dsp: np.ndarray, open_: np.ndarray, shift: float) -> np.ndarray:
    """Few-shot DSP calibration: each layer's share of its ungated DSP candidates ``open_``
    moved by ``shift`` in logit space. A share the analytic binding closed can open again (a
    user's tool that puts narrow constants on DSPs), and it stays below the candidates."""
    if shift == 0.0:
        return dsp
    ok = open_ > 0
    p = np.clip(np.where(ok, dsp / np.where(ok, open_, 1.0), 0.5), 1e-9, 1.0 - 1e-9)
    return np.where(ok, open_ * _sigmoid(np.log(p) - np.log1p(-p) + shift), dsp)


_FIT_ORDER = ("latency", "II", "LUT", "BRAM_18K", "FF")
# offsets a target does not get: a 7-series part is slower logic, which deepens the pipeline
# (``lat_depth_7s`` learns by how much) but does not add loop iterations
_NO_OFFSET = {"latency": ("dsp48e1",), "II": ("dsp48e1",)}
_DEPTH_COLS = [COMPONENTS["latency"].index(c) for c in ("lat_depth", "lat_depth_7s")]


def depth_cycles(p: dict[str, np.ndarray], comps: dict[str, np.ndarray], Z: np.ndarray) -> np.ndarray:
    """The learned pipeline depth (cycles) of each layer: the latency model's depth term."""
    a = comps["latency"][:, _DEPTH_COLS] @ np.exp(p["latency.u"][_DEPTH_COLS])
    return a * np.exp(Z @ p["latency.theta"])


def ff_matrix(A: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """FF components with the depth-scaled ones multiplied by min(D, 1) or D (registers exist
    only where the pipeline has stages; one cut per stage)."""
    A = A.copy()
    for j, c in enumerate(COMPONENTS["FF"]):
        how = DEPTH_SCALED.get(c)
        if how == "min1":
            A[:, j] *= np.minimum(depth, 1.0)
        elif how == "linear":
            A[:, j] *= depth
        elif how == "excess":  # a path shorter than the clock needs no cut: ceil(D) - 1 cuts
            A[:, j] *= np.maximum(depth - 1.0, 0.0)
    return A


def predict_layers(p: dict[str, np.ndarray], comps: dict[str, np.ndarray], Z: np.ndarray,
                   X: np.ndarray, cand: np.ndarray) -> dict[str, np.ndarray]:
    """Per-layer predictions of every target (latency and II at least one cycle)."""
    comps = dict(comps)
    comps["FF"] = ff_matrix(comps["FF"], depth_cycles(p, comps, Z))
    out = {t: _resource(t, p, comps[t], Z) for t in COMPONENTS}
    out["DSP"] = _dsp(p, X, Z, cand)
    # inside a network a layer adds its unfloored latency, chained with its neighbours (see
    # ``chained``); synthesized alone it takes at least one cycle
    out["latency_raw"] = out["latency"].copy()
    out["latency"] = np.maximum(out["latency"], 1.0)
    out["II"] = np.maximum(out["II"], 1.0)
    return out


def _solve(resid, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray,
           loss: dict | None = None) -> np.ndarray:
    x0 = np.clip(x0, lower + 1e-9, upper - 1e-9)
    sol = least_squares(resid, x0, bounds=(lower, upper), **(loss or _LOSS))
    return sol.x


def fit_layers(comps: dict[str, np.ndarray], Z: np.ndarray, X: np.ndarray, cand: np.ndarray,
               Y: dict[str, np.ndarray], w: np.ndarray, ridge: float,
               start: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Fit the layer-level correction (see the module docstring); targets with no finite rows
    keep the physical defaults."""
    nz = Z.shape[1]
    p = default_params(nz)
    start = start or p
    sq_ridge = np.sqrt(ridge)
    comps = dict(comps)
    for t in _FIT_ORDER:
        if t == "FF":
            comps["FF"] = ff_matrix(comps["FF"], depth_cycles(p, comps, Z))
        y = Y[t]
        ok = np.isfinite(y) & (y >= 0) & np.isfinite(comps[t]).all(axis=1)
        if t in ("latency", "II"):
            ok &= y >= 1  # inlined functions report 0 cycles: no information on their depth
        if not ok.any():
            continue
        A, Zt, zy, sw = comps[t][ok], Z[ok], np.log1p(y[ok]), np.sqrt(w[ok])
        k = A.shape[1]
        floor = 1.0 if t in ("latency", "II") else 0.0

        def resid(v: np.ndarray, A=A, Zt=Zt, zy=zy, sw=sw, k=k, floor=floor) -> np.ndarray:
            pred = np.maximum((A @ np.exp(v[:k])) * np.exp(Zt @ v[k:]), floor)
            return np.concatenate([sw * (np.log1p(pred) - zy), sq_ridge * v])

        x0 = np.concatenate([start[f"{t}.u"], start[f"{t}.theta"]])
        lim = np.full(k + nz, 6.0)
        for name in _NO_OFFSET.get(t, ()):  # held at 0 (the solver needs a sliver of room)
            if name in OFFSETS and nz == len(OFFSETS):
                lim[k + OFFSETS.index(name)] = 1e-6
        v = _solve(resid, x0, -lim, lim)
        p[f"{t}.u"], p[f"{t}.theta"] = v[:k], v[k:]
    y = Y["DSP"]
    ok = np.isfinite(y) & (y >= 0)
    if ok.any():
        Xd, Zd, cd, zy, sw = X[ok], Z[ok], cand[ok], np.log1p(y[ok]), np.sqrt(w[ok])
        prior = np.concatenate([[_DSP_ALPHA0], _DSP_BETA0, np.zeros(nz)])
        scale = np.concatenate([[0.3], [1.0, 1.0, 1.0], np.ones(nz)])

        def resid_d(v: np.ndarray) -> np.ndarray:
            eta = v[0] + Xd @ v[1:4] + Zd @ v[4:]
            pred = cd * _sigmoid(eta)
            return np.concatenate([sw * (np.log1p(pred) - zy), sq_ridge * scale * (v - prior)])

        x0 = np.concatenate([start["DSP.alpha"], start["DSP.beta"], start["DSP.theta"]])
        lo = np.concatenate([[-60.0], [0.0, 0.0, 0.0], np.full(nz, -8.0)])
        hi = np.concatenate([[20.0], [5.0, 5.0, 5.0], np.full(nz, 8.0)])
        v = _solve(resid_d, x0, lo, hi)
        p["DSP.alpha"], p["DSP.beta"], p["DSP.theta"] = v[:1], v[1:4], v[4:]
    return p


# ---- model level ------------------------------------------------------------------------------
def default_network_params() -> dict[str, np.ndarray]:
    """Model level at its physical default: totals = layer sums + the derived glue. Latency
    also has ``chain`` = log(s): in a network each layer adds ``latency - 1 + s`` cycles (a
    layer's standalone cycle of I/O registers merges with its neighbours' when s < 1)."""
    p = {f"net.{t}.tau": np.zeros(1) for t in TARGETS}
    for t in TARGETS:
        p[f"net.{t}.g"] = np.zeros(len(GLUE[t]))
    p["net.latency.chain"] = np.zeros(1)
    p["net.latency.boundary"] = np.log([BOUNDARY_NS])
    return p


def _boundary_ns(p: dict[str, np.ndarray]) -> float:
    """Delay (ns) a layer boundary adds inside an io_parallel network (``boundary_cycles``);
    0 for a model file saved before the term existed, which keeps its predictions unchanged."""
    v = p.get("net.latency.boundary")
    return float(np.exp(v[0])) if v is not None else 0.0


def chained(p: dict[str, np.ndarray], lat: np.ndarray, boundary: np.ndarray | None = None) -> np.ndarray:
    """Each layer's share of the network latency before the scale: ``c - (1 - s) min(c, 1)``
    plus its hand-over, ``t_b * boundary`` (``network.boundary_cycles``)."""
    s = float(np.exp(p.get("net.latency.chain", np.zeros(1))[0]))
    c = np.maximum(np.asarray(lat, float), 0.0)
    out = c - (1.0 - s) * np.minimum(c, 1.0)
    return out + _boundary_ns(p) * np.asarray(boundary, float) if boundary is not None else out


def _glue_matrix(t: str, G: dict[str, np.ndarray]) -> np.ndarray:
    cols = [G[c] * GLUE_SCALE.get(c, {}).get(t, 1.0) for c in GLUE[t]]
    n = len(next(iter(G.values()))) if G else 0
    return np.column_stack(cols) if cols else np.zeros((n, 0))


def predict_totals(p: dict[str, np.ndarray], S: dict[str, np.ndarray],
                   G: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(totals, glue part) per network from the layer aggregates ``S`` (sums; II: max) and the
    glue components ``G``. The layer part of a total is ``exp(tau) * S``; DSP is the plain sum."""
    tot, glue = {}, {}
    chain = float(np.exp(p.get("net.latency.chain", np.zeros(1))[0]))
    for t in TARGETS:
        Gm = _glue_matrix(t, G)
        g = Gm @ np.exp(p[f"net.{t}.g"]) if Gm.shape[1] else np.zeros(len(S[t]))
        scale = 1.0 if t in ("DSP", "II") else float(np.exp(p[f"net.{t}.tau"][0]))
        glue[t] = g
        s_t = (S[t] - S["latency_unit"] * (1.0 - chain) + _boundary_ns(p) * S["latency_boundary"]
               if t == "latency" else S[t])
        tot[t] = scale * s_t + g
        if t in ("latency", "II"):
            tot[t] = np.maximum(tot[t], 1.0)
    return tot, glue


def fit_network(S: dict[str, np.ndarray], G: dict[str, np.ndarray], Y: dict[str, np.ndarray],
                w: np.ndarray, ridge: float) -> dict[str, np.ndarray]:
    """Fit ``tau`` and the glue multipliers on model-level reports (robust, ridge to default)."""
    p = default_network_params()
    sq = np.sqrt(ridge)
    for t in TARGETS:
        if t in ("DSP", "II"):  # sum of the layers' DSPs (keeps the bound); max of their IIs
            continue
        y = Y[t]
        ok = np.isfinite(y) & (y >= 0) & np.isfinite(S[t])
        if not ok.any():
            continue
        Gm = _glue_matrix(t, G)[ok]
        s, zy, sw, k = S[t][ok], np.log1p(y[ok]), np.sqrt(w[ok]), Gm.shape[1]
        lat = t == "latency"
        nl = S["latency_unit"][ok] if lat else np.zeros(len(s))
        nb = S["latency_boundary"][ok] if lat else np.zeros(len(s))

        def resid(v: np.ndarray, Gm=Gm, s=s, zy=zy, sw=sw, k=k, nl=nl, nb=nb, lat=lat) -> np.ndarray:
            # latency: v = [tau, glue..., log s (chain), log t_b (boundary ns)]
            s_t = s - nl * (1.0 - np.exp(v[-2])) + BOUNDARY_NS * np.exp(v[-1]) * nb if lat else s
            pred = np.maximum(np.exp(v[0]) * s_t + (Gm @ np.exp(v[1:1 + k]) if k else 0.0), 0.0)
            return np.concatenate([sw * (np.log1p(pred) - zy), sq * v])

        n = 1 + k + 2 * int(lat)
        v = _solve(resid, np.zeros(n), np.full(n, -6.0), np.full(n, 6.0), _NET_LOSS)
        p[f"net.{t}.tau"], p[f"net.{t}.g"] = v[:1], v[1:1 + k]
        if lat:
            p["net.latency.chain"], p["net.latency.boundary"] = v[-2:-1], v[-1:] + np.log(BOUNDARY_NS)
    return p
