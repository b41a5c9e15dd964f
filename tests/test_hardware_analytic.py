"""The analytic hardware model checked by hand against hls4ml's templates, and weight awareness."""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np
import pytest

from connas4ml_torch.errors import OutOfDomainWarning
from connas4ml_torch.hardware.analytic import design, layer_counts
from connas4ml_torch.hardware.analytic.network import network_glue
from connas4ml_torch.hardware.analytic.primitives import (
    bram18k_for_rom,
    csd_digits,
    dsp_const_fraction,
    dsp_mapped_fraction,
    dsp_slices_per_product,
    expected_csd_digits,
    fifo_cost,
    weight_stats,
    weight_stats_expected,
)
from connas4ml_torch.hardware.features import specs_to_frame
from connas4ml_torch.hardware.layerspec import LayerSpec
from connas4ml_torch.hardware.model import ResourceModel

PART = "xcvu13p-flga2577-2-e"


def counts(*specs):
    return layer_counts(specs_to_frame(list(specs)))


def test_dense_latency_16x8_at_6_bits_by_hand() -> None:
    """nnet_dense_latency.h: 16*8 = 128 constant products (6x6 bits: LUT multipliers, no DSP),
    8 adder trees of ceil(log2 16) = 4 levels, one initiation per cycle at RF 1."""
    c = counts(LayerSpec("Dense", 16, 8, weight_bits=6, input_bits=6, part=PART)).iloc[0]
    assert c["mults"] == 128 and c["depth_levels"] == math.ceil(math.log2(16))
    assert c["lut_mult"] > 0 and c["lut_add"] == (128 - 8) * (6 + 6 + 4)  # accumulator bits
    assert c["bram_w"] == 0 and c["ii_iter"] == 1 and c["lat_iter"] == 0
    assert 128 * dsp_mapped_fraction(np.array([6.0]), np.array([6.0]))[0] < 0.1  # analytic: no DSP
    p = ResourceModel.default().predict([LayerSpec("Dense", 16, 8, weight_bits=6, input_bits=6, part=PART)])
    assert p["DSP"].iloc[0] < 0.02 * 128 and p["BRAM_18K"].iloc[0] == 0 and p["latency"].iloc[0] >= 1


def test_constant_products_bind_to_dsps_by_the_weight_width() -> None:
    """Latency strategy: a narrow constant times a wide input is shift-and-add in fabric (real
    reports: 6-bit weights x 16-bit inputs use no DSP), 16-bit weights mostly use DSPs; the
    gate is monotone in both widths."""
    wb = np.arange(2.0, 19.0)
    f = dsp_const_fraction(wb, np.full_like(wb, 16.0))
    assert np.all(np.diff(f) > 0) and f[wb == 6][0] < 1e-3 and f[wb == 16][0] > 0.8
    assert np.all(np.diff(dsp_const_fraction(np.full(10, 16.0), np.arange(2.0, 12.0))) > 0)
    model = ResourceModel.default()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        p = model.predict([LayerSpec("Dense", 64, 32, weight_bits=b, input_bits=16, part=PART)
                           for b in (6, 16)])
    assert p["DSP"].iloc[0] < 0.01 * 64 * 32   # 6-bit constants: (almost) no DSP
    assert p["DSP"].iloc[1] > 0.5 * 64 * 32    # 16-bit constants: most products on DSPs


def test_a_slower_part_deepens_the_pipeline_without_adding_iterations() -> None:
    """A 7-series part (Zynq-7020) is slower logic: its Latency-strategy layer gets a deeper
    pipeline than on UltraScale+, but a Resource layer of RF 128 iterations gets only those few
    depth cycles more, not a share of its iterations (the family moves only ``lat_depth_7s``)."""
    zynq, usp = "xc7z020-clg400-1", "xcvu9p-flga2104-2-e"
    c = layer_counts(specs_to_frame([LayerSpec("Dense", 32, 16, weight_bits=16, input_bits=16, part=q)
                                     for q in (zynq, usp)]), np.array([False, True]))  # DSP48E2?
    assert c["lat_depth"].tolist()[0] == 0 and c["lat_depth_7s"].tolist()[1] == 0
    assert c["lat_depth_7s"].iloc[0] > 1.5 * c["lat_depth"].iloc[1]  # the prior's speed factor
    model = ResourceModel.default()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        lat = model.predict([LayerSpec("Dense", 32, 16, weight_bits=16, input_bits=16, part=q)
                             for q in (zynq, usp)])["latency"].to_numpy()
        res = model.predict([LayerSpec("Dense", 128, 64, weight_bits=16, input_bits=16,
                                       reuse_factor=128, strategy="Resource", part=q)
                             for q in (zynq, usp)])["latency"].to_numpy()
    assert lat[0] > 1.5 * lat[1]
    # a few depth cycles on ~100 iteration cycles (a whole-latency family offset gave ~18% more)
    assert 0 < res[0] - res[1] < 0.08 * res[1] and res[1] > 64


