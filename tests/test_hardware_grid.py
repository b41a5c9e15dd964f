"""Impossible outputs never occur and predictions are monotone, on a grid of specs.

Grid: every layer kind x strategy x io type x reuse factor x bits. Impossible: a negative
resource, more DSPs than the multiplications per initiation can use (the analytic bound), a
latency or II below one cycle. Monotone: resources never shrink when a layer or its bits grow;
area resources never grow with the reuse factor under the Resource strategy (BRAM from RF 2 on:
the weight ROM only exists for RF > 1); latency and II never shrink with it.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from connas4ml_torch.errors import OutOfDomainWarning
from connas4ml_torch.hardware.analytic import design
from connas4ml_torch.hardware.features import specs_to_frame
from connas4ml_torch.hardware.layerspec import LayerSpec
from connas4ml_torch.hardware.model import TARGETS, ResourceModel

PARTS = ("xcvu13p-flga2577-2-e", "xc7z020-clg400-1")
AREA = ("LUT", "FF", "BRAM_18K", "DSP")


@pytest.fixture(scope="module")
def model() -> ResourceModel:
    return ResourceModel.default()


def _kinds(w: int, a: int, rf: int, strategy: str, io: str, part: str) -> list[LayerSpec]:
    kw = dict(weight_bits=w, input_bits=a, reuse_factor=rf, strategy=strategy, io_type=io, part=part)
    return [
        LayerSpec("Dense", 24, 12, **kw),
        LayerSpec("Conv1D", 4, 8, (3,), (30,), **kw),
        LayerSpec("Conv2D", 3, 4, (3, 3), (6, 6), **kw),
        LayerSpec("Pooling2D", 4, 4, (2, 2), (3, 3), activation="max", **kw),
        LayerSpec("GlobalPooling1D", 8, 8, (30,), **kw),
        LayerSpec("Activation", 12, 12, activation="relu", **kw),
        LayerSpec("Activation", 12, 12, activation="sigmoid", **kw),
        LayerSpec("Softmax", 5, 5, **kw),
        LayerSpec("BatchNormalization", 12, 12, **kw),
        LayerSpec("Merge", 12, 12, activation="add", **kw),
    ]


def test_no_impossible_outputs_on_a_grid(model) -> None:
    specs = [s for w, a, rf, st, io, part in itertools.product(
        (1, 2, 4, 8, 12, 16, 18, 24, 32), (2, 8, 16, 32), (1, 2, 7, 64, 512),
        ("Latency", "Resource"), ("io_parallel", "io_stream"), PARTS)
        for s in _kinds(w, a, rf, st, io, part)]
    bound = design(specs_to_frame(specs))["dsp_max"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        for q in (None, 0.05, 0.95):
            p = model.predict(specs, quantile=q)
            assert np.isfinite(p.to_numpy()).all()
            assert (p[list(AREA)].to_numpy() >= 0).all()
            assert (p["DSP"].to_numpy() <= bound + 1e-9).all()
            assert (p["latency"] >= 1).all() and (p["II"] >= 1).all()
        for i in range(0, len(specs), 37):
            net = model.predict_network(specs[i:i + 10])
            assert net["DSP"] <= bound[i:i + 10].sum() + 1e-9
            assert net["latency"] >= 1 and net["II"] >= 1 and min(net.values()) >= 0


def _check_axis(p, shape, axis_names, grow=True):
    for t in TARGETS:
        v = p[t].to_numpy().reshape(shape)
        tol = 1e-6 * (1 + np.abs(v).max())
        for ax, name in enumerate(axis_names):
            d = np.diff(v, axis=ax)
            assert (d >= -tol).all(), (t, name)


@pytest.mark.parametrize("strategy", ["Latency", "Resource"])
@pytest.mark.parametrize("io", ["io_parallel", "io_stream"])
def test_monotone_in_sizes_and_bits(model, strategy, io) -> None:
    axes = {"n_in": (4, 16, 64), "n_out": (5, 16, 64), "w": (2, 4, 6, 8, 10, 12, 16),
            "a": (2, 4, 8, 12, 16, 24)}
    shape = tuple(len(v) for v in axes.values())
    specs = [LayerSpec("Dense", i, o, weight_bits=w, input_bits=a, reuse_factor=4, strategy=strategy,
                       io_type=io, part=PARTS[0])
             for i, o, w, a in itertools.product(*axes.values())]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        p = model.predict(specs)
    _check_axis(p, shape, list(axes))
    ks = [LayerSpec("Conv1D", 8, 8, (k,), (32,), w, w, strategy=strategy, io_type=io, part=PARTS[0])
          for w in (2, 8) for k in (1, 3, 5)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        pk = model.predict(ks).to_numpy().reshape(2, 3, -1)
    assert (np.diff(pk, axis=1) >= -1e-9).all() and (np.diff(pk, axis=0) >= -1e-9).all()


@pytest.mark.parametrize("kind", ["Dense", "Conv2D"])
def test_reuse_factor_monotonicity(model, kind) -> None:
    rfs = (1, 2, 4, 8, 16, 64, 256)
    mk = {"Dense": lambda r, s: LayerSpec("Dense", 64, 64, weight_bits=16, input_bits=16, reuse_factor=r,
                                          strategy=s, part=PARTS[0]),
          "Conv2D": lambda r, s: LayerSpec("Conv2D", 16, 16, (3, 3), (8, 8), 16, 16, reuse_factor=r,
                                           strategy=s, part=PARTS[0])}[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        for strategy in ("Latency", "Resource"):
            p = model.predict([mk(r, strategy) for r in rfs])
            time = np.diff(p[["latency", "II"]].to_numpy(), axis=0)
            assert (time >= -1e-9).all(), strategy
            if strategy == "Resource":
                area = p[["LUT", "FF", "DSP"]].to_numpy()
                assert (np.diff(area, axis=0) <= 1e-6 * area.max()).all()
                assert (np.diff(p["BRAM_18K"].to_numpy()[1:]) <= 1e-9).all()
            else:
                assert (np.diff(p["DSP"].to_numpy()) <= 1e-9).all()
