"""Read hls4ml synthesis reports (Vivado HLS / Vitis HLS) from any directory tree into a tidy table.

One row per model-level report and per layer-level (per synthesized function) report, with the
layer's configuration wherever the project's files state it: the function name (kind, strategy,
io type, input/result types, config index), the RTL ports (array sizes), ``hls4ml_config.yml``
and, in users' own projects, ``firmware/parameters.h`` / ``firmware/defines.h``.

We parse the files ourselves rather than calling ``hls4ml.report.parse_vivado_report``: that
function reads the top-level report only (no per-layer reports, no pairing with the layer's
configuration), needs IPython to print, and raises on odd files instead of letting a scan go on.
XML is read with the standard library's ``xml.etree`` (the files are local tool output; no DTDs).
"""

from __future__ import annotations

import json
import logging
import math
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from connas4ml_torch.errors import ReportError, ReportWarning  # noqa: F401 (re-exported)
from connas4ml_torch.hardware.resources import part_dsp, part_family, part_resources

__all__ = [
    "ReportError",
    "ReportWarning",
    "RESOURCE_KEYS",
    "parse_csynth_xml",
    "parse_csynth_rpt",
    "parse_vivado_synth_rpt",
    "parse_csynth_json",
    "parse_hls4ml_config",
    "parse_parameters_h",
    "parse_function_name",
    "parse_fixed_type",
    "find_report_dirs",
    "read_project",
    "read_reports",
    "read_ntorc_tables",
]

log = logging.getLogger(__name__)

RESOURCE_KEYS = ("BRAM_18K", "DSP", "FF", "LUT", "URAM")
_MAX_BYTES = 64 * 2**20  # a csynth report is kB..MB; refuse to slurp anything absurd


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------
def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > _MAX_BYTES:
            raise ReportError(f"{path}: file too large ({size} bytes) for a synthesis report")
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise ReportError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def _num(text: str | None) -> float | None:
    """A report number ('1234', '4.049', '50.000 ns', '-', 'undef', '?') as float, or None."""
    if text is None:
        return None
    m = re.search(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", str(text).replace(",", ""))
    if not m:
        return None
    v = float(m.group(0))
    return v if math.isfinite(v) else None


def _version_key(version: str | None) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version or ""))[:3]


def _tool_from_version(version: str | None, log_hint: str | None = None) -> str | None:
    if log_hint:
        return log_hint
    key = _version_key(version)
    if not key:
        return None
    # Vivado HLS ends with 2020.1; Vitis HLS starts with 2020.2
    return "vitis_hls" if key[:2] >= (2020, 2) else "vivado_hls"


