"""One sweep job: a one-layer Brevitas network -> hls4ml project -> synthesis -> parsed reports.

:func:`run_job` is what an executor runs (in a worker process, possibly on another machine that
sees the same file system). It writes the project through :func:`connas4ml_torch.export.convert`
(the export path of ``export_to_hls()``), runs the synthesis command with a timeout (its whole
process group is killed on timeout or interruption), keeps the log in the project folder, reads
the reports with :func:`connas4ml_torch.hardware.reports.read_project`, and, when the job is
final (success, or its last attempt), writes its row atomically to the sweep store.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from connas4ml_torch.hardware.config import HLSConfig
from connas4ml_torch.hardware.layerspec import LayerSpec
from connas4ml_torch.synth.store import STATUS_FAILED, STATUS_OK, SweepStore
from connas4ml_torch.synth.tools import SynthTool

__all__ = ["SynthJob", "build_layer_model", "write_project", "run_synthesis", "run_job",
           "RESOURCE_COLUMNS", "log_tail"]

RESOURCE_COLUMNS = ("LUT", "FF", "BRAM_18K", "DSP", "URAM", "lat_best", "lat_worst", "ii_min",
                    "ii_max", "clk_est_ns")
_BUILD_OPT = ("array set opt {{\n    reset      1\n    csim       0\n    synth      1\n"
              "    cosim      0\n    validation 0\n    export     0\n    vsynth     {vsynth}\n"
              "    fifo_opt   0\n}}\n")


@dataclass(frozen=True)
class SynthJob:
    """Everything a worker needs for one configuration (picklable, no open resources)."""

    hash: str
    spec: LayerSpec
    tool: SynthTool
    root: str                      # the sweep's output folder (shared file system for clusters)
    timeout_s: float = 3600.0
    attempt: int = 1
    max_attempts: int = 3
    seed: int = 0
    bias_bits: int = 8
    config_dir: str = "."
    log_tail_lines: int = 40

    def next_attempt(self) -> SynthJob:
        return replace(self, attempt=self.attempt + 1)


def build_layer_model(spec: LayerSpec, seed: int = 0, bias_bits: int = 8) -> tuple[Any, Any]:
    """The one-layer Brevitas network of ``spec`` and an example input (batch 1, NCHW), as its
    layer kind builds it (``QuantIdentity`` then the layer; weights uniform in [-1, 1) from
    ``seed``; convolutions with stride 1 and 'valid' padding)."""
    from connas4ml_torch.kinds import kind_named

    return kind_named(spec.layer_type).build_layer(spec, seed, bias_bits)


def hls_config_of(spec: LayerSpec) -> HLSConfig:
    """The ``HLSConfig`` a one-layer project of ``spec`` is built with."""
    return HLSConfig(backend=spec.backend, part=spec.part, clock_period=spec.clock_period,
                     io_type=spec.io_type, strategy=spec.strategy, reuse_factor=spec.reuse_factor)


def write_project(job: SynthJob, project_dir: Path) -> dict[str, Any]:
    """Write the hls4ml project of ``job`` into ``project_dir`` (no compile); facts about it."""
    from connas4ml_torch.export import convert
    from connas4ml_torch.kinds import kind_named

    model, x = build_layer_model(job.spec, job.seed, job.bias_bits)
    hm = convert(model, hls_config_of(job.spec), str(project_dir), x)
    hm.write()
    if job.tool.writes_build_opt:  # Vitis: hls4ml's template asks for csim+cosim; we synthesize
        (project_dir / "build_opt.tcl").write_text(_BUILD_OPT.format(vsynth=int(job.tool.vsynth)))
    info: dict[str, Any] = {"project_name": hm.config.get_project_name()}
    kind = kind_named(job.spec.layer_type)
    for layer in hm.get_layers():  # the synthesized layer: its effective (hls4ml-adjusted) RF
        if layer.class_name in kind.hls_classes:
            info["hls_layer"] = layer.name
            info["effective_reuse_factor"] = layer.get_attr("reuse_factor")
            break
    return info


def log_tail(path: Path, lines: int = 40, max_bytes: int = 65536) -> str:
    """The last ``lines`` lines of a (possibly huge) log file."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def _kill_group(p: subprocess.Popen) -> None:
    # subprocess.run(timeout=) kills only the direct child; vendor tools fork workers
    # (autopilot, vivado), so the child runs in its own session and we kill the whole group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()


