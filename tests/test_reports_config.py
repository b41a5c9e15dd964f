"""Layer configuration from every source a tree holds: exact values on real corpus trees (read in
place) and on small trees built in tmp_path from real reports plus hls4ml-format config files."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest

from connas4ml_torch.hardware.analytic.reports import rows_to_specs
from connas4ml_torch.hardware.reports import (
    REGISTRY,
    ReportError,
    ReportWarning,
    fixed_type,
    parse_csynth_xml,
    parse_fixed_type,
    parse_function_name,
    parse_parameters_h,
    parser_for,
    read_project,
    read_reports,
)
from connas4ml_torch.hardware.reports.hls4ml_layers import closest_reuse_factor, struct_fields

NRP = "nrp-nautilus+6nrp-hls4ml/c83384d5a4/model_1/hls4ml_prj"
GAUSS = "uw-acme+HLS4ML_VS_MANUAL/070cfbd5d7/src/hdl/RHEED_Gaussian/hls4ml/gaussian_new_hls4ml_prj"
DEEPSETS = ("JavierZhao+l1-jet-id-hls4ml/ccee2dfa10/deepsets/bin/trained_deepsets/"
            "deepsinv_synthable_4bits_8const_ptetaphi_kfolds/kfold_0/synthesis_final")
CONIFER = "MinhNguy3n+hls4ml-tutorial/f3793a3b4f"
SPEHIC = "Spehic+Diplomska-hls4ml/08539a9273/mnist/qkeras-pruned/my-hls-test"
REPORT = "myproject_prj/solution1/syn/report"


def _read(path: Path) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReportWarning)
        return read_project(path)


def _by_config(df: pd.DataFrame, op: str) -> pd.DataFrame:
    return df[df["op"] == op].set_index("config_index").sort_index()


# ---- 3. every spelling of a fixed-point type -------------------------------------------------
@pytest.mark.parametrize("text, width, integer, signed, q, o", [
    ("ap_fixed<16,6>", 16, 6, True, "TRN", "WRAP"),
    ("ap_fixed<16, 6, AP_RND_CONV, AP_SAT>", 16, 6, True, "RND_CONV", "SAT"),
    ("ap_ufixed<8,0>", 8, 0, False, "TRN", "WRAP"),
    ("ap_int<8>", 8, 8, True, "TRN", "WRAP"),
    ("ap_uint<1>", 1, 1, False, "TRN", "WRAP"),
    ("ap_fixed<1,1>", 1, 1, True, "TRN", "WRAP"),
    ("fixed<8,3,RND,SAT>", 8, 3, True, "RND", "SAT"),
    ("ufixed<8,0,RND_CONV,SAT>", 8, 0, False, "RND_CONV", "SAT"),
    ("ap_fixed<8,-2>", 8, -2, True, "TRN", "WRAP"),
    ("ap_fixed_16_6_5_3_0", 16, 6, True, "TRN", "WRAP"),  # mangled: Q=5 (TRN), O=3 (WRAP)
    ("ap_ufixed_8_0_4_0_0", 8, 0, False, "RND_CONV", "SAT"),
    ("ap_uint_1", 1, 1, False, "TRN", "WRAP"),
    ("ap_int_8", 8, 8, True, "TRN", "WRAP"),
    ("ap_fixed<16, 6, 5, 3, 0>", 16, 6, True, "TRN", "WRAP"),  # Vitis' <Object> spelling
])
def test_fixed_type_spellings(text, width, integer, signed, q, o) -> None:
    t = fixed_type(text)
    assert (t.width, t.integer, t.signed, t.q_mode, t.o_mode) == (width, integer, signed, q, o)
    assert parse_fixed_type(text) == width


@pytest.mark.parametrize("text", [None, "", "float", "double", "ap_fixed", "ap_fixed<>",
                                  "ap_fixed<0,0>", "ap_fixed<99999,1>", 16])
def test_fixed_type_refuses_non_types(text) -> None:
    assert fixed_type(text) is None and parse_fixed_type(text) is None


@pytest.mark.parametrize("name, cfg, ltype, in_bits, res_bits", [
    ("dense_latency_ap_uint_1_ap_int_8_config2_s", 2, "Dense", 1, 8),
    ("dense_latency_ap_fixed_1_1_5_3_0_ap_fixed_16_6_5_3_0_config3_s", 3, "Dense", 1, 16),
    ("dense_latency_ap_ufixed_8_0_4_0_0_ap_fixed_12_4_5_3_0_config5_s", 5, "Dense", 8, 12),
    ("relu_ap_fixed_16_6_5_3_0_ap_ufixed_8_0_0_0_0_relu_config7_s", 7, "Activation", 16, 8),
    ("conv_2d_cl_array_ap_ufixed_1u_array_ap_fixed_8_2_5_3_0_6u_config2_s", 2, "Conv2D", None, 8),
    ("reduce_ap_fixed_18_8_5_3_0_25_OpAdd_ap_fixed_18_8_5_3_0_s", None, "other", 18, 18),
])
def test_no_type_spelling_loses_the_config(name, cfg, ltype, in_bits, res_bits) -> None:
    fn = parse_function_name(name)
    assert (fn.get("config_index"), fn["layer_type"], fn.get("input_bits"),
            fn.get("result_bits")) == (cfg, ltype, in_bits, res_bits)


def test_function_name_parts() -> None:
    fn = parse_function_name("conv_2d_cl_array_ap_ufixed_1u_array_ap_fixed_8_2_5_3_0_6u_config2_s")
    assert (fn["op"], fn["io_type"], fn["in_array"], fn["out_array"]) == \
        ("conv_2d_cl", "io_stream", 1, 6)
    fn = parse_function_name("dense_resource_rf_leq_nin_ap_ufixed_ap_fixed_config6_mult_0_0_0_0_0")
    assert (fn["config_index"], fn["config_name"], fn["sub_config"], fn["truncated"]) == \
        (6, "config6_mult", True, True)
    fn = parse_function_name("sigmoid_ap_fixed_ap_fixed_18_8_5_3_0_sigmoid_config2_recr_s")
    assert (fn["config_name"], fn["sub_config"], fn["activation"]) == \
        ("sigmoid_config2_recr", True, "sigmoid")
    fn = parse_function_name("softmax_stable_ap_fixed_ap_fixed_16_6_5_3_0_Softmax_config18_s")
    assert (fn["layer_type"], fn["activation"], fn["implementation"], fn["config_index"]) == \
        ("Softmax", "softmax", "stable", 18)
    # Vitis' unmangled signature wins over the cut mangled name
    fn = parse_function_name("dense_latency_ap_fixed_ap_fixed_config2_0_0_0_0_0",
                             "dense_latency<ap_fixed<16, 6, 5, 3, 0>, ap_ufixed<8, 0, 4, 0, 0>, "
                             "config2>")
    assert (fn["input_bits"], fn["result_type"], fn["config_index"]) == \
        (16, "ap_ufixed<8,0,AP_RND_CONV,AP_SAT>", 2)
    fn = parse_function_name("gru_static_x", "gru_static<ap_fixed<20, 10, 5, 3, 0>, "
                             "ap_fixed<20, 10, 5, 3, 0>, config2, false>")
    assert (fn["layer_type"], fn["config_index"], fn["config_name"]) == ("GRU", 2, "config2")


# ---- 1. every configuration source ------------------------------------------------------------
def test_layername_entries_paired_by_name_order(reports_dir) -> None:
    """gaussian_new: LayerName q_dense/q_dense_1/q_dense_2 (RF 10/15/10) are the Dense layers
    config15/18/21 in that order (as parameters.h states them, see layer_reports_index.csv)."""
    df = _read(reports_dir / GAUSS)
    dense = _by_config(df, "dense")
    assert list(dense.index) == [15, 18, 21]
    assert list(dense["reuse_factor"]) == [10, 15, 10]
    assert list(dense["layer_name"]) == ["q_dense", "q_dense_1", "q_dense_2"]
    assert set(dense["weight_bits"]) == {8} and set(dense["strategy"]) == {"Resource"}
    assert list(dense["n_in"]) == [10, 15, 10] and list(dense["n_out"]) == [15, 10, 5]
    assert "reuse_factor=hls4ml_config.yml:LayerName[q_dense_1] (paired by name order)" in \
        dense.loc[18, "field_sources"]
    # the convs' requested RFs: kept as requested, not as effective (hls4ml would validate them
    # against n_chan * kernel, and the kernel is stated nowhere in this tree)
    conv = _by_config(df, "conv_2d_cl")
    assert list(conv["reuse_factor_requested"]) == [9, 9, 8]
    assert conv["reuse_factor"].isna().all()
    assert list(conv["n_in"]) == [1, 6, 8] and list(conv["n_out"]) == [6, 8, 10]  # stream arrays


def test_layername_pointwise_convs_and_blocked_defaults(reports_dir) -> None:
    """DeepSets: phi1..3 (ConvImplementation: Pointwise) are config19..21 with RF 2 and
    weights fixed<4,1>; the two Dense entries (dense: 16 bits, rho: 4 bits) cannot be told
    apart without parameters.h, so config16's weight width stays unknown (not the default 16)."""
    df = _read(reports_dir / DEEPSETS)
    pw = _by_config(df, "pointwise_conv_1d_cl")
    assert list(pw.index) == [19, 20, 21]
    assert list(pw["layer_name"]) == ["phi1", "phi2", "phi3"]
    assert set(pw["reuse_factor"]) == {2} and set(pw["weight_bits"]) == {4}
    d16 = df[df["config_index"] == 16].iloc[0]
    assert (d16["layer_type"], d16["n_in"], d16["n_out"], d16["reuse_factor"]) == ("Dense", 32, 5, 1)
    assert pd.isna(d16["weight_bits"])