def _part_info(part: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not part:
        return out
    try:
        out["family"] = part_family(part)
        out["dsp_type"] = part_dsp(part)
        for k, v in part_resources(part).items():
            out[f"avail_{k}"] = v
    except ValueError:
        pass
    return out


# ---------------------------------------------------------------------------------------------
# fixed-point types and function names
# ---------------------------------------------------------------------------------------------
_TYPE_RE = re.compile(r"ap_(u?)(fixed|int)\s*<\s*(\d+)\s*(?:,\s*(-?\d+))?")


def parse_fixed_type(text: str | None) -> int | None:
    """Total bit width of an ``ap_fixed<W,I,...>`` / ``fixed<W,I>`` / ``ap_int<W>`` spelling."""
    if not text:
        return None
    m = _TYPE_RE.search(str(text)) or re.search(r"u?(?:fixed|int)\s*<\s*(\d+)", str(text))
    if not m:
        return None
    return int(m.group(3) if m.re is _TYPE_RE else m.group(1))


_NAME_TYPE_RE = re.compile(r"ap_u?(?:fixed|int)((?:_\d+(?![\du])){0,5})")
_KINDS: list[tuple[str, str, str | None, str | None]] = [
    # (regex on the function name, layer_type, strategy, io hint)
    (r"^(?:pointwise_conv_1d)", "Conv1D", None, None),
    (r"^conv_1d|^conv1d", "Conv1D", None, None),
    (r"^conv_2d|^conv2d|^depthwise_conv_2d", "Conv2D", None, None),
    (r"^compute_output_buffer_1d", "Conv1D", None, "io_stream"),
    (r"^compute_output_buffer_2d", "Conv2D", None, "io_stream"),
    (r"^dense_latency", "Dense", "Latency", None),
    (r"^dense_resource|^dense_large|^dense_wrapper", "Dense", "Resource", None),
    (r"^dense_array|^dense_", "Dense", None, None),
    (r"^dense$", "Dense", None, None),
    (r"^compute_layer", "Dense", "Latency", None),  # hls4ml <= 2018 name of the dense layer
]


def parse_function_name(name: str) -> dict[str, Any]:
    """What an hls4ml synthesized-function name states: layer type, strategy, io hint, types, config.

    E.g. ``dense_latency_ap_fixed_16_6_5_3_0_ap_fixed_16_6_5_3_0_config2_s`` -> Dense, Latency,
    input 16 bits, result 16 bits, config 2. Unknown names give ``layer_type="other"``.
    """
    out: dict[str, Any] = {"function": name, "layer_type": "other"}
    low = name.lower()
    for pat, ltype, strat, io in _KINDS:
        if re.search(pat, low):
            out["layer_type"] = ltype
            if strat:
                out["strategy"] = strat
            if io:
                out["io_type"] = io
            break
    if "latency" in low and "strategy" not in out and out["layer_type"] != "other":
        out["strategy"] = "Latency"
    elif "resource" in low and "strategy" not in out and out["layer_type"] != "other":
        out["strategy"] = "Resource"
    if "_array_" in low or low.startswith(("dense_array", "relu_array")) or "shift_line_buffer" in low:
        out.setdefault("io_type", "io_stream")
    m = re.search(r"config(\d+)", low)
    if m:
        out["config_index"] = int(m.group(1))
    widths = []
    for tm in _NAME_TYPE_RE.finditer(low):
        nums = [int(x) for x in tm.group(1).split("_") if x]
        widths.append(nums[0] if nums and nums[0] > 0 else None)
    if widths:
        out["input_bits"] = widths[0]
        if len(widths) > 1:
            out["result_bits"] = widths[1]
    return out


# ---------------------------------------------------------------------------------------------
# csynth XML / RPT / JSON
# ---------------------------------------------------------------------------------------------
_CONTROL_PORTS = re.compile(r"^ap_(clk|rst|rst_n|start|done|idle|ready|ce|continue)$")


def _mode(values: list[int]) -> int | None:
    return max(set(values), key=values.count) if values else None


def _ports_sizes(ports: list[tuple[str, str, str, str]]) -> dict[str, int]:
    """Array sizes and element widths from the RTL ports of a synthesized function."""
    rets = [b for n, d, _, b in ports if re.fullmatch(r"ap_return(_\d+)?", n)]
    ins = [(n, b) for n, d, t, b in ports if d == "in" and t == "scalar" and not _CONTROL_PORTS.match(n)]
    stream_in = [b for n, d, _, b in ports if d == "in" and re.search(r"_dout$", n)]
    stream_out = [b for n, d, _, b in ports if d == "out" and re.search(r"_din$", n)]
    out: dict[str, int] = {}
    if rets:
        out["ports_out"] = len(rets)
    if ins:
        out["ports_in"] = len(ins)
    w_in = _mode([int(b) for _, b in ins if b.isdigit()] or [int(b) for b in stream_in if b.isdigit()])
    w_out = _mode([int(b) for b in rets if b.isdigit()] or [int(b) for b in stream_out if b.isdigit()])
    if w_in and w_in <= 64:
        out["port_in_bits"] = w_in
    if w_out and w_out <= 64:
        out["port_out_bits"] = w_out
    return out


def parse_csynth_xml(path: str | Path) -> dict[str, Any]:
    """Parse one ``*_csynth.xml`` (Vivado HLS / Vitis HLS); raise :class:`ReportError` if unusable."""
    path = Path(path)
    text = _read_text(path)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ReportError(f"{path}: not well-formed XML ({exc})") from exc
    if root.tag != "profile":
        raise ReportError(f"{path}: root element <{root.tag}> is not a csynth <profile>")
    ua = root.find("UserAssignments")
    area = root.find("AreaEstimates")
    if ua is None or area is None:
        raise ReportError(f"{path}: missing UserAssignments or AreaEstimates (truncated report?)")
    rec: dict[str, Any] = {
        "report": str(path),
        "format": "xml",
        "tool_version": root.findtext("ReportVersion/Version"),
        "top": ua.findtext("TopModelName"),
        "part": ua.findtext("Part"),
        "family": ua.findtext("ProductFamily"),
        "clk_target_ns": _num(ua.findtext("TargetClockPeriod")),
        "clk_est_ns": _num(root.findtext("PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod")),
    }
    lat = root.find("PerformanceEstimates/SummaryOfOverallLatency")
    if lat is not None:
        rec["lat_best"] = _num(lat.findtext("Best-caseLatency"))
        rec["lat_worst"] = _num(lat.findtext("Worst-caseLatency"))
        rec["ii_min"] = _num(lat.findtext("Interval-min"))
        rec["ii_max"] = _num(lat.findtext("Interval-max"))
    res = area.find("Resources")
    avail = area.find("AvailableResources")
    if res is None:
        raise ReportError(f"{path}: no AreaEstimates/Resources")
    for src, prefix in ((res, ""), (avail, "avail_")):
        if src is None:
            continue
        for child in src:
            key = "DSP" if child.tag.startswith("DSP") else child.tag
            if key in RESOURCE_KEYS:
                rec[prefix + key] = _num(child.text)
    if rec.get("LUT") is None and rec.get("FF") is None:
        raise ReportError(f"{path}: no LUT/FF numbers in AreaEstimates")
    if not rec["top"]:
        raise ReportError(f"{path}: no TopModelName")
    ports = [
        (p.findtext("name") or "", p.findtext("Dir") or "", p.findtext("Type") or "",
         (p.findtext("Bits") or "").strip())
        for p in root.iter("RtlPorts")
    ]
    rec.update(_ports_sizes(ports))
    return rec


def _rpt_table_row(text: str, label: str) -> list[str] | None:
    m = re.search(r"^\s*\|\s*" + re.escape(label) + r"\s*\|(.*)\|\s*$", text, re.M)
    return [c.strip() for c in m.group(1).split("|")] if m else None


def parse_csynth_rpt(path: str | Path) -> dict[str, Any]:
    """Parse one ``*_csynth.rpt`` text report; raise :class:`ReportError` if unusable."""
    path = Path(path)
    text = _read_text(path)
    head = re.search(r"==\s*(Vivado|Vitis) HLS Report for '([^']+)'", text)
    if not head:
        if re.search(r"==\s*Synthesis Summary Report of '([^']+)'", text):
            return _parse_vitis_summary_rpt(path, text)
        raise ReportError(f"{path}: no 'Vivado/Vitis HLS Report for' or 'Synthesis Summary Report "
                          "of' header (not a csynth report)")
    rec: dict[str, Any] = {"report": str(path), "format": "rpt", "top": head.group(2)}
    m = re.search(r"\*\s*Version:\s*([\d.]+)", text)
    rec["tool_version"] = m.group(1) if m else None
    if head.group(1) == "Vitis":
        rec["tool_hint"] = "vitis_hls"
    m = re.search(r"\*\s*Target device:\s*(\S+)", text)
    rec["part"] = m.group(1) if m else None
    m = re.search(r"\*\s*Product family:\s*(\S+)", text)
    rec["family"] = m.group(1) if m else None
    m = re.search(r"\|\s*ap_clk\s*\|\s*([\d.]+)\s*ns\s*\|\s*([\d.]+)\s*ns", text)
    if m:
        rec["clk_target_ns"], rec["clk_est_ns"] = float(m.group(1)), float(m.group(2))
    # first data row of the latency summary: |  min | max | abs min | abs max | ii min | ii max | type |
    m = re.search(r"\+ Latency:.*?\*\s*Summary:\s*\n(.*?)\n\s*\n", text, re.S)
    if m:
        rows = [r for r in m.group(1).splitlines() if re.match(r"\s*\|\s*[\d?-]", r)]
        if rows:
            cells = [c.strip() for c in rows[0].strip().strip("|").split("|")]
            if len(cells) >= 6:
                rec["lat_best"], rec["lat_worst"] = _num(cells[0]), _num(cells[1])
                rec["ii_min"], rec["ii_max"] = _num(cells[4]), _num(cells[5])
    header = re.search(r"^\s*\|\s*Name\s*\|(.*)\|\s*$", text, re.M)
    total = _rpt_table_row(text, "Total")
    if not header or not total:
        raise ReportError(f"{path}: no utilization 'Total' row (truncated report?)")
    cols = ["DSP" if c.strip().startswith("DSP") else c.strip() for c in header.group(1).split("|")]
    availrow = _rpt_table_row(text, "Available")
    for i, c in enumerate(cols):
        if c in RESOURCE_KEYS:
            if i < len(total):
                rec[c] = _num(total[i])
            if availrow and i < len(availrow):
                rec["avail_" + c] = _num(availrow[i])
    if rec.get("LUT") is None and rec.get("FF") is None:
        raise ReportError(f"{path}: utilization table has no LUT/FF numbers")
    return rec


def _parse_vitis_summary_rpt(path: Path, text: str) -> dict[str, Any]:
    """Vitis HLS ``csynth.rpt`` ('Synthesis Summary Report'): the top function's row."""
    top = re.search(r"Synthesis Summary Report of '([^']+)'", text).group(1)  # type: ignore[union-attr]
    rec: dict[str, Any] = {"report": str(path), "format": "rpt", "top": top, "tool_hint": "vitis_hls"}
    for key, pat in (("tool_version", r"\*\s*Version:\s*([\d.]+)"),
                     ("part", r"\*\s*Target device:\s*(\S+)"),
                     ("family", r"\*\s*Product family:\s*(\S+)")):
        m = re.search(pat, text)
        rec[key] = m.group(1) if m else None
    hdr = [ln for ln in text.splitlines() if re.match(r"\s*\|\s*&?\s*Loops|\s*\|\s*Modules", ln)]
    row = re.search(r"^\s*\|\+\s*" + re.escape(top) + r"\*?\s*\|(.*)\|\s*$", text, re.M)
    if not hdr or not row:
        raise ReportError(f"{path}: no summary row for '{top}' (truncated report?)")
    cells = [c.strip() for c in row.group(1).split("|")]
    # columns after the name: issue, slack, latency cycles, latency ns, iteration latency,
    # interval, trip count, pipelined, BRAM, DSP, FF, LUT, URAM
    if len(cells) < 13:
        raise ReportError(f"{path}: summary row for '{top}' has {len(cells)} cells, expected 13")
    rec["lat_best"] = rec["lat_worst"] = _num(cells[2])
    rec["ii_min"] = rec["ii_max"] = _num(cells[5])
    for k, c in zip(("BRAM_18K", "DSP", "FF", "LUT", "URAM"), cells[8:13]):
        rec[k] = 0.0 if c == "-" else _num(c)
    return rec


def parse_csynth_json(path: str | Path) -> dict[str, Any]:
    """Parse an hls4ml CI synthesis summary JSON (``{"CSynthesisReport": {...}}``)."""
    path = Path(path)
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("CSynthesisReport"), dict):
        raise ReportError(f"{path}: no 'CSynthesisReport' object (not an hls4ml synthesis summary)")
    c = data["CSynthesisReport"]
    rec: dict[str, Any] = {
        "report": str(path),
        "format": "json",
        "clk_target_ns": _num(c.get("TargetClockPeriod")),
        "clk_est_ns": _num(c.get("EstimatedClockPeriod")),
        "lat_best": _num(c.get("BestLatency")),
        "lat_worst": _num(c.get("WorstLatency")),
        "ii_min": _num(c.get("IntervalMin")),
        "ii_max": _num(c.get("IntervalMax")),
    }
    for k in RESOURCE_KEYS:
        src = "DSP48E" if k == "DSP" and "DSP" not in c else k
        rec[k] = _num(c.get(src))
        rec["avail_" + k] = _num(c.get("Available" + src))
    if rec.get("LUT") is None:
        raise ReportError(f"{path}: CSynthesisReport has no LUT")
    vs = data.get("VivadoSynthReport")
    if isinstance(vs, dict):
        for k, src in (("LUT", "LUT"), ("FF", "FF"), ("BRAM_18K", "BRAM_18K"), ("DSP", "DSP48E"), ("URAM", "URAM")):
            if src in vs:
                rec["vsynth_" + k] = _num(vs.get(src))
    return rec


