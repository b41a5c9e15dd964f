"""FPGA part catalogue: available LUT, FF, BRAM_18K, DSP, URAM per AMD/Xilinx device.

Numbers are the ``AvailableResources`` that Vivado/Vitis HLS reports carry for these devices
(checked against the report corpus by the tests) and, for devices absent from it, the vendor
datasheets (DS890 UltraScale, DS891 Zynq UltraScale+, DS190 Zynq-7000, DS180 7 series, DS962/963
Alveo). Package, speed grade and temperature suffixes do not change the fabric, so a part is
matched on its device prefix: ``xcvu13p-flga2577-2-e`` and ``XCVU13P-FLGA2577-2-E`` both resolve to
``xcvu13p``.
"""

from __future__ import annotations

import re

__all__ = ["PARTS", "part_resources", "part_family", "part_dsp", "known_parts", "resolve_part"]

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
        raise ValueError(f"FPGA part must be a non-empty string, got {part!r}")
    p = re.sub(r"\s+", "", part.strip().lower())
    # report spellings sometimes drop the dash between device and package (xc7z020clg400-1)
    best = max((d for d in _CATALOGUE if p.startswith(d)), key=len, default=None)
    if best is None:
        raise ValueError(
            f"unknown FPGA part {part!r}; known devices: {', '.join(known_parts())} "
            "(package/speed suffixes are ignored). Give the budget in absolute numbers instead."
        )
    return best


def part_resources(part: str) -> dict[str, int]:
    """Available ``{"LUT", "FF", "BRAM_18K", "DSP", "URAM"}`` of ``part``; ValueError if unknown."""
    return dict(PARTS[resolve_part(part)])


def part_family(part: str) -> str:
    """The HLS ``ProductFamily`` of ``part`` (``virtexuplus``, ``zynquplus``, ``zynq``, ...)."""
    return _CATALOGUE[resolve_part(part)][0]


def part_dsp(part: str) -> str:
    """The DSP primitive of ``part``: ``"DSP48E2"`` (27x18 multiplier) or ``"DSP48E1"`` (25x18)."""
    return _CATALOGUE[resolve_part(part)][1]