def test_parameters_h_wins_and_pairs_layer_names(tmp_path, reports_dir) -> None:
    """A user's tree: parameters.h sizes beat the ports (which undercount), its ``// name``
    comments pair hls4ml_config.yml's LayerName entries exactly."""
    prj = _nrp_tree(tmp_path, reports_dir)
    df = _read(prj)
    dense = _by_config(df, "dense_latency")
    assert list(dense["n_in"]) == [16, 64, 32, 32] and list(dense["n_out"]) == [64, 32, 32, 5]
    assert list(dense["reuse_factor"]) == [1, 2, 1, 1]  # fc2's RF from parameters.h
    assert list(dense["weight_bits"]) == [16, 8, 16, 16]
    assert list(dense["layer_name"]) == ["fc1", "fc2", "fc3", "output"]
    assert set(dense["config_source"]) == {"parameters.h"}
    assert "n_in=parameters.h" in dense.loc[5, "field_sources"]
    relu = _by_config(df, "relu")
    assert list(relu["n_in"]) == [64, 32, 32] and list(relu["table_size"]) == [1024] * 3
    assert list(relu["table_bits"]) == [18] * 3 and set(relu["layer_type"]) == {"Activation"}
    sm = df[df["layer_type"] == "Softmax"].iloc[0]
    assert (sm["n_in"], sm["implementation"], sm["table_size"]) == (5, "stable", 1024)


