"""ResourceModel: sklearn conventions, monotonicity, quantiles, domain warnings, skops files."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from connas4ml_torch.hardware.layerspec import LayerSpec
from connas4ml_torch.hardware.model import TARGETS, OutOfDomainWarning, ResourceModel, training_rows

PART = "xcvu13p-flga2577-2-e"


def dense(n_in=32, n_out=32, w=8, a=8, rf=1, strategy="Latency", backend="Vitis", part=PART, **kw):
    return LayerSpec("Dense", n_in, n_out, weight_bits=w, input_bits=a, reuse_factor=rf,
                     strategy=strategy, backend=backend, part=part, tool_version="2023.1", **kw)


@pytest.fixture(scope="module")
def corpus_rows(reports_dir) -> pd.DataFrame:
    from connas4ml_torch.hardware.fit_default import PERMISSIVE_SOURCES, load_corpus

    df = load_corpus(reports_dir, set(PERMISSIVE_SOURCES))
    # keep the fit fast: every report row, and a fixed sample of the N-TORC tables
    nt = df[df["format"] == "csv"].sample(800, random_state=0)
    return pd.concat([df[df["format"] != "csv"], nt], ignore_index=True)


@pytest.fixture(scope="module")
def small_model(corpus_rows) -> ResourceModel:
    return ResourceModel(max_iter=30, quantiles=(0.9,)).fit(corpus_rows)


@pytest.fixture(scope="module")
def default_model() -> ResourceModel:
    return ResourceModel.default()


def test_fit_predict_shapes_and_sign(small_model, corpus_rows) -> None:
    specs = [dense(), dense(64, 16, 16, 16), LayerSpec("Conv1D", 16, 32, (3,), (128,), 16, 16, reuse_factor=4,
                                                         strategy="Resource", backend="Vivado", part="xczu7ev-ffvc1156-2-e")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        p = small_model.predict(specs)
    assert list(p.columns) == list(TARGETS) and len(p) == 3
    assert (p.to_numpy() >= 0).all() and np.isfinite(p.to_numpy()).all()
    assert small_model.domain_["families"] and set(small_model.domain_["strategies"]) == {"Latency", "Resource"}
    s = small_model.score(corpus_rows)
    assert 0.5 < s <= 1.0  # mean R^2 in log space on its own training rows


@pytest.mark.parametrize("model_name", ["small_model", "default_model"])
def test_monotone(request, model_name) -> None:
    m = request.getfixturevalue(model_name)
    res = ["LUT", "FF", "BRAM_18K", "DSP"]
    grid = {
        "n_in": [dense(n_in=v) for v in (4, 8, 16, 32, 64, 128, 512)],
        "n_out": [dense(n_out=v) for v in (2, 8, 16, 32, 64, 256)],
        "weight_bits": [dense(w=v) for v in range(2, 19)],
        "input_bits": [dense(a=v) for v in range(2, 19)],
        "kernel": [LayerSpec("Conv1D", 8, 8, (k,), (32,), 8, 8, part=PART) for k in (1, 2, 3, 5, 7)],
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        for name, specs in grid.items():
            p = m.predict(specs)
            assert (np.diff(p.to_numpy(), axis=0) >= -1e-9).all(), name
        for strategy in ("Latency", "Resource"):
            p = m.predict([dense(64, 64, 16, 16, rf=r, strategy=strategy) for r in (1, 2, 4, 8, 16, 64, 256)])
            assert (np.diff(p[res].to_numpy(), axis=0) <= 1e-9).all()
            assert (np.diff(p[["latency_cycles", "II"]].to_numpy(), axis=0) >= -1e-9).all()


def test_quantile_bounds(small_model) -> None:
    specs = [dense(n_in=v, w=b, a=b) for v in (8, 32, 64) for b in (4, 8, 16)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        p = small_model.predict(specs)
        q = small_model.predict(specs, quantile=0.9)
    assert (q.to_numpy() >= p.to_numpy() - 1e-9).all()
    assert (q["LUT"] > p["LUT"]).any()
    with pytest.raises(ValueError, match="0.5 was not fitted"):
        small_model.predict(specs, quantile=0.5)


def test_sklearn_conventions(small_model) -> None:
    params = small_model.get_params()
    assert params["max_iter"] == 30 and params["quantiles"] == (0.9,)
    c = clone(small_model).set_params(max_iter=7)
    assert c.max_iter == 7 and not hasattr(c, "point_")
    with pytest.raises(RuntimeError, match="not fitted"):
        c.predict([dense()])


def test_fit_on_layerspecs_and_targets(default_model) -> None:
    rng = np.random.default_rng(1)
    specs = [dense(int(i), int(o), int(w), int(a)) for i, o, w, a in
             rng.integers([4, 4, 4, 4], [65, 65, 17, 17], size=(80, 4))]
    y = pd.DataFrame({
        "LUT": [2.0 * s.n_weights * s.bit_product / 16 for s in specs],
        "FF": [s.n_out * 20.0 for s in specs],
        "DSP": [0.0] * len(specs), "latency_cycles": [3.0] * len(specs),
    })
    m = ResourceModel(max_iter=40, quantiles=()).fit(specs, y)
    assert "BRAM_18K" not in m.point_  # no data -> no regressor, NaN predictions
    p = m.predict(specs[:5])
    assert p["BRAM_18K"].isna().all()
    err = np.abs(p["LUT"] - y["LUT"][:5]) / y["LUT"][:5]
    assert err.median() < 0.3
    with pytest.raises(ValueError, match="rows"):
        ResourceModel().fit(specs, y.iloc[:10])
    with pytest.raises(ValueError, match="y"):
        ResourceModel().fit(specs)


def test_out_of_domain_warns_once_per_reason(small_model) -> None:
    m = clone(small_model)
    m.__dict__.update({k: v for k, v in small_model.__dict__.items() if k.endswith("_")})
    m._warned_ = set()
    odd = [dense(n_in=5000, io_type="io_stream", part="xc7a100t-csg324-1") for _ in range(50)]
    with pytest.warns(OutOfDomainWarning) as rec:
        m.predict(odd)
    msgs = [str(w.message) for w in rec if issubclass(w.category, OutOfDomainWarning)]
    assert any("n_in outside" in s for s in msgs) and any("artix7" in s for s in msgs)
    assert len(msgs) == len(set(msgs))  # one per reason, not one per row
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        m.predict(odd)  # same reasons again: silent


def test_predict_network_sums_layers(default_model) -> None:
    specs = [dense(16, 64, 6, 6), dense(64, 32, 6, 6), dense(32, 32, 6, 6), dense(32, 5, 6, 6)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        lay = default_model.predict(specs)
        net = default_model.predict_network(specs)
        up = default_model.predict_network(specs, quantile=0.9)
    for t in TARGETS:
        a, b = default_model.calibration_[t]
        s = lay[t].max() if t == "II" else lay[t].sum()
        assert net[t] == pytest.approx(a * s + b)
        assert up[t] >= net[t] - 1e-9


def test_save_load_roundtrip_and_trust(small_model, tmp_path) -> None:
    import skops.io as sio

    f = small_model.save(tmp_path / "m.skops")
    m2 = ResourceModel.load(f)
    specs = [dense(), dense(64, 16, 16, 16)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        pd.testing.assert_frame_equal(small_model.predict(specs), m2.predict(specs))
    sio.dump({"payload": _Evil()}, tmp_path / "evil.skops")
    with pytest.raises(ValueError, match="trusted"):
        ResourceModel.load(tmp_path / "evil.skops")
    (tmp_path / "junk.skops").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.skops"):
        ResourceModel.load(tmp_path / "junk.skops")


class _Evil:
    pass


# ---- the shipped default model ------------------------------------------------------------------
def test_default_model_is_cached_and_small(default_model) -> None:
    from connas4ml_torch.hardware.model import DEFAULT_MODEL_PATH

    assert ResourceModel.default() is default_model
    assert DEFAULT_MODEL_PATH.stat().st_size < 3e6
    assert (DEFAULT_MODEL_PATH.parent / "MODEL_CARD.md").is_file()


def test_default_model_jet_mlp_physics(default_model) -> None:
    """The search's case: jet MLP layers, Latency, io_parallel, xcvu13p, 2..8 bits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        low = default_model.predict([dense(64, 32, b, b) for b in range(2, 9)])
        high = default_model.predict([dense(64, 32, 16, 16)])
        sizes = default_model.predict([dense(i, o, 6, 6) for i, o in ((8, 8), (16, 16), (32, 32), (64, 64))])
    mults = 64 * 32
    assert (low["DSP"] < 0.02 * mults).all()  # products below ~10 bits stay in LUTs
    assert high["DSP"].iloc[0] > 0.3 * mults  # 16x16 products map to DSPs
    assert low["LUT"].iloc[-1] > 1.3 * low["LUT"].iloc[0]  # 8-bit layer costs more than 2-bit
    lut = sizes["LUT"].to_numpy()
    assert (np.diff(lut) > 0).all() and lut[-1] > 8 * lut[0]  # grows with n_in*n_out
    assert (low["LUT"] > 100).all() and (low["FF"] > 10).all()  # not degenerate


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
    assert len(p) == 5000 and dt < 1.0


