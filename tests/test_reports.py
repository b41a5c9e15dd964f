"""Report reading on the real corpus (../shared, skipped when absent) and on broken files."""

from __future__ import annotations

import contextlib
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connas4ml_torch.hardware.reports import (
    ReportError,
    ReportWarning,
    parse_csynth_json,
    parse_csynth_rpt,
    parse_csynth_xml,
    parse_fixed_type,
    parse_function_name,
    parse_hls4ml_config,
    parse_parameters_h,
    parse_vivado_synth_rpt,
    read_project,
    read_reports,
)

NRP = "nrp-nautilus+6nrp-hls4ml/c83384d5a4/model_1/hls4ml_prj"
JZ4 = ("JavierZhao+l1-jet-id-hls4ml/ccee2dfa10/deepsets/bin/trained_deepsets/"
       "deepsinv_synthable_4bits_8const_ptetaphi_kfolds/kfold_0/synthesis_final")
HLS4ML_TEST = "hls4ml/test/pytest/test_report/Vivado"


@pytest.fixture(scope="module")
def corpus(reports_dir) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReportWarning)
        return read_reports(reports_dir, progress=False)


# ---- exact values on known reports ------------------------------------------------------------
def test_hls4ml_test_report_exact(reports_dir) -> None:
    """hls4ml's own fixture (test/pytest/test_report/Vivado): Dense(5)+ReLU, xc7z020, 2020.1."""
    x = parse_csynth_xml(reports_dir / HLS4ML_TEST / "myproject_csynth.xml")
    r = parse_csynth_rpt(reports_dir / HLS4ML_TEST / "myproject_csynth.rpt")
    expect = {"tool_version": "2020.1", "part": "xc7z020-clg400-1", "top": "myproject",
              "clk_target_ns": 5.0, "clk_est_ns": 4.049, "lat_best": 10, "lat_worst": 10,
              "ii_min": 8, "ii_max": 8, "BRAM_18K": 0, "DSP": 73, "FF": 7969, "LUT": 2532,
              "URAM": 0, "avail_BRAM_18K": 280, "avail_DSP": 220, "avail_FF": 106400,
              "avail_LUT": 53200}
    for k, v in expect.items():
        assert x[k] == v, k
        assert r[k] == v, k  # the text report says the same


def test_vitis_project_layers_exact(reports_dir) -> None:
    """The 16-64-32-32-5 jet tagger (Vitis 2022.2, xcu250): one model row, four Dense layers."""
    df = read_project(reports_dir / NRP)
    model = df[df["level"] == "model"].iloc[0]
    assert (model["tool"], model["tool_version"], model["part"]) == ("vitis_hls", "2022.2", "xcu250-figd2104-2l-e")
    assert (model["LUT"], model["FF"], model["DSP"], model["BRAM_18K"]) == (116694, 24233, 2557, 8)
    assert (model["lat_worst"], model["ii_max"], model["clk_est_ns"]) == (15, 1, pytest.approx(3.636))
    dense = df[df["layer_type"] == "Dense"].set_index("config_index").sort_index()
    assert list(dense.index) == [2, 5, 8, 11]
    assert list(dense["LUT"]) == [28385, 53363, 26236, 4344]
    assert list(dense["DSP"]) == [719, 1097, 614, 122]
    assert list(dense["n_out"]) == [64, 32, 32, 5]  # from the ap_return ports
    assert set(dense["strategy"]) == {"Latency"} and set(dense["io_type"]) == {"io_parallel"}
    assert set(dense["input_bits"]) == {16} and set(dense["weight_bits"]) == {16}
    assert set(dense["reuse_factor"]) == {1}
    assert (df["level"] == "layer").sum() == 8


def test_post_synthesis_numbers(reports_dir) -> None:
    vs = parse_vivado_synth_rpt(reports_dir / JZ4 / "vivado_synth.rpt")
    assert (vs["vsynth_LUT"], vs["vsynth_FF"], vs["vsynth_DSP"], vs["vsynth_BRAM_18K"]) == (235359, 90190, 101, 4)
    model = read_project(reports_dir / JZ4).query("level == 'model'").iloc[0]
    assert model["vsynth_LUT"] == 235359 and model["LUT"] == 518548


def test_hls4ml_ci_json(reports_dir) -> None:
    j = parse_csynth_json(reports_dir / "hls4ml/test/pytest/baselines/Vitis/2024.1/test_keras_api_test_dense_io_parallel-Vitis.json")
    assert (j["LUT"], j["FF"], j["DSP"], j["BRAM_18K"], j["lat_worst"]) == (354, 145, 2, 1, 3)
    assert j["avail_DSP"] == 12288