def _nrp_tree(tmp_path: Path, reports_dir: Path) -> Path:
    """The NRP jet tagger's real reports plus hls4ml-1.x-format firmware files."""
    prj = tmp_path / "jets"
    shutil.copytree(reports_dir / NRP / "myproject_prj", prj / "myproject_prj")
    shutil.copy(reports_dir / NRP / "hls4ml_config.yml", prj / "hls4ml_config.yml")
    fw = prj / "firmware"
    (fw / "weights").mkdir(parents=True)
    (fw / "defines.h").write_text(
        "typedef ap_fixed<16,6> input_t;\ntypedef ap_fixed<16,6> fc1_weight_t;\n"
        "typedef ap_fixed<8,3> fc2_weight_t;\ntypedef ap_fixed<16,6> fc3_weight_t;\n"
        "typedef ap_fixed<16,6> output_weight_t;\ntypedef ap_fixed<18,8> relu_table_t;\n"
        "typedef ap_fixed<18,8,AP_RND,AP_SAT,0> softmax_exp_table_t;\n")
    body = []
    for k, (name, n_in, n_out, rf) in {2: ("fc1", 16, 64, 1), 5: ("fc2", 64, 32, 2),
                                       8: ("fc3", 32, 32, 1), 11: ("output", 32, 5, 1)}.items():
        body.append(
            f"// {name}\nstruct config{k} : nnet::dense_config {{\n"
            f"    static const unsigned n_in = {n_in};\n    static const unsigned n_out = {n_out};\n"
            "    static const unsigned io_type = nnet::io_parallel;\n"
            "    static const unsigned strategy = nnet::latency;\n"
            f"    static const unsigned reuse_factor = {rf};\n"
            "    static const unsigned multiplier_limit = DIV_ROUNDUP(n_in * n_out, reuse_factor);\n"
            f"    typedef {name}_weight_t weight_t;\n"
            "    template<class data_T, class res_T, class CONFIG_T>\n"
            "    using kernel = nnet::DenseLatency<data_T, res_T, CONFIG_T>;\n}};\n")
    for k, n in ((4, 64), (7, 32), (10, 32)):
        body.append(f"// relu{k}\nstruct relu_config{k} : nnet::activ_config {{\n"
                    f"    static const unsigned n_in = {n};\n"
                    "    static const unsigned table_size = 1024;\n"
                    "    static const unsigned io_type = nnet::io_parallel;\n"
                    "    typedef relu_table_t table_t;\n};\n")
    body.append("// softmax\nstruct softmax_config13 : nnet::activ_config {\n"
                "    static const unsigned n_in = 5;\n    static const unsigned exp_table_size = 1024;\n"
                "    static const nnet::softmax_implementation implementation = "
                "nnet::softmax_implementation::stable;\n"
                "    typedef softmax_exp_table_t exp_table_t;\n};\n")
    (fw / "parameters.h").write_text("#include \"defines.h\"\n\n" + "\n".join(body))
    cfg = (prj / "hls4ml_config.yml").read_text()
    (prj / "hls4ml_config.yml").write_text(cfg.replace(
        "HLSConfig:\n", "HLSConfig:\n  LayerName:\n    fc2:\n      Precision:\n"
        "        weight: ap_fixed<8,3>\n      ReuseFactor: 2\n"))
    return prj


