"""Read one report folder (one HLS solution of one project) into model and layer rows.

Per report folder: parse each report (the XML where a function has both XML and text report),
find the network's top function (the model-level row), read the project's configuration files
(``hls4ml_config.yml``, ``firmware/parameters.h`` + ``defines.h``, ``firmware/weights``, the HLS
project files, ``vivado_synth.rpt``) and configure each layer row (:mod:`.configure`). What
could not be configured is listed with the reason in ``df.attrs["scan"]["unconfigured"]``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from connas4ml_torch.errors import ReportError, ReportWarning
from connas4ml_torch.hardware.reports.base import show
from connas4ml_torch.hardware.reports.columns import COLUMNS
from connas4ml_torch.hardware.reports.configure import configure_layers
from connas4ml_torch.hardware.reports.csynth_xml import version_key
from connas4ml_torch.hardware.reports.hls4ml_layers import layer_kind
from connas4ml_torch.hardware.reports.names import fixed_type
from connas4ml_torch.hardware.reports.scan import (
    Tree,
    find_upwards,
    parse_cached,
    project_root,
)
from connas4ml_torch.hardware.reports.unconfigured import unconfigured_entry
from connas4ml_torch.hardware.resources import part_dsp, part_family, part_resources

__all__ = ["read_group", "skip"]

_ORDER = {"vivado_csynth_xml": 0, "vitis_csynth_xml": 0, "csynth_json": 1, "csynth_rpt": 2,
          "vitis_summary_rpt": 2}


def skip(skipped: list[tuple[str, str]] | None, path: Any, reason: str) -> None:
    """Warn that ``path`` was skipped and record it."""
    warnings.warn(f"skipped {show(path)}: {reason}", ReportWarning, stacklevel=3)
    if skipped is not None:
        skipped.append((show(path), reason))


def _tool(version: str | None, hint: str | None) -> str | None:
    if hint:
        return hint
    key = version_key(version)
    if not key:
        return None
    return "vitis_hls" if key[:2] >= (2020, 2) else "vivado_hls"  # Vitis starts with 2020.2


def _finish(rec: dict[str, Any], log_hint: str | None) -> dict[str, Any]:
    rec["tool"] = _tool(rec.get("tool_version"), rec.pop("tool_hint", None) or log_hint)
    if rec.get("part"):
        rec["part"] = str(rec["part"]).lower()
        try:
            rec["dsp_type"] = part_dsp(rec["part"])
            rec["family"] = rec.get("family") or part_family(rec["part"])
            for k, v in part_resources(rec["part"]).items():
                if rec.get("avail_" + k) is None:  # fill only where the report gave nothing
                    rec["avail_" + k] = v
        except ValueError:
            rec.setdefault("dsp_type", None)
    rec["latency"] = rec.get("lat_worst")
    rec["II"] = rec.get("ii_max")
    return rec


def _top_name(report_dir: Path, recs: list[dict[str, Any]], cfg: dict[str, Any],
              projects: list[dict[str, Any]]) -> str | None:
    """The network's top function: hls4ml's project name, the HLS project files' top, Vitis'
    csynth.xml, the ``<name>_prj`` folder's name. (An AXI wrapper such as ``myproject_axi`` is
    the HLS top but not the network; its row stays a layer-level 'other' row.)"""
    tops = {r["top"] for r in recs}
    cands: list[str | None] = [cfg.get("cfg_project"), "myproject"]
    cands += [p.get("top") for p in projects]
    cands += [r["top"] for r in recs if Path(r["report"]).name in ("csynth.xml", "csynth.rpt")]
    if report_dir.name == "report" and report_dir.parent.name == "syn":
        prj = report_dir.parent.parent.parent.name
        cands += [prj.removesuffix("_prj"), prj]
    for c in cands:
        if c and c in tops:
            return c
    plain = [r for r in recs if layer_kind(r["top"])[0] == "other" and "config" not in r["top"]]
    return plain[0]["top"] if len(plain) == 1 else None


def _tool_hint(root: Path) -> str | None:
    for name, tool in (("vitis_hls.log", "vitis_hls"), ("vivado_hls.log", "vivado_hls")):
        if (root / name).is_file():
            return tool
    return None


def _project_files(tree: Tree, report_dir: Path, skipped: list) -> list[dict[str, Any]]:
    if report_dir.name != "report" or report_dir.parent.name != "syn":
        return []
    sol = report_dir.parent.parent
    out = []
    for folder, pats in ((sol.parent, ("*.app",)), (sol, ("*.aps", "*_data.json"))):
        for pat in pats:
            for f in sorted(folder.glob(pat))[:8]:
                d = parse_cached(tree, f, "hls_project", skipped, skip)
                if d:
                    out.append(d)
    return out


def _weights(tree: Tree, root: Path, skipped: list) -> dict[int, Any]:
    wdir = root / "firmware" / "weights"
    out: dict[int, Any] = {}
    if not wdir.is_dir():
        return out
    for f in sorted(wdir.glob("w*.txt")):
        if f.is_symlink() and not f.resolve().is_relative_to(tree.real_root):
            continue
        d = parse_cached(tree, f, "weights_txt", skipped, skip) if f.name[1:-4].isdigit() \
            else None
        if d and d["tensor"] == "w":
            out[d["index"]] = d["values"]
    return out


def read_group(report_dir: Path, files: list[tuple[Path, str]], tree: Tree,
               skipped: list[tuple[str, str]], unconfigured: list | None = None) -> pd.DataFrame:
    """Rows of one report folder (model row(s) and layer rows)."""
    from connas4ml_torch.hardware.reports.base import REGISTRY

    root = project_root(report_dir)
    stop = tree.root if root.is_relative_to(tree.root) else root
    real = tree.real_root if root.is_relative_to(tree.root) else str(root.resolve())
    cfg_path = find_upwards(root, stop, ["hls4ml_config.yml", "hls4ml_config.yaml"], real)
    cfg = (parse_cached(tree, cfg_path, "hls4ml_config", skipped, skip) if cfg_path else None) \
        or {}
    ph = find_upwards(root, root, ["firmware/parameters.h"], real)  # this project's own only
    params: dict[int, dict[str, Any]] = {}
    if ph is not None:
        dh = ph.parent / "defines.h"
        key = f"parameters:{ph}"
        if key not in tree.cache:
            try:
                from connas4ml_torch.hardware.reports.parameters_h import parse_parameters_h

                tree.cache[key] = parse_parameters_h(ph, dh if dh.is_file() else None)
                _add_call_types(tree.cache[key], ph.parent, dh, skipped)
            except ReportError as exc:
                skip(skipped, ph, str(exc).split(": ", 1)[-1])
                tree.cache[key] = {}
        params = tree.cache[key]
    weights = _weights(tree, ph.parent.parent if ph else root, skipped)
    projects = _project_files(tree, report_dir, skipped)
    hint = _tool_hint(root)

    recs: list[dict[str, Any]] = []
    xml_tops: set[str] = set()
    xml_read: set[str] = set()
    parsers = {p.name: p for p in REGISTRY}
    for f, kind in sorted(files, key=lambda fk: (_ORDER.get(fk[1], 3), fk[0].name)):
        if f.suffix.lower() == ".rpt" and f.stem in xml_read:
            continue  # the same report's XML was read (a broken XML leaves the text report in)
        try:
            rec = parsers[kind].parse(f)
        except ReportError as exc:
            s = str(exc)
            skip(skipped, f, s.split(": ", 1)[-1] if s.startswith(show(f)) else s)
            continue
        if rec.get("format") == "xml":
            xml_tops.add(rec["top"])
            xml_read.add(f.stem)
        elif rec.get("format") == "rpt" and rec["top"] in xml_tops:
            continue  # the same function's XML was read already
        recs.append(rec)
    if not recs:
        return pd.DataFrame(columns=COLUMNS)

    top = _top_name(report_dir, [r for r in recs if r["format"] != "json"], cfg, projects)
    vs: dict[str, Any] = {}
    vsp = find_upwards(root, stop, ["vivado_synth.rpt"], real) if top else None
    if vsp is not None:
        vs = parse_cached(tree, vsp, "vivado_synth_rpt", skipped, skip) or {}
    part = next((p["part"] for p in projects if p.get("part")), None) or cfg.get("cfg_part")
    rows, layers = [], []
    seen_model = False
    # <top>_csynth.xml first, then Vitis' csynth.xml copy of it (kept only if the first is absent)
    recs.sort(key=lambda r: (Path(r["report"]).name.startswith("csynth."), r["format"] != "xml"))
    for rec in recs:
        if not rec.get("part"):
            rec["part"] = part
        rec = _finish(rec, hint)
        rec["source"] = rec["report"] if rec["format"] == "json" else str(root)
        rec["solution"] = report_dir.parent.parent.name if report_dir.name == "report" else ""
        if rec["format"] == "json" or (top is not None and rec["top"] == top):
            if seen_model and rec["format"] != "json":
                continue  # csynth.xml duplicates <top>_csynth.xml
            seen_model = seen_model or rec["format"] != "json"
            rec["level"] = "model"
            if rec["format"] != "json":
                rec.update(vs)
            rec.update({k: v for k, v in cfg.items() if not isinstance(v, (list, dict, set))})
            for k, ck in (("io_type", "cfg_io_type"), ("strategy", "cfg_strategy"),
                          ("reuse_factor", "cfg_reuse")):
                if cfg.get(ck) is not None:
                    rec[k] = cfg[ck]
            wt = fixed_type(cfg.get("cfg_precision"))
            if wt:
                rec["weight_bits"] = wt.width
        else:
            rec["level"] = "layer"
            rec["model_top"] = top
            layers.append(rec)
        rows.append(rec)
    configure_layers(layers, cfg, params, weights)
    _mark_primary(layers)
    for r in layers:
        src = r.pop("_src", {})
        r["field_sources"] = ";".join(f"{k}={v}" for k, v in sorted(src.items()))
        if unconfigured is not None:
            entry = unconfigured_entry(r, src, cfg, params)
            if entry:
                unconfigured.append(entry)
        for k in [k for k in r if k.startswith("_")]:
            r.pop(k)
    df = pd.DataFrame(rows)
    return df.reindex(columns=list(dict.fromkeys(COLUMNS + list(df.columns))))


def _add_call_types(params: dict[int, dict[str, Any]], firmware: Path, defines: Path,
                    skipped: list) -> None:
    """Each parameters.h layer's input/result widths as the top function calls it (the
    firmware's ``<project>.cpp``; not its bridge or test bench), as ``call_types``."""
    from connas4ml_torch.hardware.reports.parameters_h import parse_defines_h, parse_layer_calls

    if not params or not defines.is_file():
        return
    typedefs = parse_defines_h(defines)["typedefs"]
    for cpp in sorted(firmware.glob("*.cpp")):
        if cpp.stem.endswith(("_bridge", "_test")) or cpp.is_symlink():
            continue
        try:
            calls = parse_layer_calls(cpp, typedefs)
        except ReportError as exc:
            skip(skipped, cpp, str(exc).split(": ", 1)[-1])
            continue
        for k, types in calls.items():
            if k in params:
                params[k]["call_types"] = {**types, "file": cpp.name}
        if calls:
            return


def _mark_primary(rows: list[dict[str, Any]]) -> None:
    """``primary``: the outermost function of each layer config (helpers such as
    ``shift_line_buffer`` or ``dense_wrapper`` share the config index and sit inside it)."""
    best: dict[int, dict[str, Any]] = {}
    for r in rows:
        r["primary"] = True
        idx = r.get("config_index")
        if idx is None:
            continue
        cur = best.get(idx)
        size = (r.get("LUT") or 0) + (r.get("FF") or 0)
        if cur is None or size > (cur.get("LUT") or 0) + (cur.get("FF") or 0):
            if cur is not None:
                cur["primary"] = False
            best[idx] = r
        else:
            r["primary"] = False