# ---- the whole corpus -------------------------------------------------------------------------
def test_corpus_counts(corpus) -> None:
    scan = corpus.attrs["scan"]
    # 101 top-level csynth reports (72 xml + 29 rpt-only) + 50 hls4ml CI JSON summaries; two
    # conifer trees name their top only by the <name>_prj folder / solution data file (were
    # counted as layer rows before the reader looked there: 149 model, 1180 layer rows)
    assert scan["model_reports"] == 151
    assert scan["projects"] == 151
    assert scan["layer_reports"] == 1178
    assert (corpus["level"] == "layer").sum() == 1178
    # 4 oneAPI ndjson files (not Xilinx) are skipped, each with its reason
    assert scan["skipped"] == len(scan["skipped_files"]) == 4
    assert all(p.endswith(".ndjson") and "oneAPI" in r for p, r in scan["skipped_files"])
    assert set(corpus["tool"].dropna()) == {"vivado_hls", "vitis_hls"}
    assert corpus["LUT"].notna().all()


def test_every_report_file_parsed_or_skipped(corpus, reports_dir) -> None:
    read = {str(Path(p).resolve()) for p in corpus["report"]}
    skipped = {str(Path(p).resolve()) for p, _ in corpus.attrs["scan"]["skipped_files"]}
    dirs_with_model = {str(Path(p).resolve().parent) for p in corpus.loc[corpus["level"] == "model", "report"]}
    dirs_read = {str(Path(p).resolve().parent) for p in read}
    for f in reports_dir.rglob("*csynth.xml"):
        f = str(f.resolve())
        if f in read or f in skipped:
            continue
        # Vitis' csynth.xml copy of <top>_csynth.xml: the folder's model row holds the numbers
        assert Path(f).name == "csynth.xml" and str(Path(f).parent) in dirs_with_model, f
    for f in reports_dir.rglob("*csynth.rpt"):
        # a text report is read when its function has no XML; otherwise the XML was read
        assert str(f.resolve()) in read or str(f.resolve()) in skipped or str(f.resolve().parent) in dirs_read


def test_corpus_agrees_with_index(corpus, reports_dir) -> None:
    """Cross-check the top-level numbers against reports_index.csv (built by someone else)."""
    idx = pd.read_csv(reports_dir / "reports_index.csv")
    models = corpus[corpus["level"] == "model"].copy()
    models["dir"] = [str(Path(p).resolve().parent) for p in models["report"]]
    by_dir = models.set_index("dir")
    n = 0
    for _, r in idx.iterrows():
        d = str((reports_dir / r["report"]).resolve().parent)
        if d not in by_dir.index or pd.isna(r["LUT"]):
            continue
        m = by_dir.loc[[d]].iloc[0]
        for k in ("LUT", "FF", "DSP", "BRAM_18K"):
            assert m[k] == float(r[k]), (r["report"], k)
        n += 1
    assert n >= 75


def test_layer_rows_agree_with_layer_index(corpus, reports_dir) -> None:
    lidx = pd.read_csv(reports_dir / "layer_reports_index.csv")
    lay = corpus[corpus["level"] == "layer"]
    rel = {str(Path(p).resolve()): i for i, p in zip(lay.index, lay["report"])}
    n = 0
    for _, r in lidx.iterrows():
        i = rel.get(str((reports_dir / r["layer_report"]).resolve()))
        if i is None:
            continue
        for k in ("LUT", "FF", "DSP"):
            assert lay.at[i, k] == float(r[k])
        if r["config_struct"] == "dense_config" and str(r["strategy"]) in ("latency", "resource") \
                and lay.at[i, "layer_type"] == "Dense" and pd.notna(lay.at[i, "strategy"]):
            assert lay.at[i, "strategy"].lower() == r["strategy"]
        n += 1
    assert n >= 340


