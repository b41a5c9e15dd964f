"""The one vocabulary of hardware resources: names, units, aliases, part capacities, budgets.

Every other part of the library spells a resource the way this module does: ``LUT``, ``FF``,
``BRAM_18K``, ``DSP``, ``URAM``, ``latency`` (clock cycles, worst case) and ``II`` (initiation
interval, cycles). Users may write any alias (``lut``, ``bram``, ``latency_cycles`` ...);
:func:`canonical_resource` maps it or raises an error that lists the valid names.

Part capacities: the ``AvailableResources`` that Vivado/Vitis HLS reports carry for these devices
(checked against the report corpus by the tests) and, for devices absent from it, the vendor
datasheets (DS890 UltraScale, DS891 Zynq UltraScale+, DS190 Zynq-7000, DS180 7 series, DS962/963
Alveo). Package, speed grade and temperature suffixes do not change the fabric, so a part is
matched on its device prefix: ``xcvu13p-flga2577-2-e`` and ``XCVU13P-FLGA2577-2-E`` both resolve to
``xcvu13p``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connas4ml_torch.errors import BudgetError, UnknownPartError, UnknownResourceError

__all__ = [
    "Resource", "RESOURCES", "TARGETS", "SEARCHABLE", "AREA", "REPORT_COLUMN", "canonical_resource",
    "parse_budgets", "PARTS", "part_resources", "part_family", "part_dsp", "known_parts",
    "resolve_part",
]


@dataclass(frozen=True)
class Resource:
    """One resource: its canonical name, unit, and whether an FPGA part has a capacity of it."""

    name: str
    unit: str
    description: str
    on_part: bool


RESOURCES: dict[str, Resource] = {r.name: r for r in (
    Resource("LUT", "LUTs", "look-up tables", True),
    Resource("FF", "flip-flops", "registers", True),
    Resource("BRAM_18K", "18 kb blocks", "block RAM (a 36 kb tile counts as two)", True),
    Resource("DSP", "slices", "DSP48E1/E2 slices", True),
    Resource("URAM", "blocks", "UltraRAM", True),
    Resource("latency", "cycles", "worst-case latency of one inference", False),
    Resource("II", "cycles", "initiation interval", False),
)}
# what a cost model predicts, and what a search may constrain
TARGETS = ("LUT", "FF", "BRAM_18K", "DSP", "latency", "II")
SEARCHABLE = ("LUT", "FF", "BRAM_18K", "DSP", "latency")
AREA = ("LUT", "FF", "BRAM_18K", "DSP")
# canonical name -> column of a read_reports() table that holds the measured value
REPORT_COLUMN = {"LUT": "LUT", "FF": "FF", "BRAM_18K": "BRAM_18K", "DSP": "DSP", "URAM": "URAM",
                 "latency": "lat_worst", "II": "ii_max"}
_ALIASES = {"lut": "LUT", "ff": "FF", "bram": "BRAM_18K",
            "bram_18k": "BRAM_18K", "bram18k": "BRAM_18K", "dsp": "DSP",
            "dsp48e": "DSP", "uram": "URAM", "latency": "latency", "latency_cycles": "latency",
            "lat_worst": "latency", "ii": "II", "interval": "II"}


def canonical_resource(name: str, allowed: tuple[str, ...] = SEARCHABLE) -> str:
    """``"bram"`` -> ``"BRAM_18K"``, ``"latency_cycles"`` -> ``"latency"``; anything else (or a
    resource outside ``allowed``) raises :class:`UnknownResourceError` listing the valid names."""
    key = _ALIASES.get(str(name).strip().lower())
    if key is None or key not in allowed:
        raise UnknownResourceError(f"unknown resource {name!r}; use one of {', '.join(allowed)}")
    return key


_PERCENT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*%\s*$")


def parse_budgets(constraints: Mapping[str, Any] | None, part: str | None) -> dict[str, float]:
    """Budgets in absolute units from ``{"LUT": 60000, "DSP": "10%", "latency": 40}``.

    A share (``"10%"``) is of the part's capacity and must be in (0, 100]; numbers must be finite
    and >= 0 (a very large number means "no limit"); a resource given twice under two spellings
    (``lut`` and ``LUT``) is an error. Each error names the key and the valid forms.
    """
    out: dict[str, float] = {}
    given: dict[str, str] = {}
    forms = "a number >= 0 (absolute units) or a share of the part like '10%'"
    for name, value in dict(constraints or {}).items():
        r = canonical_resource(name)
        if r in given:
            raise BudgetError(f"budget {name!r}: {r} is already given as {given[r]!r}; give each "
                              "resource once")
        given[r] = str(name)
        if isinstance(value, str):
            m = _PERCENT.match(value)
            if not m:
                raise BudgetError(f"budget {name}={value!r}: use {forms}")
            if not RESOURCES[r].on_part:
                raise BudgetError(f"budget {name}={value!r}: a {r} budget is a number of clock "
                                  "cycles, not a share of the part")
            share = float(m.group(1))
            if not 0 < share <= 100:
                raise BudgetError(f"budget {name}={value!r}: a share must be in (0%, 100%]")
            if part is None:
                raise BudgetError(f"budget {name}={value!r}: a share needs the FPGA part")
            out[r] = share / 100.0 * float(part_resources(part)[r])
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BudgetError(f"budget {name}={value!r}: use {forms}")
        v = float(value)
        if not math.isfinite(v) or v < 0:
            raise BudgetError(f"budget {name}={value!r}: must be finite and >= 0; use {forms}")
        out[r] = v
    return out

# device -> (family, DSP primitive, LUT, FF, BRAM_18K, DSP, URAM)
_CATALOGUE: dict[str, tuple[str, str, int, int, int, int, int]] = {
    # Virtex UltraScale+ (and the Alveo cards built on it)
    "xcvu13p": ("virtexuplus", "DSP48E2", 1728000, 3456000, 5376, 12288, 1280),
    "xcvu9p": ("virtexuplus", "DSP48E2", 1182240, 2364480, 4320, 6840, 960),
    "xcvu11p": ("virtexuplus", "DSP48E2", 1296000, 2592000, 4032, 9216, 960),
    "xcvu7p": ("virtexuplus", "DSP48E2", 788160, 1576320, 2880, 4560, 640),
    "xcu250": ("virtexuplus", "DSP48E2", 1728000, 3456000, 5376, 12288, 1280),
    "xcu200": ("virtexuplus", "DSP48E2", 1182240, 2364480, 4320, 6840, 960),
    "xcu280": ("virtexuplus", "DSP48E2", 1303680, 2607360, 4032, 9024, 960),
    "xcu55c": ("virtexuplus", "DSP48E2", 1303680, 2607360, 4032, 9024, 960),
    "xcu50": ("virtexuplusHBM", "DSP48E2", 871680, 1743360, 2688, 5952, 640),
    # Zynq UltraScale+
    "xczu9eg": ("zynquplus", "DSP48E2", 274080, 548160, 1824, 2520, 0),
    "xczu7ev": ("zynquplus", "DSP48E2", 230400, 460800, 624, 1728, 96),
    "xczu3eg": ("zynquplus", "DSP48E2", 70560, 141120, 432, 360, 0),
    # Kintex UltraScale / UltraScale+
    "xcku115": ("kintexu", "DSP48E2", 663360, 1326720, 4320, 5520, 0),
    "xcku035": ("kintexu", "DSP48E2", 203128, 406256, 1080, 1700, 0),
    "xcku5p": ("kintexuplus", "DSP48E2", 216960, 433920, 960, 1824, 64),
    # 7 series
    "xc7vx690t": ("virtex7", "DSP48E1", 433200, 866400, 2940, 3600, 0),
    "xc7z020": ("zynq", "DSP48E1", 53200, 106400, 280, 220, 0),
    "xc7z010": ("zynq", "DSP48E1", 17600, 35200, 120, 80, 0),
    "xc7z007s": ("zynq", "DSP48E1", 14400, 28800, 100, 66, 0),
    "xc7a100t": ("artix7", "DSP48E1", 63400, 126800, 270, 240, 0),
}

PARTS: dict[str, dict[str, int]] = {
    dev: dict(zip(("LUT", "FF", "BRAM_18K", "DSP", "URAM"), v[2:])) for dev, v in _CATALOGUE.items()
}


def known_parts() -> list[str]:
    """Device prefixes the catalogue knows."""
    return sorted(_CATALOGUE)


def resolve_part(part: str) -> str:
    """The catalogue device for a full part name (longest matching device prefix)."""
    if not isinstance(part, str) or not part.strip():
        raise UnknownPartError(f"FPGA part must be a non-empty string, got {part!r}")
    p = re.sub(r"\s+", "", part.strip().lower())
    # report spellings sometimes drop the dash between device and package (xc7z020clg400-1)
    best = max((d for d in _CATALOGUE if p.startswith(d)), key=len, default=None)
    if best is None:
        raise UnknownPartError(
            f"unknown FPGA part {part!r}; known devices: {', '.join(known_parts())} "
            "(package/speed suffixes are ignored). Give the budget in absolute numbers instead."
        )
    return best


def part_resources(part: str) -> dict[str, int]:
    """Available ``{"LUT", "FF", "BRAM_18K", "DSP", "URAM"}`` of ``part``; UnknownPartError if unknown."""
    return dict(PARTS[resolve_part(part)])


def part_family(part: str) -> str:
    """The HLS ``ProductFamily`` of ``part`` (``virtexuplus``, ``zynquplus``, ``zynq``, ...)."""
    return _CATALOGUE[resolve_part(part)][0]


def part_dsp(part: str) -> str:
    """The DSP primitive of ``part``: ``"DSP48E2"`` (27x18 multiplier) or ``"DSP48E1"`` (25x18)."""
    return _CATALOGUE[resolve_part(part)][1]
