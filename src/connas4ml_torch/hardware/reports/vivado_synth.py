"""Vivado ``report_utilization`` output (``vivado_synth.rpt``): post-synthesis resource use.

hls4ml's ``vivado_synth.tcl`` writes it next to the project after logic synthesis; its numbers
(``vsynth_LUT`` ...) are what the design really uses, often far below the HLS estimates. Rows are
found by label (``Slice LUTs``/``CLB LUTs``, ``Slice Registers``/``CLB Registers``, ``DSPs``,
``Block RAM Tile`` counted as two 18K blocks, ``URAM``), line by line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from connas4ml_torch.errors import ReportError
from connas4ml_torch.hardware.reports.base import (
    MiB,
    Parser,
    checked,
    num,
    read_text,
    register,
    resource_units,
    show,
)
from connas4ml_torch.hardware.reports.csynth_rpt import table_cells

__all__ = ["parse_vivado_synth_rpt"]

MAX_BYTES = 16 * MiB


def parse_vivado_synth_rpt(path: str | Path) -> dict[str, Any]:
    """Parse a Vivado ``report_utilization`` file; raise :class:`ReportError` if unusable."""
    path = Path(path)
    text = read_text(path, MAX_BYTES)
    if "report_utilization" not in text[:50000] and "Utilization Design Information" not in \
            text[:50000]:
        raise ReportError(f"{show(path)}: not a Vivado utilization report")
    first: dict[str, str] = {}
    for line in text.splitlines():
        cells = table_cells(line)
        if cells and len(cells) >= 2 and cells[0] not in first:
            first[cells[0]] = cells[1]

    def used(*labels: str) -> float | None:
        for lab in labels:
            if lab in first:
                return num(first[lab])
        return None

    rec: dict[str, Any] = {
        "vsynth_LUT": used("Slice LUTs*", "Slice LUTs", "CLB LUTs*", "CLB LUTs"),
        "vsynth_FF": used("Slice Registers", "CLB Registers", "Register as Flip Flop"),
        "vsynth_DSP": used("DSPs"),
        "vsynth_URAM": used("URAM"),
    }
    tiles = used("Block RAM Tile")
    rec["vsynth_BRAM_18K"] = None if tiles is None else 2 * tiles
    m = re.search(r"^\|[ \t]*Tool Version[ \t]*:[ \t]*(.{1,200})", text[:20000], re.M)
    rec["vsynth_tool"] = m.group(1).strip() if m else None
    m = re.search(r"^\|[ \t]*Device[ \t]*:[ \t]*(\S{1,200})", text[:20000], re.M)
    rec["vsynth_device"] = m.group(1) if m else None
    if rec["vsynth_LUT"] is None:
        raise ReportError(f"{show(path)}: no LUT row in the utilization table (truncated report?)")
    return checked(path, rec, resource_units(("vsynth_",)))


register(Parser(
    name="vivado_synth_rpt", kind="vsynth", suffixes=("vivado_synth.rpt",),
    matches=lambda path, head: path.name.lower() == "vivado_synth.rpt",
    parse=parse_vivado_synth_rpt, max_bytes=MAX_BYTES,
))
