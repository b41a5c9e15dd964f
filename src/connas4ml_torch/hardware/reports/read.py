"""The entry points: :func:`read_reports` (a whole tree) and :func:`read_project` (one project),
with the per-tree account in ``df.attrs["scan"]``: counts, the files skipped and why, and the
layers that could not be fully configured (``unconfigured``: ``(report, missing fields,
reason)``), so that a user learns what their tree lacks instead of finding NaNs.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from connas4ml_torch.errors import ReportError, ReportWarning
from connas4ml_torch.hardware.reports.base import show
from connas4ml_torch.hardware.reports.columns import COLUMNS
from connas4ml_torch.hardware.reports.project import read_group, skip
from connas4ml_torch.hardware.reports.scan import Tree, discover

__all__ = ["read_reports", "read_project"]

log = logging.getLogger(__name__)


def _scan_summary(df: pd.DataFrame, n_groups: int, skipped: list, unconfigured: list,
                  tree: Tree) -> dict[str, Any]:
    lay = df[df["level"] == "layer"] if len(df) else df
    return {
        "projects": int(df.loc[df["level"] == "model", "source"].nunique()) if len(df) else 0,
        "report_folders": n_groups,
        "model_reports": int((df["level"] == "model").sum()) if len(df) else 0,
        "layer_reports": int(len(lay)),
        "skipped": len(skipped),
        "skipped_files": skipped,
        "unconfigured": unconfigured,
        "sizes_from_ports": int(lay["field_sources"].fillna("").str.contains(
            r"n_(?:in|out)=ports").sum()) if len(lay) and "field_sources" in lay else 0,
        "tables": tree.tables,
        "files_seen": tree.files_seen,
    }


def read_reports(path: str | Path, progress: bool = True) -> pd.DataFrame:
    """Scan a directory tree for hls4ml projects and return one row per model/layer report.

    Bad files are skipped with a :class:`ReportWarning`; counts, the skipped files and the layers
    that could not be configured (``unconfigured``: ``(report, missing fields, reason)``) are in
    ``df.attrs["scan"]``. A folder with no report at all gives an empty table and a warning.
    """
    from tqdm.auto import tqdm

    root = Path(path)
    tree = discover(root)
    skipped: list[tuple[str, str]] = []
    for p, reason in tree.problems:
        skip(skipped, p, reason)
    unconfigured: list[tuple[str, list[str], str]] = []
    frames = []
    for d, files in tqdm(tree.reports.items(), desc="report folders", disable=not progress,
                         unit="dir"):
        try:
            frames.append(read_group(d, files, tree, skipped, unconfigured))
        except (ReportError, OSError) as exc:  # a folder-level failure never stops the scan
            skip(skipped, d, str(exc))
    frames = [f for f in frames if not f.empty]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    scan = _scan_summary(df, len(tree.reports), skipped, unconfigured, tree)
    df.attrs["scan"] = scan
    if not tree.reports:
        warnings.warn(f"read_reports({show(root)}): no synthesis report found in {tree.files_seen}"
                      f" files{' (some folders could not be read)' if tree.problems else ''}",
                      ReportWarning, stacklevel=2)
    msg = (f"read_reports({show(root)}): {scan['projects']} projects, {scan['model_reports']} "
           f"model reports, {scan['layer_reports']} layer reports, {scan['skipped']} files "
           f"skipped, {len(unconfigured)} layers not fully configured")
    log.info(msg)
    if progress:
        print(msg)
    return df


def read_project(path: str | Path, *, _skipped: list[tuple[str, str]] | None = None) -> \
        pd.DataFrame:
    """Read one hls4ml project (or one report folder): model row(s) and layer rows.

    ``path`` may be the hls4ml output folder, the ``<name>_prj`` folder, or a ``syn/report``
    folder. Unparsable files are skipped with a :class:`ReportWarning`.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"hls4ml project {show(path)} does not exist")
    tree = discover(path)
    skipped = _skipped if _skipped is not None else []
    for p, reason in tree.problems:
        skip(skipped, p, reason)
    unconfigured: list = []
    frames = [read_group(d, files, tree, skipped, unconfigured)
              for d, files in tree.reports.items()]
    frames = [f for f in frames if not f.empty]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    df.attrs["scan"] = _scan_summary(df, len(tree.reports), skipped, unconfigured, tree)
    return df

