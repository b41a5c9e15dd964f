"""HLS project files: ``<prj>/*.app`` (``hls.app``/``vivado_hls.app``), ``solution*/*.aps`` and
Vitis' ``solution*/solution*_data.json``.

They name what the reports alone do not always name: the top function (``top="myproject"`` in
the ``.app``, ``"Top"`` in the data JSON), the part and clock of a solution (``.aps``), and
Vivado's ``name_max_length`` (why long function names were cut). The scan uses the top to tell
the model-level report from the layer reports when the project name is not ``myproject``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from connas4ml_torch.errors import ReportError
from connas4ml_torch.hardware.reports.base import (
    MiB,
    Parser,
    num,
    parse_xml,
    read_text,
    register,
    show,
)

__all__ = ["parse_hls_project"]

MAX_BYTES = 4 * MiB


def _xml(path: Path) -> Any:
    return parse_xml(read_text(path, MAX_BYTES), path)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_hls_project(path: str | Path) -> dict[str, Any]:
    """``{"file_kind", "top", "project", "part", "clk_target_ns", "solution",
    "name_max_length"}`` (what the file states) of an ``.app``, ``.aps`` or data JSON."""
    path = Path(path)
    low = path.name.lower()
    out: dict[str, Any] = {"file": str(path)}
    if low.endswith(".json"):
        try:
            data = json.loads(read_text(path, MAX_BYTES))
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ReportError(f"{show(path)}: not valid JSON ({str(exc)[:120]})") from exc
        if not isinstance(data, dict) or not isinstance(data.get("Top"), str):
            raise ReportError(f"{show(path)}: no 'Top' (not a Vitis solution data file)")
        out.update(file_kind="solution_data", top=data["Top"])
        tgt = data.get("Target")
        if isinstance(tgt, dict) and isinstance(tgt.get("Device"), str):
            out["part"] = "".join(str(tgt.get(k) or "") for k in ("Device", "Package", "Speed"))
        return out
    root = _xml(path)
    if low.endswith(".app"):
        if _local(root.tag) != "project":
            raise ReportError(f"{show(path)}: root <{_local(root.tag)}> is not an HLS project")
        out.update(file_kind="app", top=root.attrib.get("top"), project=root.attrib.get("name"))
        return out
    if _local(root.tag) != "solution":
        raise ReportError(f"{show(path)}: root <{_local(root.tag)}> is not an HLS solution")
    out["file_kind"] = "aps"
    for el in root.iter():
        tag = _local(el.tag)
        if tag == "TargetInfo" and el.attrib.get("value"):
            out["part"] = el.attrib["value"].replace(":", "")
        elif tag == "clock" and el.attrib.get("period"):
            out["clk_target_ns"] = num(el.attrib["period"])
        elif tag == "config_compile" and el.attrib.get("name_max_length"):
            out["name_max_length"] = num(el.attrib["name_max_length"])
        elif tag == "name":
            v = el.find("value")
            if v is not None and v.attrib.get("string"):
                out["solution"] = v.attrib["string"]
    return out


_DATA_JSON = re.compile(r"solution\w*_data\.json")

register(Parser(
    name="hls_project", kind="project", suffixes=(".app", ".aps", "_data.json"),
    matches=lambda path, head: path.suffix.lower() in (".app", ".aps")
    or bool(_DATA_JSON.fullmatch(path.name.lower())),
    parse=parse_hls_project, max_bytes=MAX_BYTES,
))
