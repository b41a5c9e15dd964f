"""Vivado HLS ``*_csynth.xml``: one synthesized function's estimates (the ``<profile>`` schema).

Vivado HLS (up to 2020.1) and Vitis HLS (from 2020.2) write the same schema; this module reads it
for both and registers the Vivado one (Vitis: :mod:`.vitis_xml`). Besides the numbers we keep the
RTL ports: their count and width bound a layer's array sizes where nothing else states them, and
Vitis' ``<Object>`` of the clock port is the function's unmangled C++ signature.

XML goes through :func:`.base.parse_xml` (``defusedxml`` wherever a DTD appears): a report is
tool output, but a scanned tree is anyone's, and an entity declaration (``billion laughs``,
``<!ENTITY x SYSTEM "file:///etc/passwd">``) is refused, never expanded or fetched.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from connas4ml_torch.errors import ReportError
from connas4ml_torch.hardware.reports.base import (
    RESOURCE_KEYS,
    TIMING_UNITS,
    MiB,
    Parser,
    checked,
    num,
    parse_xml,
    read_text,
    register,
    resource_units,
    show,
)
from connas4ml_torch.hardware.reports.names import parse_function_name

__all__ = ["parse_csynth_xml", "parse_profile", "ports_sizes", "version_key"]

MAX_BYTES = 32 * MiB
_CONTROL = re.compile(r"^ap_(clk|rst|rst_n|start|done|idle|ready|ce|continue)$")
_HANDSHAKE = re.compile(r"_(?:ap_vld|ap_ack|dout|din|empty_n|full_n|TDATA|TVALID|TREADY|TLAST|"
                        r"TKEEP|TSTRB|address\d|ce\d|we\d|q\d|d\d)$")
# an ap_fifo stream's one-bit write/read strobe (an output; a scalar INPUT named ``data_0_V_read``
# is Vivado HLS's name for the data itself)
_FIFO_STROBE = re.compile(r"_(?:write|read)$")


def version_key(version: str | None) -> tuple[int, ...]:
    """``"2019.2.1"`` -> ``(2019, 2, 1)``."""
    return tuple(int(x) for x in re.findall(r"\d+", version or "")[:3])


def _mode(values: list[int]) -> int | None:
    return max(sorted(set(values)), key=values.count) if values else None


def ports_sizes(ports: list[tuple[str, str, str, str]], elem_bits: int | None = None) -> \
        dict[str, int]:
    """Element counts and widths from RTL ports ``(name, dir, type, bits)``.

    ``ports_in``: data inputs (one per element of a partitioned array; a port ``k`` times as wide
    as the element type ``elem_bits`` packs ``k`` elements); ``ports_in_wide_bits``: total bits
    of inputs wider than 64 that could not be split so; ``ports_out``: ``ap_return_*`` (or
    output pointer) ports; ``port_in_bits``/``port_out_bits``: their usual width.
    """
    rets = [b for n, _, _, b in ports if re.fullmatch(r"ap_return(_\d+)?", n)]
    if not rets:  # outputs written through pointers (res_0_V + res_0_V_ap_vld)
        rets = [b for n, d, t, b in ports if d == "out" and t == "pointer"
                and not _HANDSHAKE.search(n) and not (_FIFO_STROBE.search(n) and b == "1")]
    ins = [(n, b) for n, d, t, b in ports
           if d == "in" and t in ("scalar", "pointer") and not _CONTROL.match(n)
           and not _HANDSHAKE.search(n)]
    stream_in = [b for n, d, _, b in ports if d == "in" and n.endswith("_dout")]
    stream_out = [b for n, d, _, b in ports if d == "out" and n.endswith("_din")]
    out: dict[str, int] = {}
    widths = [int(b) for _, b in ins if b.isdigit()]
    packed = [b for b in widths if elem_bits and b > elem_bits and b % elem_bits == 0]
    narrow = [(n, int(b)) for n, b in ins if b.isdigit() and int(b) <= 64 and int(b) not in packed]
    wide = [b for b in widths if b > 64 and b not in packed]
    if rets:
        out["ports_out"] = len(rets)
    n_in = len(narrow) + sum(b // elem_bits for b in packed) if elem_bits else len(narrow)
    if n_in:
        out["ports_in"] = n_in
    if wide:
        out["ports_in_wide_bits"] = sum(wide)
    w_in = _mode([b for _, b in narrow] or [int(b) for b in stream_in if b.isdigit()])
    w_out = _mode([int(b) for b in rets if b.isdigit()]
                  or [int(b) for b in stream_out if b.isdigit()])
    if w_in and w_in <= 64:
        out["port_in_bits"] = w_in
    if w_out and w_out <= 64:
        out["port_out_bits"] = w_out
    return out


def parse_profile(path: Path, limit: int = MAX_BYTES) -> dict[str, Any]:
    """Read a csynth ``<profile>`` XML (either tool); raise :class:`ReportError` if unusable."""
    root = parse_xml(read_text(path, limit), path)
    if root.tag != "profile":
        raise ReportError(f"{show(path)}: root element <{root.tag}> is not a csynth <profile>")
    ua = root.find("UserAssignments")
    area = root.find("AreaEstimates")
    if ua is None or area is None:
        raise ReportError(f"{show(path)}: missing UserAssignments or AreaEstimates "
                          "(truncated report?)")
    rec: dict[str, Any] = {
        "report": str(path),
        "format": "xml",
        "tool_version": (root.findtext("ReportVersion/Version") or "").strip() or None,
        "top": (ua.findtext("TopModelName") or "").strip(),
        "part": (ua.findtext("Part") or "").strip() or None,
        "family": (ua.findtext("ProductFamily") or "").strip() or None,
        "clk_target_ns": num(ua.findtext("TargetClockPeriod")),
        "clk_est_ns": num(root.findtext(
            "PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod")),
    }
    lat = root.find("PerformanceEstimates/SummaryOfOverallLatency")
    if lat is not None:
        rec["lat_best"] = num(lat.findtext("Best-caseLatency"))
        rec["lat_worst"] = num(lat.findtext("Worst-caseLatency"))
        rec["ii_min"] = num(lat.findtext("Interval-min"))
        rec["ii_max"] = num(lat.findtext("Interval-max"))
    res = area.find("Resources")
    if res is None:
        raise ReportError(f"{show(path)}: no AreaEstimates/Resources")
    for src, prefix in ((res, ""), (area.find("AvailableResources"), "avail_")):
        if src is None:
            continue
        for child in src:
            key = "DSP" if child.tag.startswith("DSP") else child.tag
            if key in RESOURCE_KEYS:
                rec[prefix + key] = num(child.text)
    if rec.get("LUT") is None and rec.get("FF") is None:
        raise ReportError(f"{show(path)}: no LUT/FF numbers in AreaEstimates")
    if not rec["top"]:
        raise ReportError(f"{show(path)}: no TopModelName")
    checked(path, rec, {**resource_units(), **TIMING_UNITS})
    ports = []
    for p in root.iter("RtlPorts"):
        name = (p.findtext("name") or "").strip()
        ports.append((name, (p.findtext("Dir") or "").strip(), (p.findtext("Type") or "").strip(),
                      (p.findtext("Bits") or "").strip()))
        if name == "ap_clk" and "object" not in rec:
            rec["object"] = (p.findtext("Object") or "").strip() or None
    fn = parse_function_name(rec["top"], rec.get("object"))
    rec.update(ports_sizes(ports, fn.get("input_bits")))
    return rec


def parse_csynth_xml(path: str | Path) -> dict[str, Any]:
    """Parse one ``*_csynth.xml`` (Vivado HLS or Vitis HLS); raise :class:`ReportError` if
    unusable. Keys: ``report, format, tool_version, top, part, family, clk_target_ns,
    clk_est_ns, lat_best, lat_worst, ii_min, ii_max``, resources and ``avail_*``, port sizes."""
    path = Path(path)
    rec = parse_profile(path)
    if version_key(rec.get("tool_version"))[:2] >= (2020, 2):
        rec["tool_hint"] = "vitis_hls"
    return rec


_VERSION = re.compile(rb"<Version>\s*(\d{4})\.(\d)")


def is_profile(path: Path, head: bytes) -> bool:
    """A csynth profile by name (``*csynth.xml``) or by its first bytes."""
    name = path.name.lower()
    if name.endswith("csynth_design_size.xml"):
        return False
    return name.endswith("csynth.xml") or (b"<profile>" in head and b"<ReportVersion>" in head)


def is_vitis(head: bytes) -> bool:
    """Whether the profile's ``<Version>`` is Vitis HLS (2020.2 and later)."""
    m = _VERSION.search(head)
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= (2020, 2)


register(Parser(
    name="vivado_csynth_xml", kind="report", suffixes=(".xml",), sniff=True, max_bytes=MAX_BYTES,
    matches=lambda path, head: is_profile(path, head) and not is_vitis(head),
    parse=parse_csynth_xml,
))