def test_training_rows_need_configuration(corpus_rows) -> None:
    rows = training_rows(corpus_rows)
    assert rows["n_in"].notna().all() and rows["weight_bits"].notna().all()
    assert set(rows["layer_type"]) <= {"Dense", "Conv1D", "Conv2D"}
    with pytest.raises(ValueError, match="no layer rows"):
        ResourceModel().fit(corpus_rows[corpus_rows["level"] == "model"])


# ---- physics prior: extrapolation to the search's low-bit regime --------------------------------
def _jet(widths, bits):
    return [dense(i, o, bits, bits) for i, o in zip(widths[:-1], widths[1:])]


def test_default_model_prior_scaling_at_low_bits(default_model) -> None:
    """Jet MLP, Vitis, xcvu13p, Latency, io_parallel, RF 1: LUT follows the bit product."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        net = {b: default_model.predict_network(_jet((16, 64, 32, 32, 5), b)) for b in (2, 6, 8, 16)}
        small = default_model.predict_network(_jet((16, 16, 8, 8, 5), 2))
    assert net[8]["LUT"] > 6 * net[2]["LUT"]
    assert small["LUT"] < 3000
    assert 1e4 < net[6]["LUT"] < 8e4
    assert max(net[b]["DSP"] for b in (2, 6, 8)) < 10  # LUT-mapped products
    assert net[16]["DSP"] > 1000  # 4768 16x16 products map to DSPs
    terms = default_model.prior_terms()
    assert set(terms) == set(TARGETS) and all(v >= 0 for t in terms.values() for v in t.values())
    for t in TARGETS:  # no intercept: the model-level term is a factor, not a floor
        if t not in ("latency_cycles", "II"):
            assert default_model.calibration_[t][1] == 0.0


@pytest.mark.parametrize("model_name", ["small_model", "default_model"])
def test_monotone_grid(request, model_name) -> None:
    """Full grid over sizes x bits x RF: each axis step never lowers a prediction (resources
    never rise with RF), including below the corpus' bit range where only the prior speaks."""
    m = request.getfixturevalue(model_name)
    axes = {"n_in": (4, 16, 64), "n_out": (5, 16, 64), "w": (2, 4, 8, 12, 16),
            "a": (2, 4, 8, 12, 16), "rf": (1, 2, 8, 32)}
    shape = tuple(len(v) for v in axes.values())
    specs = [dense(i, o, w, a, rf) for i in axes["n_in"] for o in axes["n_out"] for w in axes["w"]
             for a in axes["a"] for rf in axes["rf"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        p = m.predict(specs)
    for t in TARGETS:
        v = p[t].to_numpy().reshape(shape)
        for ax, name in enumerate(axes):
            d = np.diff(v, axis=ax)
            if name == "rf" and t not in ("latency_cycles", "II"):
                assert (d <= 1e-6 * (1 + np.abs(v).max())).all(), (t, name)
            else:
                assert (d >= -1e-6 * (1 + np.abs(v).max())).all(), (t, name)
    ks = [LayerSpec("Conv1D", 8, 8, (k,), (32,), w, w, part=PART) for w in (2, 8) for k in (1, 3, 5)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        pk = m.predict(ks).to_numpy().reshape(2, 3, -1)
    assert (np.diff(pk, axis=1) >= -1e-9).all() and (np.diff(pk, axis=0) >= -1e-9).all()