def parse_vivado_synth_rpt(path: str | Path) -> dict[str, Any]:
    """Parse a Vivado ``report_utilization`` file (``vivado_synth.rpt``): post-synthesis numbers."""
    path = Path(path)
    text = _read_text(path)
    if "report_utilization" not in text and "Utilization Design Information" not in text:
        raise ReportError(f"{path}: not a Vivado utilization report")

    def used(*labels: str) -> float | None:
        for lab in labels:
            row = _rpt_table_row(text, lab)
            if row:
                return _num(row[0])
        return None

    rec: dict[str, Any] = {
        "vsynth_LUT": used("Slice LUTs*", "Slice LUTs", "CLB LUTs*", "CLB LUTs"),
        "vsynth_FF": used("Slice Registers", "CLB Registers", "Register as Flip Flop"),
        "vsynth_DSP": used("DSPs"),
        "vsynth_URAM": used("URAM"),
    }
    tiles = used("Block RAM Tile")
    rec["vsynth_BRAM_18K"] = None if tiles is None else 2 * tiles
    m = re.search(r"\|\s*Tool Version\s*:\s*(.+)", text)
    rec["vsynth_tool"] = m.group(1).strip() if m else None
    m = re.search(r"\|\s*Device\s*:\s*(\S+)", text)
    rec["vsynth_device"] = m.group(1) if m else None
    if rec["vsynth_LUT"] is None:
        raise ReportError(f"{path}: no LUT row in the utilization table (truncated report?)")
    return rec


