"""Find report files under a folder, group them by project, and find each project's config files.

The walk never follows a symbolic link to a folder (``os.walk(followlinks=False)``: no loops),
reads a linked file only when it resolves inside the scanned folder, records every folder it
cannot list, and sniffs a file's first bytes only when its name ends like a known format.
Report files are grouped by folder (one ``syn/report`` per HLS solution); the project root is
the folder above ``<name>_prj`` (hls4ml's output folder), where ``hls4ml_config.yml`` and
``firmware/`` live. Configuration files are looked up from the project root upwards, never
above the scanned folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connas4ml_torch.errors import ReportError
from connas4ml_torch.hardware.reports.base import REGISTRY, parser_for, show

__all__ = ["Tree", "discover", "find_report_dirs", "project_root", "find_upwards", "parse_cached"]


@dataclass
class Tree:
    """What a walk found: report files by folder, the problems met, and a parse cache."""

    root: Path
    reports: dict[Path, list[tuple[Path, str]]] = field(default_factory=dict)
    tables: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    cache: dict[str, Any] = field(default_factory=dict)
    files_seen: int = 0

    @property
    def real_root(self) -> str:
        return os.path.realpath(self.root)


def _inside(path: Path, real_root: str) -> bool:
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def discover(path: str | Path) -> Tree:
    """Walk ``path`` (a folder or one file) and classify every file a parser takes."""
    root = Path(path)
    if not root.exists() and not root.is_symlink():
        raise FileNotFoundError(f"report folder {show(root)} does not exist")
    tree = Tree(root if root.is_dir() else root.parent)
    if not root.is_dir():
        _classify(tree, root)
        return tree
    real_root = tree.real_root

    def onerror(exc: OSError) -> None:
        tree.problems.append((show(exc.filename or root), f"cannot list folder "
                                                          f"({exc.strerror or exc})"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror, followlinks=False):
        dirnames.sort()
        for d in dirnames:
            if os.path.islink(os.path.join(dirpath, d)):
                tree.problems.append((show(os.path.join(dirpath, d)),
                                      "symbolic link to a folder: not followed"))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            tree.files_seen += 1
            if not any(name.lower().endswith(s) for pr in REGISTRY for s in pr.suffixes):
                continue
            if p.is_symlink() and not _inside(p, real_root):
                tree.problems.append((show(p), "symbolic link pointing outside the scanned "
                                               "folder: not read"))
                continue
            _classify(tree, p)
    _drop_tool_database(tree)
    return tree


def _drop_tool_database(tree: Tree) -> None:
    """Forget the reports of a solution's ``.autopilot/db`` (the HLS tool's working database:
    ``*.verbose.rpt`` copies of the same synthesis) where the solution has ``syn/report``: read
    both, one synthesis would count as two projects."""
    for d in [d for d in tree.reports if d.name == "db" and d.parent.name == ".autopilot"]:
        if d.parent.parent / "syn" / "report" in tree.reports:
            del tree.reports[d]


def _classify(tree: Tree, p: Path) -> None:
    parser = parser_for(p)
    if parser is None:
        return
    if parser.kind == "report":
        tree.reports.setdefault(p.parent, []).append((p, parser.name))
    elif parser.kind == "table":
        tree.tables.append(str(p))


def find_report_dirs(path: str | Path) -> dict[Path, list[tuple[Path, str]]]:
    """All folders under ``path`` that hold report files, with each file's parser name."""
    return discover(path).reports


def project_root(report_dir: Path) -> Path:
    """The hls4ml output folder of a ``<name>_prj/<solution>/syn/report`` folder (else itself)."""
    p = report_dir
    if p.name == "report" and p.parent.name == "syn":
        prj = p.parent.parent.parent  # <name>_prj (or the HLS project dir)
        return prj.parent if prj.name.endswith("_prj") else prj
    return p


def find_upwards(start: Path, stop: Path, names: Iterable[str], real_root: str) -> Path | None:
    """The first ``start/<name>``, then in each parent up to ``stop``, that is a regular file
    inside the scanned folder."""
    names = list(names)
    p = start
    for _ in range(64):
        for n in names:
            cand = p / n
            try:
                if cand.is_file() and (not cand.is_symlink() or _inside(cand, real_root)):
                    return cand
            except OSError:
                continue
        if p == stop or p.parent == p:
            return None
        p = p.parent
    return None


def parse_cached(tree: Tree, path: Path, parser_name: str, skipped: list[tuple[str, str]],
                 warn: Any) -> Any:
    """Parse ``path`` with the named parser once per scan; a failure is recorded and gives None."""
    key = f"{parser_name}:{path}"
    if key in tree.cache:
        return tree.cache[key]
    parser = next((p for p in REGISTRY if p.name == parser_name), None)
    result = None
    if parser is not None:
        try:
            result = parser.parse(path)
        except ReportError as exc:
            warn(skipped, path, _reason(exc, path))
    tree.cache[key] = result
    return result


def _reason(exc: Exception, path: Path) -> str:
    s = str(exc)
    for prefix in (show(path) + ": ", str(path) + ": "):
        if s.startswith(prefix):
            return s[len(prefix):]
    return s
