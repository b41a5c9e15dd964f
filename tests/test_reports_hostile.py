"""Hostile and broken input: every parser raises ReportError and nothing else, a scan never
raises on file content, never hangs, never reads outside the scanned folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connas4ml_torch.hardware.reports import (
    REGISTRY,
    ReportError,
    ReportWarning,
    parse_csynth_json,
    parse_csynth_rpt,
    parse_csynth_xml,
    parse_hls4ml_config,
    parser_for,
    read_project,
    read_reports,
)
from connas4ml_torch.hardware.reports.base import MiB, read_text

NRP = "nrp-nautilus+6nrp-hls4ml/c83384d5a4/model_1/hls4ml_prj"
REPORT = "myproject_prj/solution1/syn/report"
HLS4ML_TEST = "hls4ml/test/pytest/test_report/Vivado"
FUNC = "dense_latency_ap_fixed_16_6_5_3_0_ap_fixed_16_6_5_3_0_config2_s"

BOMB_XML = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<profile><UserAssignments><TopModelName>&lol9;</TopModelName></UserAssignments></profile>
"""


def _quiet_scan(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReportWarning)
        return read_reports(path, progress=False)


def _real_xml(reports_dir: Path) -> str:
    return (reports_dir / NRP / REPORT / f"{FUNC}_csynth.xml").read_text()


# ---- XML entities -------------------------------------------------------------------------------
def test_billion_laughs_is_refused_fast(tmp_path) -> None:
    f = tmp_path / "myproject_csynth.xml"
    f.write_text(BOMB_XML)
    t0 = time.perf_counter()
    with pytest.raises(ReportError, match="entit"):
        parse_csynth_xml(f)
    assert time.perf_counter() - t0 < 2


@pytest.mark.parametrize("name, parser", [("myproject_csynth.xml", parse_csynth_xml),
                                          ("hls.app", None), ("solution1.aps", None)])
def test_external_entities_are_never_read(tmp_path, name, parser) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    f = tmp_path / name
    f.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE p [<!ENTITY x SYSTEM "file://{secret}">]>\n'
                 "<profile><UserAssignments><TopModelName>&x;</TopModelName></UserAssignments>"
                 "<AreaEstimates><Resources><LUT>1</LUT></Resources></AreaEstimates></profile>")
    parse = parser or parser_for(f).parse
    with pytest.raises(ReportError) as exc:
        parse(f)
    assert "TOP-SECRET" not in str(exc.value)
    f.write_text('<?xml version="1.0"?>\n<!DOCTYPE p SYSTEM "file:///etc/passwd">\n<profile/>')
    with pytest.raises(ReportError):
        parse(f)


def test_entity_bomb_in_a_tree_is_skipped(tmp_path, reports_dir) -> None:
    rep = tmp_path / "p" / REPORT
    rep.mkdir(parents=True)
    (rep / "myproject_csynth.xml").write_text(_real_xml(reports_dir).replace(FUNC, "myproject"))
    (rep / "relu_config3_s_csynth.xml").write_text(BOMB_XML)
    df = _quiet_scan(tmp_path)
    assert df.attrs["scan"]["model_reports"] == 1
    assert [Path(p).name for p, _ in df.attrs["scan"]["skipped_files"]] == [
        "relu_config3_s_csynth.xml"]


# ---- numbers that must not pass ---------------------------------------------------------------
@pytest.mark.parametrize("lut, why", [("-5", "negative"), ("1e400", "not a finite"),
                                      ("1e12", "beyond"), ("nan", "LUT")])
def test_impossible_numbers_skip_the_file(tmp_path, reports_dir, lut, why) -> None:
    text = _real_xml(reports_dir).replace("<LUT>28385</LUT>", f"<LUT>{lut}</LUT>")
    rep = tmp_path / "p" / REPORT
    rep.mkdir(parents=True)
    f = rep / f"{FUNC}_csynth.xml"
    f.write_text(text)
    with pytest.raises(ReportError, match=why):
        parse_csynth_xml(f)
    with pytest.warns(ReportWarning, match=why):
        df = read_reports(tmp_path, progress=False)
    assert len(df) == 0 and df.attrs["scan"]["skipped"] == 1