def test_parameters_h_format_details(tmp_path) -> None:
    """Members as macros and arithmetic, structs without a base, multi-line values, enums."""
    f = tmp_path / "firmware" / "parameters.h"
    f.parent.mkdir()
    (f.parent / "defines.h").write_text("#define N_INPUT_1_1 16\n#define N_LAYER_2 (2 * 32)\n"
                                        "typedef ap_ufixed<8,0,AP_RND_CONV,AP_SAT> w2_t;\n")
    f.write_text(
        "// transpose\nstruct config9 {\n    static const unsigned dims = 2;\n};\n"
        "// fc1\nstruct config2 : nnet::dense_config {\n"
        "    static const unsigned n_in = N_INPUT_1_1;\n    static const unsigned n_out = N_LAYER_2;\n"
        "    static const unsigned reuse_factor = 4;\n    static const unsigned multiplier_limit =\n"
        "        DIV_ROUNDUP(n_in * n_out, reuse_factor) - 0 / reuse_factor;\n"
        "    static const nnet::conv_implementation implementation = "
        "nnet::conv_implementation::linebuffer;\n"
        "    static const bool store_weights_in_bram = false;\n    typedef w2_t weight_t;\n};\n"
        "struct config2_mult : nnet::dense_config {\n    static const unsigned n_in = 9;\n};\n")
    p = parse_parameters_h(f, f.parent / "defines.h")
    c2 = p[2]
    assert (c2["n_in"], c2["n_out"], c2["multiplier_limit"], c2["implementation"]) == \
        (16, 64, 256, "linebuffer")
    assert (c2["weight_bits"], c2["weight_type"], c2["layer_name"]) == \
        (8, "ap_ufixed<8,0,AP_RND_CONV,AP_SAT>", "fc1")
    assert c2["store_weights_in_bram"] is False and list(c2["subconfigs"]) == ["config2_mult"]
    assert p[9]["config_struct"] is None and p[9]["dims"] == 2


# ---- 2. names cut by Vivado -------------------------------------------------------------------
def _cut_copy(src: Path, dst: Path, new_top: str) -> None:
    text = src.read_text()
    old_top = src.name.removesuffix("_csynth.xml")
    text = text.replace(f"<TopModelName>{old_top}</TopModelName>",
                        f"<TopModelName>{new_top}</TopModelName>")
    # Vivado 2019-style <Object> without the template arguments
    import re
    text = re.sub(r"<Object>dense_latency&lt;.*?</Object>", "<Object>dense_latency.0.0</Object>",
                  text)
    (dst / f"{new_top}_csynth.xml").write_text(text)


def test_cut_names_matched_to_config_structs(tmp_path, reports_dir) -> None:
    """Two Dense reports whose names lost the config index: the one with 64 input ports can only
    be config5 (n_in 64); the other takes the struct that is left (config8)."""
    prj = _nrp_tree(tmp_path, reports_dir)
    rep = prj / REPORT
    for k, cut in ((5, "dense_latency_0_0_0_0_0_0_0_0_0_0_1"), (8, "dense_latency_0_0_0_0_0_0_0_0_0_0_s")):
        f = rep / f"dense_latency_ap_fixed_16_6_5_3_0_ap_fixed_16_6_5_3_0_config{k}_s_csynth.xml"
        _cut_copy(f, rep, cut)
        f.unlink()
        f.with_suffix(".rpt").unlink(missing_ok=True)
    df = _read(prj)
    cut = df[df["top"].str.startswith("dense_latency_0")].set_index("top")
    assert cut.loc["dense_latency_0_0_0_0_0_0_0_0_0_0_1", "config_index"] == 5
    assert cut.loc["dense_latency_0_0_0_0_0_0_0_0_0_0_s", "config_index"] == 8
    assert list(cut["n_in"]) == [64, 32] and list(cut["layer_name"]) == ["fc2", "fc3"]
    assert "the only struct its ports fit" in cut.iloc[0]["field_sources"]


def test_cut_names_paired_by_vivado_suffix_order(tmp_path, reports_dir) -> None:
    """Look-alikes (same ports) pair with the structs left in the order _s, _1, _2."""
    prj = _nrp_tree(tmp_path, reports_dir)
    rep = prj / REPORT
    src = rep / "dense_latency_ap_fixed_16_6_5_3_0_ap_fixed_16_6_5_3_0_config8_s_csynth.xml"
    for cut in ("dense_latency_0_0_0_0_0_0_0_0_0_0_2", "dense_latency_0_0_0_0_0_0_0_0_0_0_s"):
        _cut_copy(src, rep, cut)
    for k in (5, 8):
        for ext in (".xml", ".rpt"):
            (rep / f"dense_latency_ap_fixed_16_6_5_3_0_ap_fixed_16_6_5_3_0_config{k}_s_csynth"
                   f"{ext}").unlink(missing_ok=True)
    ph = prj / "firmware" / "parameters.h"
    ph.write_text(ph.read_text().replace("n_in = 64", "n_in = 32"))  # both fit now
    df = _read(prj)
    cut = df[df["top"].str.startswith("dense_latency_0")].set_index("top")["config_index"]
    assert cut.to_dict() == {"dense_latency_0_0_0_0_0_0_0_0_0_0_2": 8,
                             "dense_latency_0_0_0_0_0_0_0_0_0_0_s": 5}


