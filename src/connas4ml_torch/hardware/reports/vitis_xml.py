"""Vitis HLS ``csynth.xml`` / ``*_csynth.xml`` (2020.2 and later): the ``<profile>`` schema.

Same schema as Vivado HLS (read by :func:`.csynth_xml.parse_profile`); what differs is worth its
own entry: the tool is Vitis whatever the project's log says, DSPs are ``<DSP>`` not ``<DSP48E>``,
Vitis writes a plain ``csynth.xml`` copy of the top function's report next to ``<top>_csynth.xml``
(the scan keeps one model row), and the ports' ``<Object>`` spells the function's template
arguments unmangled (used to configure layers whose mangled name Vitis or Vivado cut short).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connas4ml_torch.hardware.reports.base import Parser, register
from connas4ml_torch.hardware.reports.csynth_xml import (
    MAX_BYTES,
    is_profile,
    is_vitis,
    parse_profile,
)

__all__ = ["parse_vitis_csynth_xml"]


def parse_vitis_csynth_xml(path: str | Path) -> dict[str, Any]:
    """Parse a Vitis HLS csynth XML; raise :class:`ReportError` if unusable."""
    rec = parse_profile(Path(path))
    rec["tool_hint"] = "vitis_hls"
    return rec


register(Parser(
    name="vitis_csynth_xml", kind="report", suffixes=(".xml",), sniff=True, max_bytes=MAX_BYTES,
    matches=lambda path, head: is_profile(path, head) and is_vitis(head),
    parse=parse_vitis_csynth_xml,
))
