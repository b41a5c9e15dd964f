"""ResourceModel: sklearn conventions, purity, intervals, domain findings, networks, calibration."""

from __future__ import annotations

import copy
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from connas4ml_torch.errors import OutOfDomainWarning
from connas4ml_torch.hardware.costmodel import CostModel, DomainFinding, NetworkPrediction
from connas4ml_torch.hardware.features import specs_to_frame
from connas4ml_torch.hardware.layerspec import LayerSpec
from connas4ml_torch.hardware.model import TARGETS, ResourceModel

PART = "xcvu13p-flga2577-2-e"


def dense(n_in=32, n_out=32, w=8, a=8, rf=1, strategy="Latency", backend="Vitis", part=PART, **kw):
    return LayerSpec("Dense", n_in, n_out, weight_bits=w, input_bits=a, reuse_factor=rf,
                     strategy=strategy, backend=backend, part=part, tool_version="2023.1", **kw)


@pytest.fixture(scope="module")
def corpus(reports_dir) -> pd.DataFrame:
    from connas4ml_torch.hardware.fit_default import load_corpus

    return load_corpus(reports_dir)


def test_the_corpus_leaves_out_copied_reports(corpus, reports_dir) -> None:
    """A report the corpus index lists as a copy of another project's (Lrozzy's prune_90 tree
    holds prune_60's report next to another network) is neither fitted nor scored; the
    original stays."""
    folders = corpus.loc[corpus["level"] == "model", "report"].astype(str)
    assert folders.str.contains("prune_60").sum() == 1
    assert not folders.str.contains("prune_90").any()
    assert not corpus["report"].astype(str).str.contains("prune_90").any()  # its layers too


@pytest.fixture(scope="module")
def small_model(corpus) -> ResourceModel:
    return ResourceModel(max_rows_per_source=200).fit(corpus)


@pytest.fixture(scope="module")
def default_model() -> ResourceModel:
    return ResourceModel.default()