def test_cut_names_without_parameters_h_are_reported(reports_dir) -> None:
    df = read_reports(reports_dir / DEEPSETS, progress=False)
    uncfg = {Path(r).name: (m, why) for r, m, why in df.attrs["scan"]["unconfigured"]}
    m, why = uncfg["dense_latency_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_0_"
                   "0_0_csynth.xml"]
    assert "weight_bits" in m
    assert "cut by Vivado" in why and "no parameters.h" in why


# ---- 4. the top function ----------------------------------------------------------------------
def test_top_named_only_by_the_prj_folder(reports_dir) -> None:
    """conifer's my_prj: no hls4ml_config.yml, no .app; the top is the folder's name."""
    df = _read(reports_dir / CONIFER / "model_5/my_prj")
    model = df[df["level"] == "model"]
    assert list(model["top"]) == ["my_prj"]
    assert (model.iloc[0]["LUT"], model.iloc[0]["lat_worst"]) == (245530, 16)
    assert (df["level"] == "layer").sum() == 127


def test_top_from_solution_data_json(reports_dir) -> None:
    df = _read(reports_dir / CONIFER / "model_5_pynq/conifer_jettag")
    model = df[df["level"] == "model"].iloc[0]
    assert (model["top"], model["LUT"]) == ("conifer_jettag_accelerator", 259848)


def test_hls_project_files(reports_dir) -> None:
    app = reports_dir / "Lrozzy+hls4ml-tutorial/5efbda96f4/model_5_pynq/conifer_jettag/hls.app"
    aps = reports_dir / NRP / "myproject_prj/solution1/solution1.aps"
    p = parser_for(app)
    assert p.name == "hls_project" and p.parse(app)["top"] == "conifer_jettag_accelerator"
    d = parser_for(aps).parse(aps)
    assert (d["part"], d["clk_target_ns"], d["solution"]) == ("xcu250-figd2104-2L-e", 5.0,
                                                               "solution1")


# ---- 5. layers other than Dense/Conv ------------------------------------------------------------
def test_activation_softmax_pooling_rows(reports_dir) -> None:
    df = _read(reports_dir / NRP)
    relu = _by_config(df, "relu")
    assert set(relu["layer_type"]) == {"Activation"} and set(relu["activation"]) == {"relu"}
    assert list(relu["n_in"]) == [64, 32, 32]  # io_parallel ports, marked as such
    assert all("n_in=ports" in s for s in relu["field_sources"])
    sm = df[df["layer_type"] == "Softmax"].iloc[0]
    assert (sm["config_index"], sm["activation"], sm["n_in"], sm["LUT"]) == (13, "softmax", 5, 742)
    ds = _read(reports_dir / DEEPSETS)
    gp = ds[ds["layer_type"] == "GlobalPooling1D"].iloc[0]
    assert (gp["config_index"], gp["n_in"], gp["n_out"]) == (12, 256, 32)
    # the project's avg_* helper names the pooling's operation; hls4ml's n_in of a global
    # pooling is its positions: 256 ports over 32 channels are 8 (the helper's avg<..., 8>)
    assert gp["activation"] == "average" and "average helper" in gp["field_sources"]
    specs, _ = rows_to_specs(ds[ds["layer_type"] == "GlobalPooling1D"].head(1))
    assert (specs.iloc[0]["n_in"], specs.iloc[0]["kernel"], specs.iloc[0]["activation"]) == \
        (32, (8,), "average")
    sp = _read(reports_dir / SPEHIC)
    assert set(sp.loc[sp["op"] == "pooling2d_cl", "layer_type"]) == {"Pooling2D"}
    assert set(sp.loc[sp["op"] == "zeropad2d_cl", "layer_type"]) <= {"ZeroPadding2D"}


def test_corpus_layer_types(reports_dir) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReportWarning)
        df = read_reports(reports_dir, progress=False)
    lay = df[df["level"] == "layer"]
    counts = lay["layer_type"].value_counts().to_dict()
    for t in ("Dense", "Conv1D", "Conv2D", "Activation", "Softmax", "Pooling2D",
              "GlobalPooling1D", "ZeroPadding2D", "Resize", "BatchNormalization", "GRU", "LSTM"):
        assert counts.get(t, 0) > 0, t
    # the helpers of a conv (its dense product, line buffer) carry the conv's type, not Dense
    assert set(lay.loc[lay["top"].str.contains("config2_mult"), "layer_type"]) <= {"Conv1D",
                                                                                    "Conv2D"}
    assert not lay.loc[lay["op"] == "shift_line_buffer", "layer_type"].isin(["other"]).any()
    assert "latency" in df and (df["latency"].dropna() == df["lat_worst"].dropna()).all()
    assert "latency_cycles" not in df


# ---- 7. what could not be configured --------------------------------------------------------
def test_unconfigured_list_and_field_sources(reports_dir) -> None:
    df = read_reports(reports_dir / GAUSS, progress=False)
    uncfg = df.attrs["scan"]["unconfigured"]
    conv = [(Path(r).name, m, why) for r, m, why in uncfg if "conv_2d_cl" in r]
    assert len(conv) == 3
    name, missing, why = conv[0]
    assert missing == ["reuse_factor", "kernel", "out_size"]
    assert "no firmware/parameters.h" in why and "requested reuse factor" in why
    dense = df[df["op"] == "dense"]
    assert not any("/dense_array" in r for r, _, _ in uncfg)
    assert all(s.count("=") >= 8 for s in dense["field_sources"])