def test_combinational_layers_chain_inside_the_network_pipeline() -> None:
    """hls4ml's io_parallel top is one pipeline: small Latency-strategy layers at a slow clock
    are combinational (their own reports say 0 cycles) and the scheduler chains them, so five
    of them take about one cycle in all (Kenny-Jia's ToyVAE at 25 ns: 1 cycle), not one each.
    Alone, a layer still takes at least one cycle; at a fast clock the chain is longer."""
    model = ResourceModel.default()
    net = [LayerSpec("Dense", 16, 8, weight_bits=8, input_bits=8, clock_period=25.0, part=PART),
           LayerSpec("Activation", 8, 8, input_bits=8, activation="relu", clock_period=25.0,
                     part=PART)] * 3
    alone = model.predict(net)["latency"]
    shares = model.network_shares(net)["latency"]
    assert (alone >= 1).all() and (shares < 1).all() and (shares > 0).all()
    slow = model.predict_network(net)["latency"]
    assert 1 <= slow < 0.5 * len(net)
    fast = model.predict_network([replace(s, clock_period=2.5) for s in net])["latency"]
    assert fast > 2 * slow
    # the breakdown adds up, and the layer rows are the shares times the model-level scale
    br = model.predict_network(net).layers
    assert br["latency"].sum() == pytest.approx(slow)
    ratio = br["latency"].iloc[:-1].to_numpy() / shares.to_numpy()
    assert np.allclose(ratio, ratio[0])


def test_dense_resource_rom_by_hand() -> None:
    """nnet_dense_resource.h: block_factor = ceil(N/RF) multipliers; weights reshaped into a
    ROM_nP_BRAM of RF words of block_factor*b_w bits (36-bit wide blocks up to 512 deep)."""
    c = counts(LayerSpec("Dense", 128, 256, weight_bits=16, input_bits=16, reuse_factor=32,
                         strategy="Resource", part=PART)).iloc[0]
    assert c["mults"] == 128 * 256 / 32 == 1024
    assert c["bram_w"] == math.ceil(1024 * 16 / 36)  # the report says 455 (= 16384/36)
    assert c["dsp_cand"] == pytest.approx(1024, rel=1e-3) and c["ii_iter"] == 32  # 16x16: DSPs
    rf1 = counts(LayerSpec("Dense", 128, 256, weight_bits=16, input_bits=16, reuse_factor=1,
                           strategy="Resource", part=PART)).iloc[0]
    assert rf1["bram_w"] == 0  # RF 1: no ROM (the pragma only applies for RF > 1)


def test_latency_strategy_lut_does_not_follow_rf() -> None:
    """Latency strategy: ALLOCATION limits `mul`s (DSP candidates) to ceil(n/RF), but constant
    shift-add products are not `mul`s, so the fabric products stay (reports: ~0.9x at RF 100)."""
    c = counts(*[LayerSpec("Dense", 64, 32, weight_bits=8, input_bits=8, reuse_factor=r, part=PART)
                 for r in (1, 4, 100)])
    assert c["lut_mult"].nunique() == 1
    assert list(c["mults"]) == [2048, 512, math.ceil(2048 / 100)]


def test_primitives() -> None:
    assert list(csd_digits(np.array([0, 1, 2, 3, 7, 15, -7, 85, 127]))) == [0, 1, 1, 2, 2, 2, 2, 4, 2]
    e = expected_csd_digits(np.array([2, 4, 8, 16]))
    assert (np.diff(e) > 0).all() and 5 < e[-1] < 6.5
    assert dsp_slices_per_product(np.array([16, 27, 32]), np.array([16, 18, 32]), True).tolist() == [1, 1, 4]
    assert dsp_slices_per_product(np.array([26]), np.array([18]), False).tolist() == [2]  # 25x18
    assert bram18k_for_rom(np.array([18.0]), np.array([1024.0]))[0] == 1
    assert bram18k_for_rom(np.array([0.0]), np.array([1024.0]))[0] == 0
    b, lut = fifo_cost(np.array([16.0, 16 * 32.0]), np.array([1.0, 1024.0]))
    assert b[0] == 0 and lut[0] > 0 and b[1] == math.ceil(512 / 18)  # 1024 x 18 blocks