# ---------------------------------------------------------------------------------------------
# project configuration files
# ---------------------------------------------------------------------------------------------
class _LenientLoader(yaml.SafeLoader):
    """SafeLoader that turns unknown tags (``!keras_model 'x.h5'``) into plain values."""


def _unknown_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_LenientLoader.add_multi_constructor("!", _unknown_tag)
_LenientLoader.add_multi_constructor("tag:", _unknown_tag)


def _precision_default(p: Any) -> str | None:
    if isinstance(p, str):
        return p
    if isinstance(p, dict):
        for k in ("default", "weight", "result"):
            if isinstance(p.get(k), str):
                return p[k]
    return None


def parse_hls4ml_config(path: str | Path) -> dict[str, Any]:
    """Project-wide settings of an ``hls4ml_config.yml`` (backend, part, io type, strategy, RF, bits)."""
    path = Path(path)
    try:
        cfg = yaml.load(_read_text(path), Loader=_LenientLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ReportError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(cfg, dict):
        raise ReportError(f"{path}: not an hls4ml configuration mapping")
    hls = cfg.get("HLSConfig") or {}
    model = hls.get("Model") or {} if isinstance(hls, dict) else {}
    out: dict[str, Any] = {
        "cfg_backend": cfg.get("Backend"),
        "cfg_part": str(cfg["Part"]).lower() if cfg.get("Part") else None,
        "cfg_io_type": cfg.get("IOType"),
        "cfg_clock": _num(cfg.get("ClockPeriod")),
        "cfg_project": cfg.get("ProjectName"),
        "cfg_strategy": model.get("Strategy") if isinstance(model, dict) else None,
        "cfg_reuse": model.get("ReuseFactor") if isinstance(model, dict) else None,
        "cfg_precision": _precision_default(model.get("Precision")) if isinstance(model, dict) else None,
    }
    layers = hls.get("LayerName") if isinstance(hls, dict) else None
    over_rf, over_w, over_strat = set(), set(), set()
    if isinstance(layers, dict):
        for lc in layers.values():
            if not isinstance(lc, dict):
                continue
            if "ReuseFactor" in lc:
                over_rf.add(lc["ReuseFactor"])
            if "Strategy" in lc:
                over_strat.add(str(lc["Strategy"]).capitalize())
            p = lc.get("Precision")
            if isinstance(p, dict) and "weight" in p:
                over_w.add(str(p["weight"]))
            elif isinstance(p, str):
                over_w.add(p)
    out["cfg_layer_overrides"] = bool(over_rf or over_w or over_strat)
    out["cfg_layer_rf"] = sorted(over_rf, key=str)
    out["cfg_layer_weight_prec"] = sorted(over_w)
    out["cfg_layer_strategy"] = sorted(over_strat)
    return out


_STRUCT_RE = re.compile(r"struct\s+(\w*?config(\d+)\w*)\s*:\s*(?:public\s+)?nnet::(\w+)\s*\{(.*?)\n\s*\};", re.S)


def parse_parameters_h(path: str | Path, defines: str | Path | None = None) -> dict[int, dict[str, Any]]:
    """Layer configurations from an hls4ml ``firmware/parameters.h`` (types resolved via ``defines.h``).

    Returns ``{config_index: {"config_struct", "n_in", "n_out", "n_chan", "n_filt", "filt_width",
    "filt_height", "out_width", "out_height", "reuse_factor", "strategy", "io_type",
    "weight_bits", "result_bits"...}}``.
    """
    path = Path(path)
    text = _read_text(path)
    typedefs: dict[str, str] = {}
    for src in (defines, path):
        if src is not None and Path(src).is_file():
            body = _read_text(Path(src))
            for m in re.finditer(r"typedef\s+(ap_u?(?:fixed|int)\s*<[^;]*?>)\s+(\w+)\s*;", body):
                typedefs[m.group(2)] = m.group(1)
    out: dict[int, dict[str, Any]] = {}
    for m in _STRUCT_RE.finditer(text):
        name, idx, base, body = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        d: dict[str, Any] = {"config_struct": base}
        for k, v in re.findall(r"static\s+const\s+\w+(?:\s+\w+)?\s+(\w+)\s*=\s*([^;]+);", body):
            v = v.strip()
            if re.fullmatch(r"\d+", v):
                d[k] = int(v)
            elif v.startswith("nnet::"):
                d[k] = v.split("::", 1)[1]
        for m2 in re.finditer(r"typedef\s+([\w:<>, ]+?)\s+(\w+_t)\s*;", body):
            t = m2.group(1).strip()
            t = typedefs.get(t, t)
            bits = parse_fixed_type(t)
            if bits is not None:
                d[m2.group(2).replace("_t", "_bits")] = bits
        if name in out and idx in out:
            continue
        out.setdefault(idx, d)
    return out


# ---------------------------------------------------------------------------------------------
# project discovery
# ---------------------------------------------------------------------------------------------
_CSYNTH_XML = re.compile(r".*csynth\.xml$")
_CSYNTH_RPT = re.compile(r".*csynth\.rpt$")


def _sniff(path: Path, n: int = 4096) -> str:
    try:
        with path.open("rb") as f:
            return f.read(n).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _classify(path: Path) -> str | None:
    """Which kind of report a file is: csynth_xml, csynth_rpt, vsynth, json, ndjson or None."""
    name = path.name.lower()
    if name.endswith(".xml"):
        if _CSYNTH_XML.match(name):
            return "csynth_xml"
        return None
    if name.endswith(".rpt"):
        if _CSYNTH_RPT.match(name):
            return "csynth_rpt"
        if name == "vivado_synth.rpt":
            return "vsynth"
        head = _sniff(path, 2048)
        if re.search(r"==\s*(Vivado|Vitis) HLS Report for", head):
            return "csynth_rpt"
        return None
    if name.endswith(".json") and not name.startswith("_") and "CSynthesisReport" in _sniff(path, 512):
        return "json"
    if name.endswith(".ndjson"):
        return "ndjson"
    return None


def _project_root(report_dir: Path) -> Path:
    p = report_dir
    if p.name == "report" and p.parent.name == "syn":
        prj = p.parent.parent.parent  # <name>_prj (or the HLS project dir)
        return prj.parent if prj.name.endswith("_prj") else prj
    return p


def find_report_dirs(path: str | Path) -> dict[Path, list[tuple[Path, str]]]:
    """All folders under ``path`` that hold report files, with each file's kind."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"report folder {root} does not exist")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    groups: dict[Path, list[tuple[Path, str]]] = {}
    for f in files:
        kind = _classify(f)
        if kind is None or kind == "vsynth":
            continue
        groups.setdefault(f.parent, []).append((f, kind))
    return groups


# ---------------------------------------------------------------------------------------------
# one project
# ---------------------------------------------------------------------------------------------
def _find_upwards(start: Path, stop: Path, names: Iterable[str]) -> Path | None:
    names = list(names)
    p = start
    while True:
        for n in names:
            cand = p / n
            if cand.is_file():
                return cand
        if p == stop or p.parent == p:
            return None
        p = p.parent


def _top_name(report_dir: Path, recs: list[dict[str, Any]], project: str | None) -> str | None:
    """The network's top function: hls4ml's project name, then the HLS project file's top, then
    Vitis' csynth.xml. (An AXI wrapper such as ``myproject_axi`` is the HLS top but not the
    network; its row stays a layer-level 'other' row.)"""
    tops = {r["top"] for r in recs}
    for cand in (project, "myproject"):
        if cand and cand in tops:
            return cand
    sol = report_dir.parent.parent if report_dir.name == "report" else None
    if sol is not None:
        for app in list(sol.parent.glob("*.app")):
            m = re.search(r'\btop="([^"]+)"', _sniff(app, 8192))
            if m:
                return m.group(1)
    for r in recs:
        if Path(r["report"]).name in ("csynth.xml", "csynth.rpt"):
            return r["top"]
    plain = [r for r in recs if parse_function_name(r["top"])["layer_type"] == "other"
             and "config" not in r["top"]]
    if len(plain) == 1:
        return plain[0]["top"]
    return None


def _tool_hint(root: Path) -> str | None:
    if (root / "vitis_hls.log").is_file():
        return "vitis_hls"
    if (root / "vivado_hls.log").is_file():
        return "vivado_hls"
    return None


def _finish(rec: dict[str, Any], tool_hint: str | None) -> dict[str, Any]:
    rec["tool"] = _tool_from_version(rec.get("tool_version"), rec.pop("tool_hint", None) or tool_hint)
    if rec.get("part"):
        rec["part"] = str(rec["part"]).lower()
        info = _part_info(rec["part"])
        rec["dsp_type"] = info.get("dsp_type")
        if not rec.get("family"):
            rec["family"] = info.get("family")
        for k in RESOURCE_KEYS:  # fill only where the report gave nothing
            if rec.get("avail_" + k) is None and "avail_" + k in info:
                rec["avail_" + k] = info["avail_" + k]
    rec["latency_cycles"] = rec.get("lat_worst")
    rec["II"] = rec.get("ii_max")
    return rec


def _layer_config(rec: dict[str, Any], cfg: dict[str, Any], params: dict[int, dict[str, Any]]) -> None:
    """Fill the layer configuration columns of a layer row, most specific source first."""
    fn = parse_function_name(rec["top"])
    for k in ("layer_type", "strategy", "io_type", "input_bits", "result_bits", "config_index"):
        if fn.get(k) is not None:
            rec[k] = fn[k]
    rec["config_source"] = "name"
    p = params.get(fn.get("config_index", -1))
    if p:
        rec["config_source"] = "parameters.h"
        ltype = {"dense_config": "Dense", "conv1d_config": "Conv1D", "conv2d_config": "Conv2D"}.get(
            p.get("config_struct", ""))
        if ltype and rec.get("layer_type") == "other":
            rec["layer_type"] = ltype
        for src, dst in (("n_in", "n_in"), ("n_out", "n_out"), ("reuse_factor", "reuse_factor")):
            if src in p:
                rec[dst] = p[src]
        if "n_chan" in p:
            rec["n_in"] = p["n_chan"]
        if "n_filt" in p:
            rec["n_out"] = p["n_filt"]
        if rec.get("layer_type") == "Conv1D" and "filt_width" in p:
            rec["kernel"] = (p["filt_width"],)
            rec["out_size"] = (p.get("out_width", 1),)
        if rec.get("layer_type") == "Conv2D" and "filt_width" in p:
            rec["kernel"] = (p.get("filt_height", 1), p["filt_width"])
            rec["out_size"] = (p.get("out_height", 1), p.get("out_width", 1))
        if "strategy" in p:
            rec["strategy"] = str(p["strategy"]).capitalize()
        if "io_type" in p:
            rec["io_type"] = "io_" + str(p["io_type"]).replace("io_", "")
        if "weight_bits" in p:
            rec["weight_bits"] = p["weight_bits"]
    # sizes from fully partitioned ports (io_parallel Dense): an upper bound where pruned
    # weights removed inputs, so only used when nothing better is stated
    if rec.get("layer_type") == "Dense" and rec.get("io_type") != "io_stream":
        if rec.get("n_out") is None and rec.get("ports_out", 0) > 1:
            rec["n_out"] = rec["ports_out"]
        if rec.get("n_in") is None and rec.get("ports_in", 0) > 1:
            rec["n_in"] = rec["ports_in"]
    # element widths of the data ports (stated by the tool) where the name was cut short
    if rec.get("input_bits") is None and rec.get("port_in_bits"):
        rec["input_bits"] = rec["port_in_bits"]
    if rec.get("result_bits") is None and rec.get("port_out_bits"):
        rec["result_bits"] = rec["port_out_bits"]
    if rec.get("layer_type") == "Dense":
        rec.setdefault("kernel", ())
        rec.setdefault("out_size", ())
    if rec.get("io_type") is None and cfg.get("cfg_io_type"):
        rec["io_type"] = cfg["cfg_io_type"]
    if rec.get("strategy") is None and cfg.get("cfg_strategy"):
        rec["strategy"] = str(cfg["cfg_strategy"]).capitalize()
    if rec.get("reuse_factor") is None and cfg.get("cfg_reuse") is not None and not cfg.get("cfg_layer_rf"):
        rec["reuse_factor"] = int(cfg["cfg_reuse"])
    if rec.get("weight_bits") is None and cfg.get("cfg_precision") and not cfg.get("cfg_layer_weight_prec"):
        rec["weight_bits"] = parse_fixed_type(cfg["cfg_precision"])


def read_project(path: str | Path, *, _skipped: list[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Read one hls4ml project (or one report folder): model row(s) and layer rows.

    ``path`` may be the hls4ml output folder, the ``<name>_prj`` folder, or a ``syn/report``
    folder. Unparsable files are skipped with a :class:`ReportWarning`.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"hls4ml project {path} does not exist")
    groups = find_report_dirs(path)
    frames = [_read_group(d, files, path if path.is_dir() else path.parent, _skipped)
              for d, files in groups.items()]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=_COLUMNS)


def _skip(skipped: list[tuple[str, str]] | None, path: Path, reason: str) -> None:
    warnings.warn(f"skipped {path}: {reason}", ReportWarning, stacklevel=3)
    if skipped is not None:
        skipped.append((str(path), reason))


def _read_group(report_dir: Path, files: list[tuple[Path, str]], scan_root: Path,
                skipped: list[tuple[str, str]] | None) -> pd.DataFrame:
    root = _project_root(report_dir)
    stop = scan_root if root.is_relative_to(scan_root) else root
    cfg_path = _find_upwards(root, stop, ["hls4ml_config.yml"])
    cfg: dict[str, Any] = {}
    if cfg_path is not None:
        try:
            cfg = parse_hls4ml_config(cfg_path)
        except ReportError as exc:
            _skip(skipped, cfg_path, str(exc).split(": ", 1)[-1])
    params: dict[int, dict[str, Any]] = {}
    ph = root / "firmware" / "parameters.h"
    if ph.is_file():
        try:
            params = parse_parameters_h(ph, root / "firmware" / "defines.h")
        except ReportError as exc:
            _skip(skipped, ph, str(exc).split(": ", 1)[-1])
    hint = _tool_hint(root)

    recs: list[dict[str, Any]] = []
    xml_tops: set[str] = set()
    order = sorted(files, key=lambda fk: {"csynth_xml": 0, "json": 1, "csynth_rpt": 2}.get(fk[1], 3))
    for f, kind in order:
        try:
            if kind == "csynth_xml":
                rec = parse_csynth_xml(f)
                xml_tops.add(rec["top"])
            elif kind == "csynth_rpt":
                rec = parse_csynth_rpt(f)
                if rec["top"] in xml_tops:  # the same function's XML was read already
                    continue
            elif kind == "json":
                rec = parse_csynth_json(f)
                rec["top"] = f.stem
            elif kind == "ndjson":
                raise ReportError(f"{f}: oneAPI/Quartus ndjson reports are not supported (Xilinx only)")
            else:  # pragma: no cover - _classify only returns the kinds above
                continue
        except ReportError as exc:
            _skip(skipped, f, str(exc).split(": ", 1)[-1] if str(exc).startswith(str(f)) else str(exc))
            continue
        recs.append(rec)
    if not recs:
        return pd.DataFrame(columns=_COLUMNS)

    top = _top_name(report_dir, [r for r in recs if r["format"] != "json"], cfg.get("cfg_project"))
    vs: dict[str, Any] = {}
    vsp = _find_upwards(root, stop, ["vivado_synth.rpt"]) if top else None
    if vsp is not None:
        try:
            vs = parse_vivado_synth_rpt(vsp)
        except ReportError as exc:
            _skip(skipped, vsp, str(exc).split(": ", 1)[-1])
    rows = []
    seen_model = False
    # <top>_csynth.xml first, then Vitis' csynth.xml copy of it (kept only if the first is absent)
    recs.sort(key=lambda r: (Path(r["report"]).name.startswith("csynth."), r["format"] != "xml"))
    for rec in recs:
        rec = _finish(rec, hint)
        rec["source"] = rec["report"] if rec["format"] == "json" else str(root)
        rec["solution"] = report_dir.parent.parent.name if report_dir.name == "report" else ""
        if rec["format"] == "json" or (top is not None and rec["top"] == top):
            if seen_model and rec["format"] != "json":
                continue  # csynth.xml duplicates <top>_csynth.xml
            seen_model = seen_model or rec["format"] != "json"
            rec["level"] = "model"
            if rec["format"] != "json":
                rec.update(vs)
            rec.update({k: v for k, v in cfg.items() if not isinstance(v, list)})
            for k in ("io_type", "strategy", "reuse_factor"):
                ck = {"io_type": "cfg_io_type", "strategy": "cfg_strategy", "reuse_factor": "cfg_reuse"}[k]
                if cfg.get(ck) is not None:
                    rec[k] = cfg[ck]
            if cfg.get("cfg_precision"):
                rec["weight_bits"] = parse_fixed_type(cfg["cfg_precision"])
        else:
            rec["level"] = "layer"
            rec["model_top"] = top
            _layer_config(rec, cfg, params)
        rows.append(rec)
    _mark_primary(rows)
    df = pd.DataFrame(rows)
    return df.reindex(columns=list(dict.fromkeys(_COLUMNS + list(df.columns))))


def _mark_primary(rows: list[dict[str, Any]]) -> None:
    """``primary``: the outermost function of each layer config (helpers such as
    ``shift_line_buffer`` or ``dense_wrapper`` share the config index and sit inside it)."""
    best: dict[int, dict[str, Any]] = {}
    for r in rows:
        if r.get("level") != "layer":
            continue
        r["primary"] = True
        idx = r.get("config_index")
        if idx is None:
            continue
        cur = best.get(idx)
        size = (r.get("LUT") or 0) + (r.get("FF") or 0)
        if cur is None or size > (cur.get("LUT") or 0) + (cur.get("FF") or 0):
            if cur is not None:
                cur["primary"] = False
            best[idx] = r
        else:
            r["primary"] = False


_COLUMNS = [
    "level", "source", "report", "format", "solution", "top", "tool", "tool_version", "part", "family",
    "dsp_type", "clk_target_ns", "clk_est_ns", "lat_best", "lat_worst", "ii_min", "ii_max",
    "latency_cycles", "II", *RESOURCE_KEYS, *[f"avail_{k}" for k in RESOURCE_KEYS],
    "vsynth_LUT", "vsynth_FF", "vsynth_BRAM_18K", "vsynth_DSP", "vsynth_URAM",
    "layer_type", "n_in", "n_out", "kernel", "out_size", "reuse_factor", "strategy", "io_type",
    "weight_bits", "input_bits", "result_bits", "config_index", "config_source", "primary",
]


# ---------------------------------------------------------------------------------------------
# the scan
# ---------------------------------------------------------------------------------------------
def read_reports(path: str | Path, progress: bool = True) -> pd.DataFrame:
    """Scan a directory tree for hls4ml projects and return one row per model/layer report.

    Bad files are skipped with a :class:`ReportWarning`; counts are in ``df.attrs["scan"]``.
    """
    from tqdm.auto import tqdm

    root = Path(path)
    groups = find_report_dirs(root)
    skipped: list[tuple[str, str]] = []
    frames = []
    scan_root = root if root.is_dir() else root.parent
    for d, files in tqdm(groups.items(), desc="report folders", disable=not progress, unit="dir"):
        try:
            frames.append(_read_group(d, files, scan_root, skipped))
        except ReportError as exc:  # a folder-level failure never stops the scan
            _skip(skipped, d, str(exc))
    frames = [f for f in frames if not f.empty]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=_COLUMNS)
    scan = {
        "projects": int(df.loc[df["level"] == "model", "source"].nunique()) if len(df) else 0,
        "report_folders": len(groups),
        "model_reports": int((df["level"] == "model").sum()) if len(df) else 0,
        "layer_reports": int((df["level"] == "layer").sum()) if len(df) else 0,
        "skipped": len(skipped),
        "skipped_files": skipped,
    }
    df.attrs["scan"] = scan
    msg = (f"read_reports({root}): {scan['projects']} projects, {scan['model_reports']} model "
           f"reports, {scan['layer_reports']} layer reports, {scan['skipped']} files skipped")
    log.info(msg)
    if progress:
        print(msg)
    return df



def _ntorc_rows(res_path: Path, lat_path: Path, renames: dict[str, str], n_out: str,
                reuse: str) -> pd.DataFrame:
    """One N-TORC resource table joined with its latency table on the layer's feature tuple.

    The tables are means over identical feature tuples ("collapsed"): join on the tuple, not on
    model_number (each table kept its own representative model).
    """
    res = pd.read_csv(res_path)
    lat = pd.read_csv(lat_path).rename(columns=renames)
    key = ["n_inputs_resources", "sequence_length_resource", n_out, reuse]
    t = res.merge(lat[key + ["latency_min", "latency_max"]].groupby(key, as_index=False).mean(),
                  on=key, how="left")
    return pd.DataFrame({
        "n_in": t["n_inputs_resources"], "n_out": t[n_out], "seq": t["sequence_length_resource"],
        "reuse_factor": t[reuse], "BRAM_18K": t["bram_18k"], "LUT": t["lut"], "FF": t["ff"],
        "DSP": t["dsp48e"], "lat_best": t["latency_min"], "lat_worst": t["latency_max"],
        "report": str(res_path),
    })

def read_ntorc_tables(path: str | Path) -> pd.DataFrame:
    """N-TORC (FCCM 2025) per-layer cost tables as layer rows in :func:`read_reports`' columns.

    ``path`` is the folder with ``dense_resources_collapsed.csv``, ``dense_latency_collapsed.csv``,
    ``collapsed_conv_resources.csv`` and ``conv_latency_collapsed.csv``: Vivado HLS 2019.1,
    xczu7ev-ffvc1156-2-e, 4 ns, ap_fixed<16,8>, Resource strategy, io_parallel. A Dense over a
    sequence (``sequence_length > 1``) is hls4ml's pointwise Conv1D. The conv tables do not state
    the kernel size; N-TORC's generated networks (``dropbear_models/*.json``) use 3.
    """
    d = Path(path)
    need = ["dense_resources_collapsed.csv", "dense_latency_collapsed.csv",
            "collapsed_conv_resources.csv", "conv_latency_collapsed.csv"]
    missing = [n for n in need if not (d / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{d}: N-TORC tables missing: {', '.join(missing)}")
    common = {"level": "layer", "source": str(d), "format": "csv", "tool": "vivado_hls",
              "tool_version": "2019.1", "part": "xczu7ev-ffvc1156-2-e", "family": "zynquplus",
              "dsp_type": "DSP48E2", "clk_target_ns": 4.0, "strategy": "Resource",
              "io_type": "io_parallel", "weight_bits": 16, "input_bits": 16, "result_bits": 16}
    dense_rows = _ntorc_rows(
        d / "dense_resources_collapsed.csv", d / "dense_latency_collapsed.csv",
        {"n_inputs_latency": "n_inputs_resources", "sequence_length_latency": "sequence_length_resource",
         "dense_size_latency": "dense_size_resource",
         "correct_reuse_factor_dense_latency": "correct_reuse_factor_dense_resource"},
        n_out="dense_size_resource", reuse="correct_reuse_factor_dense_resource")
    dense_rows["layer_type"] = ["Dense" if s <= 1 else "Conv1D" for s in dense_rows["seq"]]
    dense_rows["kernel"] = [() if s <= 1 else (1,) for s in dense_rows["seq"]]
    dense_rows["out_size"] = [() if s <= 1 else (int(s),) for s in dense_rows["seq"]]
    conv_rows = _ntorc_rows(
        d / "collapsed_conv_resources.csv", d / "conv_latency_collapsed.csv",
        {"n_inputs_latency": "n_inputs_resources", "cnn_filters_latency": "cnn_filters_resources",
         "sequence_length_latency": "sequence_length_resource",
         "correct_reuse_factor_latency": "correct_reuse_factor_resource"},
        n_out="cnn_filters_resources", reuse="correct_reuse_factor_resource")
    conv_rows["layer_type"] = "Conv1D"
    conv_rows["kernel"] = [(3,)] * len(conv_rows)
    conv_rows["out_size"] = [(int(s),) for s in conv_rows["seq"]]
    out = pd.concat([dense_rows, conv_rows], ignore_index=True).drop(columns="seq")
    for k, v in common.items():
        out[k] = v
    out["latency_cycles"] = out["lat_worst"]
    out["II"] = np.nan  # the N-TORC tables carry no initiation interval
    out["config_source"] = "ntorc_table"
    for c in ("n_in", "n_out", "reuse_factor"):
        out[c] = out[c].astype(int)
    return out.reindex(columns=list(dict.fromkeys(_COLUMNS + list(out.columns))))