def test_negative_latency_and_rpt_numbers(tmp_path, reports_dir) -> None:
    f = tmp_path / "myproject_csynth.rpt"
    src = (reports_dir / HLS4ML_TEST / "myproject_csynth.rpt").read_text()
    f.write_text(src.replace("|Total            |", "|Total            |-").replace(
        "|Total                |", "|Total                |-"))
    with contextlib.suppress(ReportError):
        rec = parse_csynth_rpt(f)
        assert all((rec.get(k) or 0) >= 0 for k in ("LUT", "FF", "DSP", "BRAM_18K"))
    j = tmp_path / "x.json"
    j.write_text('{"CSynthesisReport": {"LUT": "100", "FF": "-1", "WorstLatency": "3"}}')
    with pytest.raises(ReportError, match="FF = -1 is negative"):
        parse_csynth_json(j)


# ---- sizes, odd files, unreadable files ---------------------------------------------------------
def test_huge_file_refused_unread(tmp_path) -> None:
    f = tmp_path / "myproject_csynth.xml"
    with f.open("wb") as fh:  # sparse: 40 MB by size, nothing written
        fh.truncate(40 * MiB)
    t0 = time.perf_counter()
    with pytest.raises(ReportError, match="too large"):
        parse_csynth_xml(f)
    y = tmp_path / "hls4ml_config.yml"
    with y.open("wb") as fh:
        fh.truncate(8 * MiB)
    with pytest.raises(ReportError, match="too large"):
        parse_hls4ml_config(y)
    assert time.perf_counter() - t0 < 2


def test_read_stops_at_the_cap(tmp_path) -> None:
    f = tmp_path / "a.rpt"
    f.write_bytes(b"x" * 5000)
    with pytest.raises(ReportError, match="too large"):
        read_text(f, limit=4096)
    assert len(read_text(f, limit=5000)) == 5000


def test_pathological_text_is_linear(tmp_path) -> None:
    """Megabytes of table bars and blank lines: no regex backtracking blow-up. (A quadratic
    scan of these megabytes takes hours; the bound is loose so that a loaded CI machine does not
    fail a linear parse, ~1 s alone.)"""
    for body in ("|" * 200 + "\n") * 20000, "\n" * (4 * MiB), " |\n" * MiB:
        f = tmp_path / "myproject_csynth.rpt"
        f.write_text("== Vivado HLS Report for 'myproject'\n+ Latency:\n* Summary:\n" + body)
        t0 = time.perf_counter()
        with pytest.raises(ReportError):
            parse_csynth_rpt(f)
        assert time.perf_counter() - t0 < 60