def test_weight_stats_and_expectation() -> None:
    w = np.array([0.0, 0.25, -0.5, 0.75, 0.001, 1.0])
    s = weight_stats(w, bits=4, scale=0.25)
    # grid steps of 0.25: 0, 1, -2, 3, 0, 4 -> non-zero 4; CSD digits 1 + 1 + 2 + 1
    assert s["n_nonzero"] == 4 and s["csd_digits"] == 5 and s["n_weights"] == 6
    on_grid = weight_stats_expected(np.array([0.25, -0.5, 0.75]), bits=4, scale=0.25)
    assert on_grid["n_nonzero"] == 3 and on_grid["csd_digits"] == 4
    half = weight_stats_expected(np.array([0.125]), bits=4, scale=0.25)  # between 0 and 1
    assert half["n_nonzero"] == pytest.approx(0.5) and half["csd_digits"] == pytest.approx(0.5)


def test_weight_awareness() -> None:
    """Zero weights cost nothing under the Latency strategy; powers of two (one CSD digit) are
    shifts, cheaper than dense weights with three digits each."""
    m = ResourceModel.default()
    base = dict(weight_bits=8, input_bits=8, part=PART)
    dense = LayerSpec("Dense", 64, 32, **base)
    sparse = LayerSpec("Dense", 64, 32, n_nonzero_weights=512, **base)
    pow2 = LayerSpec("Dense", 64, 32, n_nonzero_weights=2048, csd_digits=2048.0, **base)
    rich = LayerSpec("Dense", 64, 32, n_nonzero_weights=2048, csd_digits=3 * 2048.0, **base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        p = m.predict([dense, sparse, pow2, rich])
    assert p["LUT"].iloc[1] < 0.5 * p["LUT"].iloc[0]
    assert p["LUT"].iloc[2] < 0.7 * p["LUT"].iloc[3]
    c = counts(dense, sparse, pow2, rich)
    assert c["lut_mult"].iloc[1] == pytest.approx(c["lut_mult"].iloc[0] / 4)
    # the ROM of the Resource strategy holds zeros too: no saving there
    r = counts(LayerSpec("Dense", 64, 32, reuse_factor=4, strategy="Resource", **base),
               LayerSpec("Dense", 64, 32, reuse_factor=4, strategy="Resource", n_nonzero_weights=512, **base))
    assert r["mults"].iloc[0] == r["mults"].iloc[1]


def test_activation_tables_and_softmax() -> None:
    """Lookup tables (1024 x 18 bits = one BRAM_18K): one copy per two parallel lanes (dual-port
    ROM); softmax adds the inversion table and one exp*inverse product per lane."""
    c = counts(LayerSpec("Activation", 20, 20, activation="sigmoid", part=PART),
               LayerSpec("Softmax", 5, 5, part=PART),
               LayerSpec("Activation", 64, 64, activation="relu", input_bits=16, result_bits=8, part=PART),
               LayerSpec("Activation", 32, 32, out_size=(100,), io_type="io_stream", activation="tanh", part=PART))
    assert list(c["bram_tab"]) == [10, 4, 0, 16]
    assert c["dsp_cand"].tolist() == [0, 5, 0, 0]
    assert c["lut_act"].iloc[2] == 64 * (16 + 8)
    assert c["lat_iter"].iloc[3] == 99 and c["ii_iter"].iloc[3] == 100


def test_pooling_and_stream_fifos() -> None:
    specs = [LayerSpec("Conv2D", 3, 16, (3, 3), (30, 30), 8, 8, io_type="io_stream", part=PART),
             LayerSpec("Pooling2D", 16, 16, (2, 2), (15, 15), input_bits=8, io_type="io_stream", part=PART),
             LayerSpec("Dense", 3600, 10, weight_bits=8, input_bits=8, io_type="io_stream",
                       strategy="Resource", reuse_factor=360, part=PART)]
    c = counts(*specs)
    assert c["ii_iter"].iloc[0] == 32 * 32  # one input pixel per step (valid 3x3 on 32x32)
    assert c["ii_iter"].iloc[1] == 30 * 30
    g = network_glue(specs_to_frame(specs), np.array([1024.0, 900.0, 360.0]))
    assert g["glue_layers"] == 3 and g["glue_fifo_lut"] > 0 and g["glue_stream_ii"] == 1024
    par = network_glue(specs_to_frame([LayerSpec("Dense", 8, 8, part=PART)]), np.array([1.0]))
    assert par["glue_fifo_lut"] == 0 and par["glue_stream_ii"] == 0


def test_dsp_bound_counts_wide_products() -> None:
    d = design(specs_to_frame([LayerSpec("Dense", 8, 8, weight_bits=32, input_bits=32, part=PART),
                               LayerSpec("Dense", 8, 8, weight_bits=16, input_bits=16, part=PART,
                                         n_nonzero_weights=10)]))
    assert d["dsp_max"].tolist() == [64 * 4, 10]
    assert (d["cand"] <= d["dsp_max"]).all()
