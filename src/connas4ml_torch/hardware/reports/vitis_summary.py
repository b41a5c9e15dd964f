"""Vitis HLS ``csynth.rpt`` "Synthesis Summary Report": the top function's row of its table.

Vitis (2021.1 and later) writes one summary for the whole design: a table of modules and loops
with latency, interval and BRAM/DSP/FF/LUT/URAM per row (``29 (~0%)``, ``-`` for none). We read
the top function's row, the numbers the tool reports for the whole network; the per-function
rows duplicate the per-function XML reports next to it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from connas4ml_torch.errors import ReportError
from connas4ml_torch.hardware.reports.base import (
    RESOURCE_KEYS,
    TIMING_UNITS,
    Parser,
    checked,
    num,
    read_text,
    register,
    resource_units,
    show,
)
from connas4ml_torch.hardware.reports.csynth_rpt import MAX_BYTES, header_fields, table_cells

__all__ = ["parse_vitis_summary_rpt", "parse_summary_text"]

_TITLE = re.compile(r"==\s*Synthesis Summary Report of '([^'\n]{1,2000})'")


def parse_summary_text(path: Path, text: str) -> dict[str, Any]:
    """The top function's numbers from a summary report's text."""
    m = _TITLE.search(text[:20000])
    if not m:
        raise ReportError(f"{show(path)}: no 'Synthesis Summary Report of' title")
    top = m.group(1)
    rec: dict[str, Any] = {"report": str(path), "format": "rpt", "top": top,
                           "tool_hint": "vitis_hls", **header_fields(text)}
    m = re.search(r"^[ \t]*\*[ \t]*Version:[ \t]*([\d.]+)", text[:20000], re.M)
    rec["tool_version"] = m.group(1) if m else None
    for key, label in (("part", "Target device"), ("family", "Product family")):
        m = re.search(r"^[ \t]*\*[ \t]*" + label + r":[ \t]*(\S{1,200})", text[:20000], re.M)
        rec[key] = m.group(1) if m else None
    header = row = None
    for line in text.splitlines():
        cells = table_cells(line)
        if cells is None:
            continue
        if header is None and cells[0] in ("Modules", "& Loops"):
            header = cells
        name = cells[0].lstrip("+ ").rstrip("*").strip()
        if cells[0].startswith("+") and name == top:
            row = cells
            break
    if header is None or row is None:
        raise ReportError(f"{show(path)}: no summary row for '{top}' (truncated report?)")
    # columns after the name: issue, slack, latency cycles, latency ns, iteration latency,
    # interval, trip count, pipelined, BRAM, DSP, FF, LUT, URAM
    cells = row[1:]
    if len(cells) < 13:
        raise ReportError(f"{show(path)}: summary row for '{top}' has {len(cells)} cells, "
                          "expected 13")
    rec["lat_best"] = rec["lat_worst"] = num(cells[2])
    rec["ii_min"] = rec["ii_max"] = num(cells[5])
    for k, c in zip(RESOURCE_KEYS, cells[8:13]):
        rec[k] = 0.0 if c.strip() == "-" else num(c.split("(")[0])
    return checked(path, rec, {**resource_units(), **TIMING_UNITS})


def parse_vitis_summary_rpt(path: str | Path) -> dict[str, Any]:
    """Parse a Vitis "Synthesis Summary Report" ``csynth.rpt``; raise :class:`ReportError`."""
    path = Path(path)
    return parse_summary_text(path, read_text(path, MAX_BYTES))


register(Parser(
    name="vitis_summary_rpt", kind="report", suffixes=(".rpt",), sniff=True, max_bytes=MAX_BYTES,
    matches=lambda path, head: b"Synthesis Summary Report of" in head,
    parse=parse_vitis_summary_rpt,
))