def test_fit_predict_shapes_and_sign(small_model, corpus) -> None:
    specs = [dense(), dense(64, 16, 16, 16),
             LayerSpec("Conv1D", 16, 32, (3,), (128,), 16, 16, reuse_factor=4, strategy="Resource",
                       backend="Vivado", part="xczu7ev-ffvc1156-2-e")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        p = small_model.predict(specs)
    assert list(p.columns) == list(TARGETS) and len(p) == 3
    assert (p.to_numpy() >= 0).all() and np.isfinite(p.to_numpy()).all()
    assert set(small_model.domain_["strategy"]) == {"Latency", "Resource"}
    assert 0.3 < small_model.score(corpus) <= 1.0  # mean R^2 in log space, in sample
    assert small_model.n_train_["projects"] >= 10 and len(small_model.n_train_["sources"]) >= 10


def test_sklearn_conventions(small_model) -> None:
    params = small_model.get_params()
    assert params["max_rows_per_source"] == 200 and params["ridge"] == 0.3
    c = clone(small_model).set_params(ridge=1.0)
    assert c.ridge == 1.0 and not hasattr(c, "params_")
    with pytest.raises(RuntimeError, match="not fitted"):
        c.predict([dense()])


def test_fit_on_layerspecs_and_targets() -> None:
    rng = np.random.default_rng(1)
    specs = [dense(int(i), int(o), int(w), int(a)) for i, o, w, a in
             rng.integers([4, 4, 4, 4], [65, 65, 9, 9], size=(60, 4))]
    from connas4ml_torch.hardware.analytic import design
    from connas4ml_torch.hardware.features import specs_to_frame

    lut0 = design(specs_to_frame(specs))["A.LUT"].sum(axis=1)
    y = pd.DataFrame({"LUT": 0.5 * lut0, "DSP": [0.0] * len(specs), "latency_cycles": [2.0] * len(specs)})
    m = ResourceModel(intervals=False, ridge=0.01).fit(specs, y)  # 'latency_cycles' -> 'latency'
    p = m.predict(specs[:10])
    err = np.abs(p["LUT"] - y["LUT"][:10]) / y["LUT"][:10]
    assert err.median() < 0.1
    assert (p["latency"] >= 1).all()
    with pytest.raises(ValueError, match="rows"):
        ResourceModel().fit(specs, y.iloc[:10])
    with pytest.raises(ValueError, match="y"):
        ResourceModel().fit(specs)


def test_predictions_are_pure(small_model) -> None:
    """Two predictions in a row give equal frames and leave the model unchanged."""
    specs = [dense(n_in=5000, part="xc7a100t-csg324-1"), dense()]
    before = copy.deepcopy(small_model.__dict__)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        a = small_model.predict(specs)
        b = small_model.predict(specs)
        small_model.predict_network(specs)
        small_model.predict(specs, quantile=0.9)
    pd.testing.assert_frame_equal(a, b)
    after = small_model.__dict__
    assert before.keys() == after.keys()
    for k in before:
        assert repr(before[k]) == repr(after[k]), k


def test_default_returns_independent_instances(default_model) -> None:
    a, b = ResourceModel.default(), ResourceModel.default()
    assert a is not b and a is not default_model
    a.calibration_["LUT"] = 5.0
    assert b.calibration_["LUT"] == 0.0 and ResourceModel.default().calibration_["LUT"] == 0.0


def test_quantile_bounds(small_model) -> None:
    specs = [dense(n_in=v, w=b, a=b) for v in (8, 32, 64) for b in (4, 8, 16)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        p = small_model.predict(specs)
        lo = small_model.predict(specs, quantile=0.05)
        hi = small_model.predict(specs, quantile=0.95)
    assert (hi.to_numpy() >= p.to_numpy() - 1e-9).all() and (lo.to_numpy() <= p.to_numpy() + 1e-9).all()
    assert (hi["LUT"] > p["LUT"]).all()
    with pytest.raises(ValueError, match="quantile"):
        small_model.predict(specs, quantile=1.5)
    assert small_model.interval_counts_["layer"]["LUT"] > 50


def test_interval_quantiles_widen_for_few_held_out_sources() -> None:
    """Residuals of n held-out sources: the stored q-quantiles are read at the stretched level
    0.5 + (q - 0.5)(n + 1)/n, so that a new source falls inside [q05, q95] about as often as
    promised; every source weighs the same whatever its number of rows."""
    from connas4ml_torch.hardware.analytic.fitting import QGRID
    from connas4ml_torch.hardware.analytic.fitting import interval_quantiles as _wquantile

    r = np.array([-2.0, -1.0, 1.0, 2.0, 2.0, 2.0])
    g = np.array(["a", "b", "c", "d", "d", "d"], dtype=object)  # d: three rows, one source
    q = dict(zip(QGRID.round(2), _wquantile(r, g)))
    assert q[0.95] == 2.0 and q[0.05] == -2.0  # 4 sources: the 5%/95% levels read the extremes
    assert q[0.5] == pytest.approx(0.0)
    many = np.linspace(-1.0, 1.0, 201)
    wide = dict(zip(QGRID.round(2), _wquantile(many, np.arange(201).astype(object))))
    assert wide[0.95] == pytest.approx(0.909)  # 201 sources: barely stretched (plain: 0.900)


def test_interval_bounds_of_counts_are_whole_and_rounded_outward(default_model) -> None:
    """A bound of a count (DSP, LUT, cycles) is a whole number on the far side of the
    unrounded one: a lower DSP bound of 0.02 is 0, not 1 nor 0.02; the breakdown still adds up
    and the point prediction is left unrounded."""
    net = [dense(16, 4, w=8, a=8), LayerSpec("Activation", 4, 4, input_bits=8, activation="relu",
                                             part=PART, backend="Vitis", tool_version="2023.1"),
           dense(4, 5, w=8, a=8)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        point = default_model.predict_network(net)
        lo, hi = default_model.predict_network(net, 0.05), default_model.predict_network(net, 0.95)
        raw = default_model.predict(net, 0.95)
    for t in ("LUT", "FF", "DSP", "latency"):
        assert lo[t] == np.floor(lo[t]) and hi[t] == np.ceil(hi[t]), t
        assert lo[t] <= point[t] <= hi[t], t
        assert lo.layers[t].sum() == pytest.approx(lo[t]) and hi.layers[t].sum() == pytest.approx(hi[t])
    assert (raw.to_numpy() == np.ceil(raw.to_numpy())).all()
    assert point["LUT"] != np.round(point["LUT"])  # an expectation: not rounded


def test_network_dsp_bounds_are_held_out_binding_shifts(small_model) -> None:
    """A network's DSP bounds are the wider of the held-out log factor and the held-out DSP
    binding shift (every layer's DSP share moved in logit space by the quantile of the shifts
    that matched held-out networks): a tool that puts a layer's products in LUTs is one shift
    that no factor reaches, a near-saturated binding moves only by a factor. The residual
    recovers a known shift; a network measured at 0 DSP is where its expectation falls below
    half a slice, not the all-LUT end."""
    from connas4ml_torch.hardware.analytic import design
    from connas4ml_torch.hardware.analytic.fitting import (
        DSP_LOGIT_LIMIT,
        DSP_ZERO,
        QGRID,
        dsp_logit_residual,
    )

    qs = small_model.intervals_["model"]["DSP_logit"]
    assert len(qs) == len(QGRID) and (np.diff(qs) >= 0).all() and qs[0] < 0 < qs[-1]
    net = [dense(16, 64, w=16, a=16), dense(64, 32, w=16, a=16), dense(32, 5, w=16, a=16)]
    frame = specs_to_frame(net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        point = small_model.predict_network(net)["DSP"]
        cap = design(frame)["dsp_max"].sum()
        for q in (0.05, 0.95):
            bound = small_model.predict_network(net, q)["DSP"]
            moved = small_model._network(frame, None, float(np.interp(q, QGRID, qs)))["DSP"]
            factor = np.expm1(np.log1p(point) + np.interp(q, QGRID, small_model.intervals_["model"]["DSP"]))
            if q < 0.5:
                assert bound == np.floor(min(moved, factor) + 1e-9)
            else:
                assert bound == min(np.ceil(max(moved, factor) - 1e-9), max(cap, point))
    p, q, D = small_model.params_, small_model.net_params_, design(frame)
    y = small_model._network(frame, None, 1.7)["DSP"]
    assert dsp_logit_residual(p, q, frame, D, y) == pytest.approx(1.7, abs=1e-3)
    # a measured 0 says the expectation was below half a slice: the shift that brings it there
    zero = dsp_logit_residual(p, q, frame, D, 0.0)
    assert -DSP_LOGIT_LIMIT < zero < 1.7
    assert small_model._network(frame, None, zero)["DSP"] == pytest.approx(DSP_ZERO, rel=1e-3)
    assert dsp_logit_residual(p, q, frame, D, 1e9) == DSP_LOGIT_LIMIT
    # a network with no DSP candidates: no shift moves it, nothing to learn
    act = specs_to_frame([LayerSpec("Activation", 64, 64, activation="relu", part=PART)])
    assert dsp_logit_residual(p, q, act, design(act), 0.0) == 0.0


def test_conformalize_takes_network_bounds_from_projects_the_model_never_saw(corpus, default_model) -> None:
    """The default's own fit has two complete projects, so its network bounds would be its layer
    residuals' (tens of times wide); conformalize() on other groups' complete projects makes
    them those projects' residual quantiles (split conformal), the DSP binding's included, and
    sets the few-shot shrinkage; fewer than five projects leave a target as it was."""
    from connas4ml_torch.hardware.fit_default import PERMISSIVE_SOURCES

    other = corpus[~corpus["source_repo"].isin(PERMISSIVE_SOURCES)]
    m = copy.deepcopy(default_model)
    m.intervals_["model"] = {t: v.copy() for t, v in m.intervals_["layer"].items()}  # the fit alone

    def lut_bounds(model):
        P = model.predict_projects(other)
        P = P[P["complete"]]
        width = np.median((1 + P["hi_LUT"]) / (1 + P["lo_LUT"]))
        inside = ((P["meas_LUT"] >= P["lo_LUT"]) & (P["meas_LUT"] <= P["hi_LUT"])).mean()
        return width, inside, len(P)

    before = lut_bounds(m)
    one = other[other["source_repo"] == "MinhNguy3n+hls4ml-tutorial"]
    same = copy.deepcopy(m).conformalize(one)
    assert (same.intervals_["model"]["LUT"] == m.intervals_["model"]["LUT"]).all()
    assert "DSP_logit" not in same.intervals_["model"]
    m.conformalize(other)
    width, inside, n = lut_bounds(m)
    assert m.interval_counts_["model"]["LUT"] == n >= 10
    assert "DSP_logit" in m.intervals_["model"] and "DSP_logit" in m.shrinkage_
    assert before[0] > 3 * width and width < 10 and inside >= 0.8


def test_margin_shares_carry_the_network_bounds_factor(default_model) -> None:
    """The search's safety margin (``network_shares(quantile=q)``) moves each layer's share by
    the network-level bound's factor, not by a layer's own: a budget is a network's, and a
    layer's held-out spread (hundreds of times wide) would make every network infeasible."""
    net = [dense(16, 64, 6, 6), dense(64, 32, 6, 6), dense(32, 5, 6, 6)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        s0, s9 = default_model.network_shares(net), default_model.network_shares(net, quantile=0.9)
        n0, n9 = default_model.predict_network(net), default_model.predict_network(net, 0.9)
    for t in ("LUT", "FF"):
        assert s9[t].sum() / s0[t].sum() == pytest.approx(n9[t] / n0[t], rel=0.01), t


def _calls(model, specs):
    out = []
    for _ in range(3):
        out.append(model.predict(specs))  # one call site, three calls
    return out


def test_domain_findings_are_structured_and_warned_once_per_call_site(small_model) -> None:
    odd = [dense(n_in=5000, io_type="io_stream", part="xc7a100t-csg324-1") for _ in range(4)]
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("default")
        frames = _calls(small_model, odd)
        small_model.predict(odd)  # a second call site
    msgs = [w for w in rec if issubclass(w.category, OutOfDomainWarning)]
    assert len(msgs) == 2 and msgs[0].filename == __file__
    f = frames[0].attrs["domain"]
    assert all(isinstance(x, DomainFinding) for x in f)
    assert {x.feature for x in f} >= {"n_in", "family"} and {x.layer for x in f} == {0, 1, 2, 3}
    n_in = next(x for x in f if x.feature == "n_in")
    assert n_in.value == 5000 and n_in.high < 5000 and "outside" in str(n_in)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        inside = small_model.predict([dense(32, 32, 16, 16, part="xcu250-figd2104-2L-e", backend="Vivado")])
    assert inside.attrs["domain"] == ()


def test_predict_network_breakdown_adds_up(small_model) -> None:
    specs = [dense(16, 64, 6, 6), LayerSpec("Activation", 64, 64, input_bits=12, result_bits=6,
                                             activation="relu", part=PART),
             dense(64, 32, 6, 6), dense(32, 5, 6, 6), LayerSpec("Softmax", 5, 5, part=PART)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        net = small_model.predict_network(specs)
        up = small_model.predict_network(specs, quantile=0.9)
    assert isinstance(net, NetworkPrediction) and isinstance(small_model, CostModel)
    br = net.layers
    assert list(br["layer_type"]) == ["Dense", "Activation", "Dense", "Dense", "Softmax", "glue"]
    for t in ("LUT", "FF", "BRAM_18K", "DSP", "latency"):
        assert br[t].sum() == pytest.approx(net[t], rel=1e-9), t
        assert up[t] >= net[t] - 1e-9
    assert net["II"] == pytest.approx(br["II"].max()) and net["latency_cycles"] == net["latency"]
    assert net["BRAM_18K"] > 0  # the softmax tables
    # a model total is more than its weight layers: the activations and the glue carry LUTs
    assert (br.loc[br["layer_type"].isin(["Activation", "Softmax", "glue"]), "LUT"] > 0).all()


def test_predict_projects_and_calibration_reduce_error(corpus) -> None:
    """Held-out source: calibrating on k = 1 and k = 3 of its reports removes most of a
    tool-wide bias (the model made 2x off in FF, as a different tool version would be) on the
    rest, and costs little where the model was already right (the fitted model is ~5% off on
    this source's FF: three reports cannot beat that by much)."""
    src = "Lrozzy+hls4ml_OpenML"
    m = ResourceModel(max_rows_per_source=200, intervals=False).fit(corpus[corpus["source_repo"] != src])
    test = corpus[corpus["source_repo"] == src]
    P = m.predict_projects(test)
    assert {"pred_LUT", "meas_LUT", "lo_LUT", "hi_LUT", "complete"} <= set(P.columns)
    done = P[P["complete"]]
    assert len(done) >= 5 and (done["pred_LUT"] > 0).all()
    sources = list(done["source"])

    def err(model, rest):
        R = model.predict_projects(test[test["source"].isin(rest)])
        R = R[R["complete"]]
        return float(np.median(np.abs(np.log(R["pred_FF"] / R["meas_FF"]))))

    biased = copy.deepcopy(m)
    biased.net_params_["net.FF.tau"] = biased.net_params_["net.FF.tau"] + np.log(2.0)
    for k in (1, 3):
        cal, rest = sources[:k], sources[k:]
        for model, slack in ((biased, 0.5), (m, 1.0)):
            base = err(model, rest)
            mk = copy.deepcopy(model).calibrate(test[test["source"].isin(cal)])
            assert mk.calibration_info_["n_model_reports"] == k
            assert mk.calibration_info_["used"]["FF"] == "model"
            assert err(mk, rest) < slack * base + (0.0 if slack < 1 else 0.1)


def test_calibration_reopens_a_dsp_binding_the_default_closed(corpus, default_model) -> None:
    """A tool that puts 6-bit constant products on DSPs (one real report: 38 DSPs where the
    default predicts ~0): calibrate() shifts the DSP share in logit space, the prediction rises
    towards the report and stays within the layers' DSP candidates; nothing else moves for DSP.
    By default one report moves the shift only part of the way, n / (n + s), with ``s``
    (``shrinkage_["DSP_logit"]``) fitted from how held-out networks' bindings scatter."""
    from connas4ml_torch.hardware.analytic import design

    test = corpus[corpus["source_repo"] == "kimhaneal11+hls4ml_practice"]
    P = default_model.predict_projects(test)
    P = P[P["complete"]]
    assert len(P) == 1 and P["meas_DSP"].iloc[0] > 20 and P["pred_DSP"].iloc[0] < 2

    def dsp_after(model):
        after = model.predict_projects(test)
        return after[after["complete"]]["pred_DSP"].iloc[0]

    m = copy.deepcopy(default_model).calibrate(test, shrinkage=1.0)
    assert m.calibration_["DSP_logit"] > 0 and m.calibration_["DSP"] == 0.0
    assert m.calibration_info_["dsp_logit_shift"] == m.calibration_["DSP_logit"]
    after = dsp_after(m)
    assert P["pred_DSP"].iloc[0] * 5 < after < P["meas_DSP"].iloc[0] * 1.5
    s = default_model.shrinkage_["DSP_logit"]
    assert s > 0
    full = copy.deepcopy(default_model).calibrate(test, shrinkage=0.0)
    cautious = copy.deepcopy(default_model).calibrate(test)
    assert cautious.calibration_["DSP_logit"] == pytest.approx(full.calibration_["DSP_logit"] / (1 + s))
    assert P["pred_DSP"].iloc[0] < dsp_after(cautious) < dsp_after(full)
    specs = [dense(64, 32, 6, 16, part="xcu55c-fsvh2892-2l-e")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        layer = m.predict(specs)["DSP"].iloc[0]
    assert layer <= design(specs_to_frame(specs))["dsp_open"][0] + 1e-9


def test_a_report_without_dsps_pulls_the_dsp_share_down_only_to_the_rounding(corpus, default_model) -> None:
    """A report of 0 DSP says its expectation was below half a slice. Calibrating on one (an
    OpenML network whose 16-bit constant products all went to LUTs) shifts the share just far
    enough that the report rounds to 0, where the uncensored residual took the -12 end."""
    from connas4ml_torch.hardware.analytic.fitting import DSP_LOGIT_LIMIT, DSP_ZERO

    test = corpus[corpus["source_repo"] == "Lrozzy+hls4ml_OpenML"]
    P = default_model.predict_projects(test)
    zero = P[P["complete"] & (P["meas_DSP"] == 0) & (P["pred_DSP"] > 1)]
    assert len(zero)
    one = test[test["source"] == zero["source"].iloc[0]]
    m = copy.deepcopy(default_model).calibrate(one, shrinkage=0.0)
    shift = m.calibration_["DSP_logit"]
    assert -DSP_LOGIT_LIMIT < shift < 0
    after = m.predict_projects(one)
    assert after[after["complete"]]["pred_DSP"].iloc[0] == pytest.approx(DSP_ZERO, rel=1e-3)


def test_save_load_roundtrip(small_model, tmp_path) -> None:
    f = small_model.save(tmp_path / "m.skops")
    m2 = ResourceModel.load(f)
    specs = [dense(), dense(64, 16, 16, 16)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        pd.testing.assert_frame_equal(small_model.predict(specs), m2.predict(specs))
        assert small_model.predict_network(specs).totals == m2.predict_network(specs).totals


def test_default_model_is_small_with_a_card() -> None:
    from connas4ml_torch.hardware.analytic.persist import DEFAULT_MODEL_PATH

    assert DEFAULT_MODEL_PATH.stat().st_size < 200e3
    card = (DEFAULT_MODEL_PATH.parent / "MODEL_CARD.md").read_text()
    assert "permissive" in card and "N-TORC" in card


def test_default_model_jet_mlp_physics(default_model) -> None:
    """The search's case: jet MLP layers, Latency, io_parallel, xcvu13p, 2..16 bits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        low = default_model.predict([dense(64, 32, b, b) for b in range(2, 9)])
        sizes = default_model.predict([dense(i, o, 6, 6) for i, o in ((8, 8), (16, 16), (32, 32), (64, 64))])
        net = {b: default_model.predict_network([dense(16, 64, b, b), dense(64, 32, b, b),
                                                 dense(32, 32, b, b), dense(32, 5, b, b)]) for b in (2, 8, 16)}
    assert (low["DSP"] < 0.05 * 64 * 32).all()  # small products stay in LUTs
    assert low["LUT"].iloc[-1] > 2 * low["LUT"].iloc[0]
    lut = sizes["LUT"].to_numpy()
    assert (np.diff(lut) > 0).all() and lut[-1] > 20 * lut[0]
    assert net[16]["DSP"] > 500 and net[2]["DSP"] < 10
    assert net[8]["LUT"] > 3 * net[2]["LUT"]


def test_default_model_speed(default_model) -> None:
    rng = np.random.default_rng(0)
    specs = [dense(int(i), int(o), int(w), int(a)) for i, o, w, a in
             rng.integers([8, 8, 2, 2], [65, 65, 9, 9], size=(5000, 4))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        default_model.predict(specs[:10])
        t = time.perf_counter()
        p = default_model.predict(specs)
        dt = time.perf_counter() - t
    assert len(p) == 5000 and dt < 2.0


def test_fit_needs_configured_rows(corpus) -> None:
    with pytest.raises(ValueError, match="no layer rows"):
        ResourceModel().fit(corpus[corpus["level"] == "model"].assign(level="model"))
