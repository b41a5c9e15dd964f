"""hls4ml CI synthesis summaries (``test/pytest/baselines/**/*.json``): ``{"CSynthesisReport"}``.

hls4ml's test suite stores, per test model, the C-synthesis numbers (and sometimes the Vivado
post-synthesis ones) as JSON. One file is one model-level row. ``json`` parses iteratively, but
a deeply nested document still raises ``RecursionError`` in the decoder: that, too, becomes a
:class:`ReportError`.
"""

from __future__ import annotations

import json
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

__all__ = ["parse_csynth_json"]

MAX_BYTES = 4 * MiB


def parse_csynth_json(path: str | Path) -> dict[str, Any]:
    """Parse an hls4ml CI synthesis summary JSON; raise :class:`ReportError` if unusable."""
    path = Path(path)
    try:
        data = json.loads(read_text(path, MAX_BYTES))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{show(path)}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    except RecursionError as exc:
        raise ReportError(f"{show(path)}: JSON nested too deeply") from exc
    if not isinstance(data, dict) or not isinstance(data.get("CSynthesisReport"), dict):
        raise ReportError(f"{show(path)}: no 'CSynthesisReport' object (not an hls4ml synthesis "
                          "summary)")
    c = data["CSynthesisReport"]
    rec: dict[str, Any] = {
        "report": str(path),
        "format": "json",
        "top": path.stem,
        "clk_target_ns": num(c.get("TargetClockPeriod")),
        "clk_est_ns": num(c.get("EstimatedClockPeriod")),
        "lat_best": num(c.get("BestLatency")),
        "lat_worst": num(c.get("WorstLatency")),
        "ii_min": num(c.get("IntervalMin")),
        "ii_max": num(c.get("IntervalMax")),
    }
    for k in RESOURCE_KEYS:
        src = "DSP48E" if k == "DSP" and "DSP" not in c else k
        rec[k] = num(c.get(src))
        rec["avail_" + k] = num(c.get("Available" + src))
    if rec.get("LUT") is None:
        raise ReportError(f"{show(path)}: CSynthesisReport has no LUT")
    vs = data.get("VivadoSynthReport")
    if isinstance(vs, dict):
        for k, src in (("LUT", "LUT"), ("FF", "FF"), ("BRAM_18K", "BRAM_18K"), ("DSP", "DSP48E"),
                       ("URAM", "URAM")):
            if src in vs:
                rec["vsynth_" + k] = num(vs.get(src))
    return checked(path, rec, {**resource_units(("", "avail_", "vsynth_")), **TIMING_UNITS})


register(Parser(
    name="csynth_json", kind="report", suffixes=(".json",), sniff=True, max_bytes=MAX_BYTES,
    matches=lambda path, head: not path.name.startswith("_") and b"CSynthesisReport" in head[:512],
    parse=parse_csynth_json,
))