def test_fifo_named_like_a_report_does_not_block(tmp_path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    rep = tmp_path / "p" / REPORT
    rep.mkdir(parents=True)
    os.mkfifo(rep / "myproject_csynth.xml")
    os.mkfifo(tmp_path / "p" / "hls4ml_config.yml")
    t0 = time.perf_counter()
    df = _quiet_scan(tmp_path)
    assert time.perf_counter() - t0 < 5
    reasons = dict(df.attrs["scan"]["skipped_files"])
    assert any("not a regular file" in r for r in reasons.values())


def test_directory_named_like_a_report(tmp_path) -> None:
    (tmp_path / "x_csynth.xml").mkdir()
    with pytest.raises(ReportError, match="not a regular file"):
        parse_csynth_xml(tmp_path / "x_csynth.xml")


def test_unreadable_file_is_skipped_with_the_reason(tmp_path, reports_dir, monkeypatch) -> None:
    rep = tmp_path / "p" / REPORT
    rep.mkdir(parents=True)
    good = rep / "myproject_csynth.xml"
    good.write_text(_real_xml(reports_dir).replace(FUNC, "myproject"))
    bad = rep / f"{FUNC}_csynth.xml"
    bad.write_text(_real_xml(reports_dir))
    real_open = os.open

    def guarded(path, *a, **k):
        if os.fspath(path) == os.fspath(bad):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", guarded)
    with pytest.warns(ReportWarning, match="Permission denied"):
        df = read_reports(tmp_path, progress=False)
    assert df.attrs["scan"]["model_reports"] == 1
    assert dict(df.attrs["scan"]["skipped_files"])[str(bad)] == "cannot read (Permission denied)"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads files whatever their mode")
def test_chmod_000_file_is_skipped(tmp_path, reports_dir) -> None:
    f = tmp_path / "myproject_csynth.xml"
    f.write_text(_real_xml(reports_dir))
    f.chmod(0)
    try:
        with pytest.raises(ReportError, match="cannot read"):
            parse_csynth_xml(f)
    finally:
        f.chmod(0o644)


def test_unreadable_folder_and_empty_scan_warn(tmp_path, monkeypatch) -> None:
    (tmp_path / "locked").mkdir()
    (tmp_path / "empty").mkdir()
    real_scandir = os.scandir

    def guarded(path="."):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", guarded)
    with pytest.warns(ReportWarning) as rec:
        df = read_reports(tmp_path, progress=False)
    msgs = [str(w.message) for w in rec]
    assert any("locked" in m and "cannot list folder" in m for m in msgs)
    assert any("no synthesis report found" in m and str(tmp_path) in m for m in msgs)
    assert len(df) == 0
    with pytest.warns(ReportWarning, match="no synthesis report found"):
        read_reports(tmp_path / "empty", progress=False)


# ---- links ---------------------------------------------------------------------------------------
def test_symlink_loops_and_links_outside(tmp_path, reports_dir) -> None:
    root = tmp_path / "tree"
    rep = root / "p" / REPORT
    rep.mkdir(parents=True)
    (rep / "myproject_csynth.xml").write_text(_real_xml(reports_dir).replace(FUNC, "myproject"))
    (root / "p" / "loop").symlink_to(root, target_is_directory=True)
    (rep / "self").symlink_to(rep, target_is_directory=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "dense_config2_s_csynth.xml").write_text(_real_xml(reports_dir))
    (rep / "dense_config2_s_csynth.xml").symlink_to(outside / "dense_config2_s_csynth.xml")
    (rep / "inside_csynth.xml").symlink_to(rep / "myproject_csynth.xml")
    t0 = time.perf_counter()
    df = _quiet_scan(root)
    assert time.perf_counter() - t0 < 10
    skipped = dict(df.attrs["scan"]["skipped_files"])
    assert "not followed" in skipped[str(root / "p" / "loop")]
    assert "outside the scanned folder" in skipped[str(rep / "dense_config2_s_csynth.xml")]
    assert df.attrs["scan"]["model_reports"] == 1
    assert not any("elsewhere" in r for r in df["report"])


# ---- file names that are not UTF-8 -------------------------------------------------------------
def test_non_utf8_file_names(tmp_path, reports_dir, capsys) -> None:
    rep = tmp_path / "p\udcff" / REPORT
    os.makedirs(os.fsencode(rep))
    name = os.fsencode(rep) + b"/relu_\xff\xfe_config3_s_csynth.xml"
    with open(name, "wb") as fh:
        fh.write(b"garbage")
    with open(os.fsencode(rep) + b"/myproject_csynth.xml", "wb") as fh:
        fh.write(_real_xml(reports_dir).replace(FUNC, "myproject").encode())
    with pytest.warns(ReportWarning) as rec:
        df = read_reports(tmp_path, progress=True)
    assert df.attrs["scan"]["model_reports"] == 1
    msg = " ".join(str(w.message) for w in rec)
    assert "\\udcff" in msg or "\\xff" in msg  # shown escaped, never a crash
    out = capsys.readouterr().out
    out.encode("utf-8")  # printable


# ---- YAML and JSON bombs, deep nesting ----------------------------------------------------------
def test_yaml_alias_bomb_is_bounded(tmp_path) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    lines.append("HLSConfig: {Model: {ReuseFactor: 1}, LayerName: *a11}")
    f = tmp_path / "hls4ml_config.yml"
    f.write_text("\n".join(lines))
    t0 = time.perf_counter()
    with pytest.raises(ReportError, match="expands to more than"):
        parse_hls4ml_config(f)
    assert time.perf_counter() - t0 < 5


def test_yaml_merge_key_bomb_is_refused(tmp_path) -> None:
    lines = ["a0: &a0 {k0: 1, k1: 2, k2: 3, k3: 4, k4: 5, k5: 6, k6: 7, k7: 8}"]
    for i in range(1, 30):
        lines.append(f"a{i}: &a{i} {{<<: [" + ", ".join([f"*a{i - 1}"] * 8) + "]}")
    f = tmp_path / "hls4ml_config.yml"
    f.write_text("\n".join(lines))
    t0 = time.perf_counter()
    with pytest.raises(ReportError, match="merge keys"):
        parse_hls4ml_config(f)
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize("name, text", [
    ("hls4ml_config.yml", "[" * 5000 + "]" * 5000),
    ("hls4ml_config.yml", "a: " + "{b: " * 3000 + "1" + "}" * 3000),
    ("x.json", '{"CSynthesisReport": ' + "[" * 100000 + "]" * 100000 + "}"),
    ("myproject_csynth.xml", "<profile>" + "<a>" * 100000 + "</a>" * 100000 + "</profile>"),
    ("hls4ml_config.yml", "HLSConfig: !!python/object/apply:os.system ['echo hacked']"),
    ("hls4ml_config.yml", "Backend: 2001-02-30\nHLSConfig: {Model: {ReuseFactor: 1e999}}"),
])
def test_deep_or_odd_documents(tmp_path, name, text) -> None:
    f = tmp_path / name
    f.write_text(text)
    parser = parser_for(f)
    if parser is None:
        parser = next(p for p in REGISTRY if p.name == "csynth_json")
    t0 = time.perf_counter()
    with contextlib.suppress(ReportError):
        out = parser.parse(f)
        assert isinstance(out, dict)
    assert time.perf_counter() - t0 < 10


# ---- property-based: only ReportError escapes, read_reports never raises ------------------------
_NAMES = ["x_csynth.xml", "x_csynth.rpt", "csynth.rpt", "vivado_synth.rpt", "x.json",
          "hls4ml_config.yml", "hls.app", "solution1.aps", "solution1_data.json",
          "firmware/parameters.h", "firmware/defines.h", "firmware/weights/w2.txt", "a.ndjson"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000), name=st.sampled_from(_NAMES))