# ---- broken files -----------------------------------------------------------------------------
def test_truncated_and_garbage_files_are_skipped(tmp_path, reports_dir) -> None:
    rep = tmp_path / "prj" / "myproject_prj" / "solution1" / "syn" / "report"
    rep.mkdir(parents=True)
    good = (reports_dir / NRP / "myproject_prj/solution1/syn/report/myproject_csynth.xml").read_bytes()
    (rep / "myproject_csynth.xml").write_bytes(good)
    (rep / "dense_latency_config2_s_csynth.xml").write_bytes(good[: len(good) // 3])  # truncated
    (rep / "relu_config3_s_csynth.xml").write_bytes(b"\x00\xff garbage <<<")
    (rep / "softmax_config4_s_csynth.rpt").write_text("== Vivado HLS Report for 'softmax'\n* Version: 2020.1\n")
    with pytest.warns(ReportWarning) as rec:
        df = read_reports(tmp_path, progress=False)
    msgs = [str(w.message) for w in rec]
    assert any("dense_latency_config2_s_csynth.xml" in m and "XML" in m for m in msgs)
    assert any("relu_config3_s_csynth.xml" in m for m in msgs)
    assert any("softmax_config4_s_csynth.rpt" in m and "Total" in m for m in msgs)
    scan = df.attrs["scan"]
    assert scan["skipped"] == 3 and scan["model_reports"] == 1 and df.iloc[0]["LUT"] == 116694
    with pytest.raises(ReportError, match="dense_latency_config2_s_csynth.xml"):
        parse_csynth_xml(rep / "dense_latency_config2_s_csynth.xml")


def test_users_project_with_parameters_h(tmp_path, reports_dir) -> None:
    """A user's own project: firmware/parameters.h + defines.h state sizes, RF and weight types."""
    prj = tmp_path / "my_hls"
    shutil.copytree(reports_dir / NRP / "myproject_prj", prj / "myproject_prj")
    (prj / "firmware").mkdir()
    (prj / "firmware" / "defines.h").write_text("typedef ap_fixed<6,1> weight2_t;\n")
    (prj / "firmware" / "parameters.h").write_text(
        "struct config2 : nnet::dense_config {\n"
        "    static const unsigned n_in = 16;\n    static const unsigned n_out = 64;\n"
        "    static const unsigned io_type = nnet::io_parallel;\n"
        "    static const unsigned strategy = nnet::latency;\n"
        "    static const unsigned reuse_factor = 4;\n"
        "    typedef ap_fixed<16,6> accum_t;\n    typedef weight2_t weight_t;\n};\n")
    p = parse_parameters_h(prj / "firmware" / "parameters.h", prj / "firmware" / "defines.h")
    assert p[2]["n_in"] == 16 and p[2]["weight_bits"] == 6 and p[2]["reuse_factor"] == 4
    df = read_project(prj)
    row = df[df["config_index"] == 2].iloc[0]
    assert (row["n_in"], row["n_out"], row["weight_bits"], row["reuse_factor"]) == (16, 64, 6, 4)
    assert row["config_source"] == "parameters.h"


def test_small_parsers() -> None:
    assert parse_fixed_type("ap_fixed<16,6,AP_RND,AP_SAT>") == 16
    assert parse_fixed_type("fixed<4,1>") == 4 and parse_fixed_type("ap_uint<3>") == 3
    fn = parse_function_name("dense_latency_ap_ufixed_8_0_4_0_0_ap_fixed_12_4_5_3_0_config5_s")
    assert (fn["layer_type"], fn["strategy"], fn["input_bits"], fn["result_bits"], fn["config_index"]) \
        == ("Dense", "Latency", 8, 12, 5)
    fn = parse_function_name("dense_array_ap_ufixed_32u_array_ap_fixed_19_12_5_3_0_32u_config9_s")
    assert fn["io_type"] == "io_stream" and fn.get("input_bits") is None and fn["result_bits"] == 19
    # layers other than Dense/Conv carry their hls4ml class (was "other" before)
    relu = parse_function_name("relu_ap_fixed_16_6_5_3_0_ap_fixed_16_6_5_3_0_relu_config4_s")
    assert (relu["layer_type"], relu["activation"]) == ("Activation", "relu")


def test_hls4ml_config_with_custom_tags(tmp_path) -> None:
    f = tmp_path / "hls4ml_config.yml"
    f.write_text("Backend: Vitis\nIOType: io_stream\nKerasModel: !keras_model 'x.keras'\nPart: XCVU13P\n"
                 "HLSConfig:\n  Model:\n    Precision: fixed<8,3>\n    ReuseFactor: 2\n    Strategy: Resource\n")
    c = parse_hls4ml_config(f)
    assert (c["cfg_backend"], c["cfg_io_type"], c["cfg_part"], c["cfg_reuse"], c["cfg_strategy"]) == \
        ("Vitis", "io_stream", "xcvu13p", 2, "Resource")
    f.write_text("HLSConfig: [unclosed")
    with pytest.raises(ReportError, match="YAML"):
        parse_hls4ml_config(f)


def test_missing_folder_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nothere"):
        read_reports(tmp_path / "nothere", progress=False)


# ---- property-based: only ReportError escapes -------------------------------------------------
_PARSERS = (parse_csynth_xml, parse_csynth_rpt, parse_vivado_synth_rpt, parse_csynth_json,
            parse_hls4ml_config)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000))
def test_random_bytes_only_raise_report_error(tmp_path, data: bytes) -> None:
    f = tmp_path / "x_csynth.xml"
    f.write_bytes(data)
    for parse in _PARSERS:
        with contextlib.suppress(ReportError):
            parse(f)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0, 1), pos=st.floats(0, 1), junk=st.binary(min_size=1, max_size=40),
       which=st.sampled_from(["myproject_csynth.xml", "myproject_csynth.rpt"]))
def test_mutated_real_reports_only_raise_report_error(tmp_path, reports_dir, cut, pos, junk, which) -> None:
    src = (reports_dir / HLS4ML_TEST / which).read_bytes()
    n = int(len(src) * cut)
    i = int(n * pos)
    mutated = src[:i] + junk + src[i + len(junk):n]
    f = tmp_path / which
    f.write_bytes(mutated)
    parse = parse_csynth_xml if which.endswith(".xml") else parse_csynth_rpt
    try:
        rec = parse(f)
    except ReportError:
        return
    assert rec["LUT"] is None or rec["LUT"] >= 0
