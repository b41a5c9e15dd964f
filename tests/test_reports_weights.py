"""Canonical-signed-digit counts, ap_fixed quantization, and per-layer weight columns."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connas4ml_torch.hardware.reports import (
    ReportError,
    ReportWarning,
    parse_weights_txt,
    read_project,
)
from connas4ml_torch.hardware.weights import csd_digits, quantize

NRP = "nrp-nautilus+6nrp-hls4ml/c83384d5a4/model_1/hls4ml_prj"


# ---- csd_digits ------------------------------------------------------------------------------
@pytest.mark.parametrize("n, digits", [
    (0, 0), (1, 1), (2, 1), (3, 2),       # 3 = 4 - 1
    (5, 2), (6, 2), (7, 2),               # 7 = 8 - 1
    (11, 3),                              # 11 = 16 - 4 - 1
    (13, 3),                              # 13 = 16 - 4 + 1
    (15, 2), (21, 3), (23, 3),            # 23 = 32 - 8 - 1
    (85, 4),                              # 1010101: no adjacent non-zeros already
    (127, 2), (255, 2), (256, 1),
    (0b1011011, 4),                       # 91 = 128 - 32 - 4 - 1
    (-1, 1), (-7, 2), (-128, 1), (-85, 4),
    (2**40 - 1, 2), (2**62, 1),
])
def test_csd_digits_exact(n, digits) -> None:
    assert csd_digits(np.array([n]))[0] == digits


def test_csd_digits_shape_and_dtype() -> None:
    out = csd_digits(np.array([[0, 3], [7, -5]], dtype=np.int16))
    assert out.shape == (2, 2) and out.tolist() == [[0, 2], [2, 2]]
    assert csd_digits([1.0, 3.0]).tolist() == [1, 2]
    assert csd_digits(np.array([], dtype=np.int64)).tolist() == []
    with pytest.raises(ValueError):
        csd_digits([0.5])
    with pytest.raises(ValueError):
        csd_digits(np.array(["a"]))


def _naf_reference(n: int) -> int:
    """Textbook non-adjacent form, digit by digit."""
    n, count = abs(n), 0
    while n:
        if n % 2:
            d = 2 - (n % 4)
            n -= d
            count += 1
        n //= 2
    return count


@given(st.lists(st.integers(-(2**40), 2**40), max_size=50))
def test_csd_digits_matches_reference_and_is_minimal(values) -> None:
    got = csd_digits(np.array(values, dtype=np.int64)).tolist()
    assert got == [_naf_reference(v) for v in values]
    for v, d in zip(values, got):  # never more non-zeros than plain binary
        assert d <= bin(abs(v)).count("1")


# ---- quantize --------------------------------------------------------------------------------
def test_quantize_modes() -> None:
    x = [0.3, -0.3, 0.5 / 8, -0.5 / 8, 1.5 / 8, 2.5 / 8]
    assert quantize(x, 3).tolist() == [2, -3, 0, -1, 1, 2]                 # TRN = floor
    assert quantize(x, 3, q_mode="TRN_ZERO").tolist() == [2, -2, 0, 0, 1, 2]
    assert quantize(x, 3, q_mode="RND").tolist() == [2, -2, 1, 0, 2, 3]    # half up
    assert quantize(x, 3, q_mode="RND_CONV").tolist() == [2, -2, 0, 0, 2, 2]  # half to even
    assert quantize(x, 3, q_mode="RND_ZERO").tolist() == [2, -2, 0, 0, 1, 2]
    assert quantize(x, 3, q_mode="RND_INF").tolist() == [2, -2, 1, -1, 2, 3]
    assert quantize(x, 3, q_mode="RND_MIN_INF").tolist() == [2, -2, 0, -1, 1, 2]


def test_quantize_overflow() -> None:
    # ap_fixed<4,1>: 3 fractional bits, range [-1, 0.875] -> integers [-8, 7]
    assert quantize([0.9, 1.0, -1.25], 3, width=4).tolist() == [7, -8, 6]          # WRAP
    assert quantize([0.9, 1.0, -1.25], 3, width=4, o_mode="SAT").tolist() == [7, 7, -8]
    assert quantize([1.0, -0.5], 3, width=3, signed=False, o_mode="SAT").tolist() == [7, 0]
    with pytest.raises(ValueError):
        quantize([np.nan], 3)
    with pytest.raises(ValueError):
        quantize([1.0], 3, q_mode="ROUND_AWAY")


# ---- weight files in a tree -------------------------------------------------------------------
def test_parse_weights_txt(tmp_path) -> None:
    d = tmp_path / "firmware" / "weights"
    d.mkdir(parents=True)
    (d / "w7.txt").write_text("0.5, -0.25, 1e-1,\n0.0")
    w = parse_weights_txt(d / "w7.txt")
    assert (w["tensor"], w["index"], w["values"].tolist()) == ("w", 7, [0.5, -0.25, 0.1, 0.0])
    for bad, why in (("0.5, nan", "non-finite"), ("0.5, abc", "numbers"), ("", "empty"),
                     ("1e300", "absurd"), ("0.5, 0.2.3", "numbers")):
        (d / "w8.txt").write_text(bad)
        with pytest.raises(ReportError, match=why):
            parse_weights_txt(d / "w8.txt")


def test_weight_columns_from_weight_files(tmp_path, reports_dir) -> None:
    """w11.txt pairs with config11 (the 32x5 output layer), quantized with its parameters.h
    weight type ap_fixed<8,3> (5 fractional bits): 0.5 -> 16 (1 CSD digit), -0.25 -> -8 (1),
    0.75 -> 24 = 32 - 8 (2), 0 (0), 0.375 -> 12 = 16 - 4 (2)."""
    prj = tmp_path / "jets"
    shutil.copytree(reports_dir / NRP / "myproject_prj", prj / "myproject_prj")
    fw = prj / "firmware"
    (fw / "weights").mkdir(parents=True)
    (fw / "parameters.h").write_text(
        "// output\nstruct config11 : nnet::dense_config {\n    static const unsigned n_in = 32;\n"
        "    static const unsigned n_out = 5;\n    typedef output_weight_t weight_t;\n};\n"
        "// fc3\nstruct config8 : nnet::dense_config {\n    static const unsigned n_in = 32;\n"
        "    static const unsigned n_out = 32;\n};\n")
    (fw / "defines.h").write_text("typedef ap_fixed<8,3> output_weight_t;\n")
    pattern = [0.5, -0.25, 0.75, 0.0, 0.375]
    (fw / "weights" / "w11.txt").write_text(", ".join(map(str, pattern * 32)))
    (fw / "weights" / "w8.txt").write_text(", ".join(["0.1"] * 1024))  # no weight type stated
    (fw / "weights" / "b11.txt").write_text("1, 2, 3, 4, 5")  # biases: not weights
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReportWarning)
        df = read_project(prj)
    row = df[df["config_index"] == 11].iloc[0]
    assert (row["n_weights"], row["n_nonzero_weights"], row["csd_digits"], row["weights_max_abs"]) \
        == (160, 128, 32 * (1 + 1 + 2 + 0 + 2), 0.75)
    assert row["n_nonzero_quantized"] == 128
    assert "csd_digits=weights/w11.txt" in row["field_sources"]
    r8 = df[df["config_index"] == 8].iloc[0]
    assert (r8["n_weights"], r8["n_nonzero_weights"]) == (1024, 1024)
    assert pd.isna(r8["csd_digits"])  # the weight type is unknown: never guessed
    r2 = df[df["config_index"] == 2].iloc[0]  # no w2.txt
    assert pd.isna(r2["n_weights"]) and pd.isna(r2["csd_digits"])
    relu = df[df["layer_type"] == "Activation"]
    assert relu["n_weights"].isna().all()


def test_weight_file_problems_are_skipped(tmp_path, reports_dir) -> None:
    prj = tmp_path / "jets"
    shutil.copytree(reports_dir / NRP / "myproject_prj", prj / "myproject_prj")
    w = prj / "firmware" / "weights"
    w.mkdir(parents=True)
    (prj / "firmware" / "parameters.h").write_text("struct config2 : nnet::dense_config {};\n")
    (w / "w2.txt").write_text("0.1, inf")
    with pytest.warns(ReportWarning, match="w2.txt: non-finite"):
        df = read_project(prj)
    assert df["n_weights"].isna().all() if "n_weights" in df else True
