"""Vivado/Vitis HLS text report ``*_csynth.rpt`` ("== Vivado HLS Report for 'f'").

Read where a function has no XML (older trees and renamed copies keep only the ``.rpt``).
Parsed line by line with anchored patterns: a hostile file (megabytes of ``|`` or blank lines)
costs linear time, never a regex backtracking blow-up. Reads the header (version, part,
family), the clock table, the first latency summary row, the utilization ``Total`` and
``Available`` rows and the interface table (RTL ports, as in the XML).
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
    read_text,
    register,
    resource_units,
    show,
)
from connas4ml_torch.hardware.reports.csynth_xml import ports_sizes
from connas4ml_torch.hardware.reports.names import parse_function_name

__all__ = ["parse_csynth_rpt", "table_cells", "header_fields"]

MAX_BYTES = 32 * MiB
_HEAD = re.compile(r"==\s*(Vivado|Vitis) HLS Report for '([^'\n]{1,2000})'")
_SUMMARY = re.compile(r"==\s*Synthesis Summary Report of '([^'\n]{1,2000})'")


def table_cells(line: str) -> list[str] | None:
    """Cells of a ``| a | b |`` table row, or None if the line is not one."""
    s = line.strip()
    if len(s) < 2 or s[0] != "|" or s[-1] != "|" or len(s) > 100_000:
        return None
    return [c.strip() for c in s[1:-1].split("|")]


def header_fields(text: str) -> dict[str, Any]:
    """``* Version:``, ``* Target device:``, ``* Product family:`` of a report header."""
    out: dict[str, Any] = {}
    for key, label in (("tool_version", "Version"), ("part", "Target device"),
                       ("family", "Product family")):
        m = re.search(r"^\*[ \t]*" + label + r":[ \t]*(\S{1,200})", text[:20000], re.M)
        out[key] = m.group(1) if m else None
    return out


def parse_csynth_rpt(path: str | Path) -> dict[str, Any]:
    """Parse one ``*_csynth.rpt`` (Vivado/Vitis "HLS Report for" or Vitis "Synthesis Summary
    Report"); raise :class:`ReportError` if unusable."""
    path = Path(path)
    text = read_text(path, MAX_BYTES)
    head = _HEAD.search(text[:20000])
    if not head:
        if _SUMMARY.search(text[:20000]):
            from connas4ml_torch.hardware.reports.vitis_summary import parse_summary_text

            return parse_summary_text(path, text)
        raise ReportError(f"{show(path)}: no 'Vivado/Vitis HLS Report for' or 'Synthesis Summary "
                          "Report of' header (not a csynth report)")
    rec: dict[str, Any] = {"report": str(path), "format": "rpt", "top": head.group(2)}
    rec.update(header_fields(text))
    m = re.search(r"^\*[ \t]*Version:[ \t]*([\d.]+)", text[:20000], re.M)
    rec["tool_version"] = m.group(1) if m else None
    if head.group(1) == "Vitis":
        rec["tool_hint"] = "vitis_hls"
    lines = text.splitlines()
    section = ""
    lat_done = False
    res_cols: list[str] | None = None
    ports: list[tuple[str, str, str, str]] = []
    for line in lines:
        s = line.strip()
        if s.startswith("+ Latency"):
            section = "latency"
        elif s.startswith("== Utilization"):
            section = "util"
        elif s.startswith("== Interface"):
            section = "iface"
        cells = table_cells(line)
        if cells is None:
            continue
        if cells and cells[0] == "ap_clk" and "clk_target_ns" not in rec and len(cells) >= 3:
            rec["clk_target_ns"], rec["clk_est_ns"] = num(cells[1]), num(cells[2])
        elif section == "latency" and not lat_done and len(cells) >= 6 and \
                re.match(r"[\d?-]", cells[0] or "x"):
            rec["lat_best"], rec["lat_worst"] = num(cells[0]), num(cells[1])
            rec["ii_min"], rec["ii_max"] = num(cells[4]), num(cells[5])
            lat_done = True
        elif section == "util" and cells[0] == "Name" and res_cols is None:
            res_cols = ["DSP" if c.startswith("DSP") else c for c in cells[1:]]
        elif section == "util" and res_cols and cells[0] in ("Total", "Available"):
            prefix = "" if cells[0] == "Total" else "avail_"
            for c, v in zip(res_cols, cells[1:]):
                if c in RESOURCE_KEYS and prefix + c not in rec:
                    rec[prefix + c] = num(v)
        elif section == "iface" and len(cells) >= 6 and cells[0] not in ("RTL Ports", ""):
            ports.append((cells[0], cells[1], cells[5], cells[2]))
            if cells[0] == "ap_clk" and "object" not in rec:
                rec["object"] = cells[4] or None
    if res_cols is None or rec.get("LUT") is None and rec.get("FF") is None:
        raise ReportError(f"{show(path)}: no utilization 'Total' row (truncated report?)")
    checked(path, rec, {**resource_units(), **TIMING_UNITS})
    rec.update(ports_sizes(ports, parse_function_name(rec["top"], rec.get("object"))
                           .get("input_bits")))
    return rec


register(Parser(
    name="csynth_rpt", kind="report", suffixes=(".rpt",), sniff=True, max_bytes=MAX_BYTES,
    matches=lambda path, head: bool(_HEAD.search(head.decode("utf-8", "replace")))
    or (path.name.lower().endswith("csynth.rpt") and not path.name.lower().endswith(
        "csynth_design_size.rpt") and b"Synthesis Summary Report" not in head),
    parse=parse_csynth_rpt,
))
