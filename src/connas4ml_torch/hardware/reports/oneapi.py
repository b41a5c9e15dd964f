"""oneAPI / Quartus ``*.ndjson`` reports: recognised so that a scan says why they are skipped.

hls4ml's oneAPI and Quartus backends target Intel FPGAs (ALMs, not LUTs; no DSP48): their numbers
do not belong in a Xilinx cost model. Each such file is listed in the scan's skipped files with
this reason rather than silently ignored.
"""

from __future__ import annotations

from pathlib import Path

from connas4ml_torch.errors import ReportError
from connas4ml_torch.hardware.reports.base import Parser, register, show


def _refuse(path: Path) -> dict:
    raise ReportError(f"{show(path)}: oneAPI/Quartus ndjson reports are not supported (Xilinx only)")


register(Parser(name="oneapi_ndjson", kind="report", suffixes=(".ndjson",),
                matches=lambda path, head: True, parse=_refuse))