def run_synthesis(cmd: list[str], cwd: Path, log_path: Path, timeout_s: float) -> tuple[int, bool]:
    """Run ``cmd`` in ``cwd``, stdout+stderr to ``log_path``; ``(returncode, timed_out)``."""
    with open(log_path, "wb") as log:
        log.write(f"$ {' '.join(cmd)}\n".encode())
        log.flush()
        p = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            return p.wait(timeout=timeout_s), False
        except subprocess.TimeoutExpired:
            _kill_group(p)
            return p.returncode, True
        except BaseException:  # Ctrl-C / worker shutdown: leave no tool running
            _kill_group(p)
            raise


def _read_results(project_dir: Path) -> dict[str, Any]:
    from connas4ml_torch.hardware.reports import read_project

    df = read_project(project_dir)
    if df is None or len(df) == 0 or "level" not in df:
        raise RuntimeError(f"no synthesis report found under {project_dir}")
    model = df[df["level"] == "model"]
    if len(model) == 0:
        raise RuntimeError(f"no model-level (top) synthesis report under {project_dir}")
    top = model.iloc[0]
    out: dict[str, Any] = {c: _plain(top[c]) for c in RESOURCE_COLUMNS if c in top.index}
    out["n_layer_reports"] = int((df["level"] == "layer").sum())
    for c in ("tool_version", "vsynth_LUT", "vsynth_FF", "vsynth_DSP"):
        if c in top.index:
            out[f"report_{c}" if c == "tool_version" else c] = _plain(top[c])
    return out


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and v != v:  # NaN -> None in JSON
        return None
    return v


def run_job(job: SynthJob) -> dict[str, Any]:
    """Run one attempt of ``job``; return its row (``row["final"]`` says whether it was stored).

    A final row (status ok, a non-retryable export error, or the last attempt) is written to the
    store before returning, so it survives the driver dying right after.
    """
    t0 = time.perf_counter()
    store = SweepStore(job.root)
    proj = store.project_dir(job.hash)
    row: dict[str, Any] = {
        "hash": job.hash, **job.spec.to_dict(), "tool": job.tool.name,
        "tool_version": job.tool.version, "vsynth": job.tool.vsynth, "attempts": job.attempt,
        "seed": job.seed, "bias_bits": job.bias_bits,
        "project_dir": str(Path("projects") / job.hash), "host": socket.gethostname(),
        "pid": os.getpid(), "started_at": time.time(), "status": STATUS_FAILED, "error": None,
        "log_tail": "", "t_write_s": None, "t_synth_s": None, "t_read_s": None,
    }
    retryable = True
    log_path = proj / "synth.log"
    try:
        if proj.exists():  # left by an interrupted run or an earlier attempt: start clean
            shutil.rmtree(proj)
        proj.mkdir(parents=True)
        try:
            info = write_project(job, proj)
        except Exception as exc:
            if type(exc).__name__ == "ExportError":  # deterministic: a retry gives the same
                retryable = False
            raise
        row.update(info)
        row["t_write_s"] = time.perf_counter() - t0
        cmd = job.tool.command(proj, info["project_name"], job.config_dir)
        t1 = time.perf_counter()
        rc, timed_out = run_synthesis(cmd, proj, log_path, job.timeout_s)
        row["t_synth_s"] = time.perf_counter() - t1
        row["log_tail"] = log_tail(log_path, job.log_tail_lines)
        if timed_out:
            row["error"] = f"synthesis timed out after {job.timeout_s:g} s (process group killed)"
        elif rc != 0:
            sig = f" (signal {signal.Signals(-rc).name})" if rc < 0 else ""
            row["error"] = f"synthesis command exited with code {rc}{sig}"
        else:
            t2 = time.perf_counter()
            row.update(_read_results(proj))
            row["t_read_s"] = time.perf_counter() - t2
            row["status"] = STATUS_OK
    except Exception as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
        tb = traceback.format_exc().splitlines()[-job.log_tail_lines:]
        row["log_tail"] = "\n".join(filter(None, [row["log_tail"], *tb]))
    row["t_total_s"] = time.perf_counter() - t0
    row["finished_at"] = time.time()
    row["final"] = (row["status"] == STATUS_OK or not retryable
                    or job.attempt >= job.max_attempts)
    if row["final"]:
        store.write_row({k: v for k, v in row.items() if k != "final"})
    return row