def test_random_bytes_through_every_parser(tmp_path, data: bytes, name: str) -> None:
    f = tmp_path / name
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(data)
    for parser in REGISTRY:
        with contextlib.suppress(ReportError):
            out = parser.parse(f)
            assert isinstance(out, dict)


def _real_files(reports_dir: Path) -> dict[str, Path]:
    base = reports_dir / NRP
    return {
        "xml": base / REPORT / f"{FUNC}_csynth.xml",
        "rpt": reports_dir / HLS4ML_TEST / "myproject_csynth.rpt",
        "summary": base / REPORT / "csynth.rpt",
        "yml": reports_dir / "uw-acme+HLS4ML_VS_MANUAL/070cfbd5d7/src/hdl/RHEED_Gaussian/hls4ml/"
                             "gaussian_new_hls4ml_prj/hls4ml_config.yml",
        "aps": base / "myproject_prj/solution1/solution1.aps",
        "json": reports_dir / "hls4ml/test/pytest/baselines/Vitis/2024.1/"
                              "test_keras_api_test_dense_io_parallel-Vitis.json",
        "vsynth": reports_dir / ("JavierZhao+l1-jet-id-hls4ml/ccee2dfa10/deepsets/bin/"
                                 "trained_deepsets/deepsinv_synthable_4bits_8const_ptetaphi_kfolds/"
                                 "kfold_0/synthesis_final/vivado_synth.rpt"),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0, 1), pos=st.floats(0, 1), junk=st.binary(min_size=1, max_size=40),
       which=st.sampled_from(["xml", "rpt", "summary", "yml", "aps", "json", "vsynth"]))