def test_cli_scan_prints_unconfigured_summary(reports_dir, capsys) -> None:
    from connas4ml_torch.cli import main

    assert main(["reports", "scan", str(reports_dir / GAUSS), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "layer reports not fully configured" in out and "missing kernel" in out


# ---- the effective reuse factor -------------------------------------------------------------
@pytest.mark.parametrize("n_in, n_out, asked, used", [
    (128, 256, 30, 32), (50, 10, 30, 25), (20, 64, 30, 20), (64, 1, 30, 32), (16, 5, 4096, 80),
    (3200, 32, 4096, 3200), (10, 15, 10, 10), (288, 32, 64, 72), (16, 64, 1, 1),
])
def test_closest_reuse_factor_is_hls4mls(n_in, n_out, asked, used) -> None:
    """The pairs are layer_reports_index.csv's (parameters.h) RFs of layers whose
    hls4ml_config.yml asked for another one."""
    assert closest_reuse_factor(n_in, n_out, asked) == used


def test_requested_rf_replaced_by_hls4mls_choice(reports_dir) -> None:
    """ftag GRU benchmark: ReuseFactor 30 asked for 120x50, 50x10 and 10x3 Dense layers;
    parameters.h (layer_reports_index.csv) says 30, 25, 30."""
    df = _read(reports_dir / "uw-acme+HLS4ML_VS_MANUAL/79a401e022/documents/Benchmarks/RNN/"
                             "ftag/hls/ftag_gru_hls4ml_prj")
    d = _by_config(df, "dense_resource")
    d = d[d["layer_type"] == "Dense"]
    assert d.loc[[3, 5, 7], "reuse_factor"].tolist() == [30, 25, 30]
    assert set(d["reuse_factor_requested"]) == {30}


# ---- the registry ---------------------------------------------------------------------------
def test_every_format_has_a_parser() -> None:
    names = {p.name for p in REGISTRY}
    assert {"vivado_csynth_xml", "vitis_csynth_xml", "csynth_rpt", "vitis_summary_rpt",
            "csynth_json", "vivado_synth_rpt", "hls4ml_config", "parameters_h", "defines_h",
            "weights_txt", "hls_project", "ntorc_table"} <= names


def test_parser_choice_by_name_and_sniff(reports_dir, tmp_path) -> None:
    rep = reports_dir / NRP / REPORT
    assert parser_for(rep / "myproject_csynth.xml").name == "vitis_csynth_xml"
    assert parser_for(reports_dir / "hls4ml/test/pytest/test_report/Vivado/myproject_csynth.xml"
                      ).name == "vivado_csynth_xml"
    assert parser_for(rep / "csynth.rpt").name == "vitis_summary_rpt"
    assert parser_for(rep / "myproject_csynth.rpt").name == "csynth_rpt"
    renamed = tmp_path / "model4_rf2_core.rpt"  # a csynth report under another name
    renamed.write_bytes((rep / "myproject_csynth.rpt").read_bytes())
    assert parser_for(renamed).name == "csynth_rpt"
    assert parser_for(tmp_path / "notes.txt") is None
    x = parse_csynth_xml(rep / "myproject_csynth.xml")
    assert x["tool_hint"] == "vitis_hls"
    with pytest.raises(ReportError):
        parser_for(rep / "csynth.rpt").parse(rep / "myproject_csynth.xml")


def test_io_type_deduced_from_the_projects_function_types(reports_dir) -> None:
    """mgrailoo's SVHN model: no hls4ml_config.yml; its typed functions show no stream arrays."""
    df = _read(reports_dir / "mgrailoo+HLS4ML_Poisioned_CPP_HDL_8b_SVHN")
    typed = df[(df["level"] == "layer") & df["layer_type"].isin(["Dense", "Conv2D"]) &
               df["config_index"].notna()]
    assert len(typed) and set(typed["io_type"]) == {"io_parallel"}
    assert all("io_type=name (the project's other functions' types)" in s
               for s in typed["field_sources"])
    stream = _read(reports_dir / GAUSS)
    assert set(stream.loc[stream["level"] == "layer", "io_type"].dropna()) == {"io_stream"}


def test_find_report_dirs_names_the_parsers(reports_dir, tmp_path) -> None:
    from connas4ml_torch.hardware.reports import find_report_dirs

    groups = find_report_dirs(reports_dir / NRP)
    (files,) = groups.values()
    kinds = {f.name: k for f, k in files}
    assert kinds["myproject_csynth.xml"] == "vitis_csynth_xml"
    assert kinds["csynth.rpt"] == "vitis_summary_rpt" and len(kinds) == 18  # 9 xml, 9 rpt
    shutil.copy(reports_dir / NRP / "hls4ml_config.yml", tmp_path / "hls4ml_config.yml")
    with pytest.warns(ReportWarning, match="no synthesis report found"):
        assert len(read_project(tmp_path)) == 0


def test_global_pooling_positions_whatever_counted_its_inputs() -> None:
    """hls4ml's n_in of a global pooling is its positions; the reader's n_in (RTL ports, or
    parameters.h's n_in x n_filt) counts every position's channels, an index's is hls4ml's."""
    rows = pd.DataFrame([dict(level="layer", layer_type="GlobalPooling1D", top="global_pooling1d_cl_x",
                              io_type="io_parallel", n_in=n, n_filt=c, input_bits=16, result_bits=16,
                              field_sources=src, activation="max", part="xcvu13p-flga2577-2-e")
                         for n, c, src in ((256, 32, "n_in=parameters.h"), (2048, 16, "n_in=ports"),
                                           (128, 16, ""))])
    specs, status = rows_to_specs(rows)
    assert list(status) == ["ok"] * 3 and list(specs["activation"]) == ["max"] * 3
    assert list(specs["kernel"]) == [(8,), (128,), (128,)] and list(specs["n_in"]) == [32, 16, 16]


def test_pooling_sized_by_parameters_h_kernel_and_output() -> None:
    """A pooling whose struct gave only its sizes (kernel, output pixels, n_out = pixels x
    channels), no per-field columns: the channels are n_out over the output pixels."""
    rows = pd.DataFrame([dict(level="layer", layer_type="Pooling2D", top="pooling2d_cl_array_x_8u_config4_s",
                              io_type="io_stream", n_in=8192, n_out=2048, kernel=(2, 2), out_size=(16, 16),
                              input_bits=32, result_bits=32, part="xc7z020-clg400-1")])
    specs, status = rows_to_specs(rows)
    assert list(status) == ["ok"]
    assert (specs["n_in"].iloc[0], specs["kernel"].iloc[0], specs["out_size"].iloc[0]) == (8, (2, 2), (16, 16))


def test_copy_layers_are_modeled_and_unknown_stream_words_are_not_guessed() -> None:
    """Zero padding and nearest resize (hls4ml inserts padding before every io_stream 'same'
    conv) are layers the model costs, over their OUTPUT pixels; an io_stream element-wise layer
    whose word size nothing states is unconfigured when it is a feature map, one word when small."""
    base = dict(level="layer", io_type="io_stream", input_bits=32, result_bits=32, part="xc7z020-clg400-1")
    rows = pd.DataFrame([
        dict(base, layer_type="ZeroPadding2D", top="zeropad2d_cl_array_array_ap_fixed_8u_config23_s",
             n_in=2048, n_out=2592),
        dict(base, top="resize_nearest_array_ap_fixed_4u_config13_s", n_in=64, n_out=256),
        dict(base, layer_type="Activation", activation="leaky_relu", top="leaky_relu_config7_s",
             n_in=24640),
        dict(base, layer_type="Activation", activation="tanh", top="tanh_config2_s", n_in=32),
    ])
    specs, status = rows_to_specs(rows)
    assert list(status) == ["ok", "ok", "unconfigured", "ok"]
    assert list(specs["layer_type"][:2]) == ["ZeroPadding2D", "Resize"]
    assert specs["n_in"].iloc[0] == 8 and specs["out_size"].iloc[0] == (324,)
    assert specs["n_in"].iloc[1] == 4 and specs["out_size"].iloc[1] == (64,)
    assert specs["n_in"].iloc[3] == 32


def test_resize_struct_sizes() -> None:
    """hls4ml's resize_config states height/width -> new_height/new_width."""
    got = struct_fields({"height": 4, "width": 4, "n_chan": 4, "new_height": 8, "new_width": 8}, "Resize")
    assert (got["n_in"], got["n_out"]) == (64, 256)
    pad = struct_fields({"in_height": 8, "in_width": 8, "n_chan": 4, "out_height": 10, "out_width": 10},
                        "ZeroPadding2D")
    assert (pad["n_in"], pad["n_out"]) == (256, 400)


def test_tool_database_copies_are_not_a_second_project(reports_dir, tmp_path) -> None:
    """A solution's ``.autopilot/db`` holds the HLS tool's ``*.verbose.rpt`` copies of the same
    synthesis: read beside ``syn/report`` they would count as a second project; alone they are
    the only record and are read."""
    prj = tmp_path / "hls4ml_prj"
    shutil.copytree(reports_dir / NRP, prj)
    report = prj / REPORT
    db = report.parent.parent / ".autopilot" / "db"
    db.mkdir(parents=True)
    shutil.copy(report / "myproject_csynth.rpt", db / "myproject.verbose.rpt")
    models = lambda df: df[df["level"] == "model"]  # noqa: E731
    assert len(models(read_reports(tmp_path, progress=False))) == 1
    shutil.rmtree(report)
    got = models(read_reports(tmp_path, progress=False))
    assert len(got) == 1 and "/.autopilot/db/" in got["report"].iloc[0]


def test_fifo_strobes_are_not_output_data() -> None:
    """An ap_fifo stream's one-bit ``_write`` strobe is not a data output (the word is ``_din``);
    a scalar input named ``data_0_V_read`` is Vivado HLS's name for the data itself."""
    from connas4ml_torch.hardware.reports.csynth_xml import ports_sizes

    got = ports_sizes([("res_V_data_0_V_din", "out", "pointer", "32"),
                       ("res_V_data_0_V_full_n", "in", "pointer", "1"),
                       ("res_V_data_0_V_write", "out", "pointer", "1"),
                       ("data_0_V_read", "in", "scalar", "16")])
    assert got["port_out_bits"] == 32 and (got["ports_in"], got["port_in_bits"]) == (1, 16)


def test_layer_types_from_the_top_functions_calls(tmp_path) -> None:
    """Vivado elides a repeated type from a function's name (``pointwise_conv_1d_cl_ap_fixed_
    ap_fixed_16_6_...``); the top function's call states both in full, through defines.h."""
    from connas4ml_torch.hardware.reports.parameters_h import parse_layer_calls

    cpp = tmp_path / "myproject.cpp"
    cpp.write_text(
        "void myproject(input_t input_1[N_INPUT_1_1], result_t layer13_out[1]) {\n"
        "    nnet::pointwise_conv_1d_cl<input_t, layer15_t, config15>(input_1, layer15_out, w15, b15);\n"
        "    nnet::relu<layer15_t, layer4_t, relu_config4>(layer15_out, layer4_out); // q_act\n"
        "    nnet::add<layer4_t, layer4_t, layer5_t, config5>(layer4_out, layer4_out, layer5_out);\n"
        "    nnet::conv_2d_cl<nnet::array<ap_fixed<12,4>, 3*1>, layer6_t, config6>(a, b, w6, b6);\n"
        "    nnet::copy<unknown_t, layer7_t>(x, y);\n}\n")
    typedefs = {"input_t": "ap_fixed<10,3>", "layer15_t": "ap_fixed<16,6>",
                "layer4_t": "ap_ufixed<8,0,AP_RND_CONV,AP_SAT>", "layer5_t": "ap_fixed<9,1>",
                "layer6_t": "nnet::array<ap_fixed<20,8>, 8*1>"}
    got = parse_layer_calls(cpp, typedefs)
    assert got == {15: {"input_bits": 10, "result_bits": 16}, 4: {"input_bits": 16, "result_bits": 8},
                   5: {"input_bits": 8, "result_bits": 9}, 6: {"input_bits": 12, "result_bits": 20}}


def test_conv_positions_per_iteration_from_parameters_h() -> None:
    """hls4ml's n_partitions is the io_parallel conv's pipeline iterations (positions / the
    ParallelizationFactor); its pointwise kernel computes every position at once."""
    conv = {"n_chan": 14, "n_filt": 10, "filt_width": 1, "out_width": 10, "n_partitions": 5}
    assert struct_fields(conv, "Conv1D")["parallelization"] == 2
    assert struct_fields({**conv, "implementation": "pointwise"}, "Conv1D")["parallelization"] == 10
    conv2 = {"n_chan": 3, "n_filt": 8, "filt_height": 3, "filt_width": 3, "out_height": 6,
             "out_width": 6, "n_partitions": 36}
    assert struct_fields(conv2, "Conv2D")["parallelization"] == 1
    # hls4ml counts the layer's zero weights: the non-zero count where no weights file is read
    assert struct_fields({"n_in": 14, "n_out": 10, "n_zeros": 115}, "Dense")["n_zeros"] == 115


def test_kernels_that_are_not_hls4mls_are_unmodeled() -> None:
    """A fork's own kernels (``conv_2d_cl_me``, ``zeropad2d_cl_me``, ``cnnshift_arr``) stream one
    element per word through their own loops: costed as upstream hls4ml they were 100-1000x off,
    so they make their project incomplete instead. Upstream names stay modeled."""
    base = dict(level="layer", io_type="io_parallel", input_bits=16, result_bits=16, n_in=256, n_out=256,
                weight_bits=16, reuse_factor=1, kernel=(3, 3), out_size=(3, 3), part="xczu9eg-ffvb1156-2-e")
    rows = pd.DataFrame([dict(base, layer_type="Conv2D", top="conv_2d_cl_me_ap_fixed_ap_fixed_16_14_5_3_0_config2_s"),
                         dict(base, layer_type="Conv2D", top="cnnshift_arr_ap_fixed_ap_fixed_16_14_5_3_0_config2_s"),
                         dict(base, layer_type="ZeroPadding2D", top="zeropad2d_cl_me_ap_fixed_ap_fixed_config4_s"),
                         dict(base, layer_type="Conv2D", top="conv_2d_cl_ap_fixed_16_6_5_3_0_config2_s")])
    _, status = rows_to_specs(rows)
    assert list(status) == ["unmodeled"] * 3 + ["ok"]
