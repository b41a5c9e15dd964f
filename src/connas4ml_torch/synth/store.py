"""The sweep's dataset on disk: one JSON file per finished job, written atomically.

Layout of a sweep's output folder (``output_dir``)::

    projects/<hash>/            the hls4ml project of each job (kept; what ``surrogate fit`` reads)
        <project_name>_prj/solution1/syn/report/*.xml
        synth.log               the synthesis command's output (last attempt)
    rows/<hash>.json            the job's result row (status ok | failed)
    sweep.csv                   all rows, aggregated at the end of each run (convenience copy)
    sweep.lock                  present while a sweep runs on this folder

Each row is written to a temporary file in ``rows/``, flushed, fsync'ed and renamed over its final
name with ``os.replace`` (atomic on POSIX): a writer killed at any moment leaves either no row or a
complete one, never a partial row. Temporary files (``.*.tmp``) are never read and are removed
when the next sweep opens the folder. One file per row (instead of appending to one table) lets
workers on different machines write concurrently to a shared file system without a lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connas4ml_torch.errors import SweepLockedError  # noqa: F401 (re-exported)

__all__ = ["SweepStore", "SweepLockedError", "STATUS_OK", "STATUS_FAILED"]

STATUS_OK = "ok"
STATUS_FAILED = "failed"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SweepStore:
    """Rows and projects of one sweep under ``root``."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.rows_dir = self.root / "rows"
        self.projects_dir = self.root / "projects"
        self.dataset_path = self.root / "sweep.csv"
        self.lock_path = self.root / "sweep.lock"

    def create(self) -> SweepStore:
        """Make the folders and remove temporary files left by killed writers."""
        self.rows_dir.mkdir(parents=True, exist_ok=True)
        self.projects_dir.mkdir(parents=True, exist_ok=True)
        for tmp in self.rows_dir.glob(".*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return self

    def project_dir(self, h: str) -> Path:
        return self.projects_dir / h

    def row_path(self, h: str) -> Path:
        return self.rows_dir / f"{h}.json"

    # ---- writing -----------------------------------------------------------------------------
    def write_row(self, row: dict[str, Any]) -> Path:
        """Atomically write ``row`` (needs a ``hash`` key) as ``rows/<hash>.json``."""
        h = row["hash"]
        self.rows_dir.mkdir(parents=True, exist_ok=True)
        final = self.row_path(h)
        data = json.dumps(row, sort_keys=True, default=_json_default).encode()
        # tempfile.mkstemp gives a unique name in the same folder (same file system: os.replace
        # is an atomic rename); the dot prefix keeps it out of every reader's glob.
        fd, tmp = tempfile.mkstemp(prefix=f".{h}.", suffix=".tmp", dir=self.rows_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return final

    # ---- reading -----------------------------------------------------------------------------
    def iter_rows(self) -> Iterator[dict[str, Any]]:
        """Every complete row (unreadable files are skipped with a warning naming them)."""
        if not self.rows_dir.is_dir():
            return
        for p in sorted(self.rows_dir.glob("[!.]*.json")):
            try:
                row = json.loads(p.read_bytes())
            except (OSError, ValueError) as exc:
                warnings.warn(f"sweep row {p} is unreadable ({exc}); it will be redone",
                              stacklevel=2)
                continue
            if not isinstance(row, dict) or row.get("hash") != p.stem:
                warnings.warn(f"sweep row {p} has no matching 'hash'; it will be redone",
                              stacklevel=2)
                continue
            bad = _bad_measurements(row)
            if bad:
                warnings.warn(f"sweep row {p} has impossible measurements ({bad}); it is left "
                              "out of the dataset and will be redone", stacklevel=2)
                continue
            yield row

    def load_rows(self) -> dict[str, dict[str, Any]]:
        """``hash -> row`` of all finished jobs (ok and failed)."""
        return {r["hash"]: r for r in self.iter_rows()}

    def finished(self, include_failed: bool = True) -> set[str]:
        """Hashes a rerun skips: ok rows, and failed rows unless ``include_failed`` is False."""
        return {h for h, r in self.load_rows().items()
                if r.get("status") == STATUS_OK
                or (include_failed and r.get("status") == STATUS_FAILED)}

    def to_frame(self) -> Any:
        """All rows as a ``pandas.DataFrame`` (one row per job)."""
        import pandas as pd

        rows = list(self.iter_rows())
        df = pd.DataFrame(rows)
        for col in ("kernel", "out_size"):  # tuples as "3x3" for flat files
            if col in df:
                df[col] = df[col].map(lambda v: "x".join(map(str, v)) if isinstance(v, list) else v)
        return df

    def write_dataset(self) -> Path:
        """Aggregate all rows into ``sweep.csv`` (atomically, as the rows)."""
        df = self.to_frame()
        fd, tmp = tempfile.mkstemp(prefix=".sweep.", suffix=".tmp", dir=self.root)
        try:
            with os.fdopen(fd, "w", newline="") as f:
                df.to_csv(f, index=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.dataset_path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return self.dataset_path

    # ---- one sweep at a time -----------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold ``sweep.lock``; a lock left by a dead process on this host is taken over."""
        self.root.mkdir(parents=True, exist_ok=True)
        me = f"{socket.gethostname()} {os.getpid()}"
        for _ in range(2):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    host, pid = self.lock_path.read_text().split()
                except (OSError, ValueError):
                    host, pid = "", "0"
                if host == socket.gethostname() and not _pid_alive(int(pid)):
                    with contextlib.suppress(FileNotFoundError):
                        self.lock_path.unlink()
                    continue
                raise SweepLockedError(
                    f"{self.root} is in use by another sweep (process {pid} on {host or '?'}); "
                    f"wait for it, or delete {self.lock_path} if that process is gone") from None
            with os.fdopen(fd, "w") as f:
                f.write(me)
            break
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.lock_path.unlink()


# measured columns of a row: numbers >= 0 (or null) - anything else is a corrupt or forged row
_MEASURED = ("LUT", "FF", "BRAM_18K", "DSP", "URAM", "lat_best", "lat_worst", "ii_min", "ii_max",
             "clk_est_ns", "vsynth_LUT", "vsynth_FF", "vsynth_DSP")


def _bad_measurements(row: dict[str, Any]) -> str:
    """``"LUT=-99999, FF='garbage'"`` for the measured fields that are not finite numbers >= 0."""
    import math

    bad = []
    for k in _MEASURED:
        v = row.get(k)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            bad.append(f"{k}={v!r}")
    return ", ".join(bad)


def _json_default(x: Any) -> Any:
    if isinstance(x, (tuple, set)):
        return list(x)
    if hasattr(x, "item"):  # numpy scalars
        return x.item()
    return str(x)