def test_mutated_real_files_only_raise_report_error(tmp_path, reports_dir, cut, pos, junk,
                                                    which) -> None:
    src_path = _real_files(reports_dir)[which]
    src = src_path.read_bytes()
    n = int(len(src) * cut)
    i = int(n * pos)
    f = tmp_path / src_path.name
    f.write_bytes(src[:i] + junk + src[i + len(junk):n])
    parser = parser_for(src_path)
    try:
        rec = parser.parse(f)
    except ReportError:
        return
    for k in ("LUT", "FF", "DSP", "BRAM_18K", "lat_worst"):
        v = rec.get(k)
        assert v is None or 0 <= v < 1e13


_PARAMS = ("// fc1\nstruct config2 : nnet::dense_config {\n    static const unsigned n_in = 16;\n"
           "    static const unsigned n_out = 64;\n    static const unsigned reuse_factor = 2;\n"
           "    static const unsigned strategy = nnet::latency;\n    typedef w2_t weight_t;\n};\n")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg_junk=st.binary(max_size=200), cfg_cut=st.floats(0, 1),
       params_junk=st.text(max_size=200), weights=st.binary(max_size=200),
       yml_text=st.sampled_from(["", "HLSConfig: 5", "HLSConfig: {Model: [1, 2]}",
                                 "HLSConfig: {LayerName: {fc1: {ReuseFactor: abc, Precision: 7}}}",
                                 "HLSConfig: {LayerName: [1, 2], Model: {Precision: {x: 1}}}",
                                 "IOType: [io_parallel]\nPart: {a: 1}\nInputShapes: {a: [x, 1]}"]))
def test_read_reports_never_raises_on_content(tmp_path_factory, reports_dir, cfg_junk, cfg_cut,
                                              params_junk, weights, yml_text) -> None:
    root = tmp_path_factory.mktemp("tree")
    prj = root / "p"
    shutil.copytree(reports_dir / NRP / "myproject_prj", prj / "myproject_prj")
    cfg = (reports_dir / NRP / "hls4ml_config.yml").read_bytes()
    (prj / "hls4ml_config.yml").write_bytes(cfg[: int(len(cfg) * cfg_cut)] + cfg_junk)
    (prj / "sub").mkdir()
    (prj / "sub" / "hls4ml_config.yml").write_text(yml_text)
    fw = prj / "firmware"
    (fw / "weights").mkdir(parents=True)
    (fw / "parameters.h").write_text(_PARAMS[: len(_PARAMS) // 2] + params_junk +
                                     _PARAMS[len(_PARAMS) // 2:])
    (fw / "defines.h").write_text("typedef ap_fixed<8,3> w2_t;\n" + params_junk)
    (fw / "weights" / "w2.txt").write_bytes(weights)
    df = _quiet_scan(root)
    assert df.attrs["scan"]["model_reports"] == 1
    df2 = _quiet_scan(prj / "sub")  # a folder with a config and no report: a warning, no rows
    assert len(df2) == 0


def test_read_project_on_a_report_folder_reads_config_above(reports_dir) -> None:
    df = read_project(reports_dir / NRP / REPORT)
    assert set(df.loc[df["layer_type"] == "Dense", "reuse_factor"]) == {1}
