"""``run_sweep``: sample layer configurations, synthesize each one, keep every result.

The YAML config (every section optional except ``output_dir``; paths relative to the YAML file)::

    output_dir: runs/dense_sweep        # str: projects/, rows/, sweep.csv go here
    hls:                                # HLSConfig fields (hls4ml spellings accepted)
      backend: Vitis                    # Vitis | Vivado
      part: xcvu13p-flga2577-2-e
      clock_period: 5
      io_type: io_parallel
      strategy: Latency
      reuse_factor: 1
    space:                              # axis: list of choices (a scalar = one choice)
      layer_type: [Dense, Conv1D, Conv2D]
      n_in: [8, 16, 32]                 # features (Dense) or channels (Conv)
      n_out: [8, 16, 32]
      kernel: [1, 3]                    # square / 1-d; ignored by Dense
      out_size: [8, 16]                 # output length / height = width; ignored by Dense
      weight_bits: [2, 4, 8]
      input_bits: [4, 8]
      reuse_factor: [1, 2, 4]           # overrides hls.reuse_factor
      strategy: [Latency]               # overrides hls.strategy
      io_type: [io_parallel]            # overrides hls.io_type
    sampling:
      method: grid                      # grid | lhs | sobol | random
      n: null                           # int: points of a space-filling design (cap for grid)
      seed: 0
    synthesis:
      command: null                     # null = vendor flow; or a list of args with
                                        # {project_dir} {project_name} {python} {config_dir}
      vsynth: false                     # also run Vivado logic synthesis (vivado_synth.rpt)
      timeout_s: 7200                   # per attempt; the tool's process group is killed
      retries: 2                        # extra attempts after a crash / timeout / error
      tool_version: null                # str; default: read from the tool's install path
      tools: {}                         # name -> path: vitis-run, vitis_hls, vivado_hls, vivado
      seed: 0                           # random weights of the one-layer networks
      bias_bits: 8
      log_tail_lines: 40
    executor:
      kind: local                       # local | dask | slurm | pbs | htcondor
      workers: 2                        # local / dask LocalCluster
      address: null                     # dask: an existing scheduler, e.g. tcp://host:8786
      # slurm/pbs/htcondor: dask-jobqueue keys (cores, memory, queue, account, walltime,
      # processes, job_extra_directives, job_script_prologue, ...) plus jobs: N or adapt: {...}
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connas4ml_torch import schema
from connas4ml_torch.errors import ConfigError
from connas4ml_torch.hardware.config import HLSConfig
from connas4ml_torch.synth.executors import EXECUTOR_KINDS, Executor, make_executor
from connas4ml_torch.synth.jobs import SynthJob, run_job
from connas4ml_torch.synth.sampling import (
    METHODS,
    config_hash,
    dedupe,
    normalize_space,
    sample_specs,
)
from connas4ml_torch.synth.store import STATUS_FAILED, STATUS_OK, SweepStore
from connas4ml_torch.synth.tools import SynthTool, custom_tool, vendor_tool

__all__ = ["SweepConfig", "Sampling", "SynthesisSettings", "SweepResult", "load_config",
           "plan_sweep", "run_sweep"]

@dataclass
class Sampling:
    """Which one-layer configurations: a grid or ``n`` points of a space-filling design."""

    method: str = "grid"                              # grid | lhs | sobol | random
    n: int | None = schema.setting(None, ge=1)        # points (a cap for grid)
    seed: int = 0

    def __post_init__(self) -> None:
        schema.check(self, "sampling")
        if self.method not in METHODS:
            raise ConfigError(f"sampling.method: expected one of {'|'.join(METHODS)}, got "
                              f"{self.method!r}{schema.closest(self.method, list(METHODS))}")


@dataclass
class SynthesisSettings:
    """How each project is synthesized (vendor flow or a custom command), with its limits."""

    command: list[str] | None = None
    vsynth: bool = False
    timeout_s: float = schema.setting(7200.0, gt=0)   # finite: a NaN/inf timeout would hang
    retries: int = schema.setting(2, ge=0)
    tool_version: str | None = None
    tools: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    bias_bits: int = schema.setting(8, ge=2, le=32)
    log_tail_lines: int = schema.setting(40, ge=1)

    def __post_init__(self) -> None:
        schema.check(self, "synthesis")


@dataclass
class SweepConfig:
    """A validated sweep configuration (see the module docstring for the YAML schema)."""

    output_dir: Path | str = ""
    hls: HLSConfig = field(default_factory=HLSConfig)
    space: dict[str, Any] = field(default_factory=dict)
    sampling: Sampling = field(default_factory=Sampling)
    synthesis: SynthesisSettings = field(default_factory=SynthesisSettings)
    executor: dict[str, Any] = field(default_factory=lambda: {"kind": "local", "workers": 1})
    config_dir: Path | str = "."

    def __post_init__(self) -> None:
        out = self.output_dir
        if not isinstance(out, (str, os.PathLike)) or not str(out):
            raise ConfigError(f"output_dir: expected a folder path (str), got {out!r}")
        self.config_dir = Path(self.config_dir)
        self.output_dir = (self.config_dir / out).resolve()
        self.space = normalize_space(self.space or {}, "space")
        ex = dict(self.executor or {"kind": "local"})
        ex.setdefault("kind", "local")
        if ex["kind"] not in EXECUTOR_KINDS:
            raise ConfigError(f"executor.kind: expected one of {'|'.join(EXECUTOR_KINDS)}, "
                              f"got {ex['kind']!r}")
        self.executor = ex

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], config_dir: str | os.PathLike = ".") -> SweepConfig:
        """Validate a mapping; errors name the key, the expected type and the value."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"sweep config: expected a mapping at the top, got {d!r}")
        return schema.from_dict(cls, {**d, "config_dir": config_dir})

    def tool(self) -> SynthTool:
        """The synthesis command; raises ``ToolNotFoundError`` when it cannot run here."""
        s = self.synthesis
        if s.command is not None:
            return custom_tool(s.command, s.tool_version, self.config_dir)
        return vendor_tool(self.hls.backend, s.vsynth, s.tools, s.tool_version)


def load_config(path: str | os.PathLike) -> SweepConfig:
    """Read and validate a sweep YAML file (relative paths are relative to its folder)."""
    p = Path(path)
    return schema.load_yaml(SweepConfig, p, config_dir=p.resolve().parent)


def plan_sweep(config: SweepConfig, tool: SynthTool | None = None) -> list[SynthJob]:
    """The unique jobs of the sweep (de-duplicated by content hash), in sampling order."""
    from dataclasses import replace

    tool = tool or config.tool()
    s = config.synthesis
    specs = sample_specs(config.space, config.hls, config.sampling.method,
                         config.sampling.n, config.sampling.seed)
    extra = {"vsynth": s.vsynth, "seed": s.seed, "bias_bits": s.bias_bits}
    hashed = []
    for spec in specs:
        spec = replace(spec, tool_version=tool.version)
        hashed.append((config_hash(spec, tool.identity, tool.version, extra), spec))
    root = str(Path(config.output_dir).resolve())
    return [SynthJob(hash=h, spec=spec, tool=tool, root=root, timeout_s=float(s.timeout_s),
                     max_attempts=int(s.retries) + 1, seed=s.seed, bias_bits=s.bias_bits,
                     config_dir=str(config.config_dir), log_tail_lines=s.log_tail_lines)
            for h, spec in dedupe(hashed)]


@dataclass
class SweepResult:
    """What one ``run_sweep`` call did (counts are unique configurations)."""

    output_dir: Path
    planned: int                  # unique configurations of the sweep
    skipped: int                  # already finished before this run
    done: int = 0                 # finished ok in this run
    failed: int = 0               # recorded as failed in this run
    interrupted: bool = False
    retried: int = 0              # extra attempts scheduled in this run
    elapsed_s: float = 0.0
    jobs: list[SynthJob] = field(default_factory=list, repr=False)

    @property
    def remaining(self) -> int:
        return self.planned - self.skipped - self.done - self.failed

    @property
    def dataset_path(self) -> Path:
        return SweepStore(self.output_dir).dataset_path

    def frame(self) -> Any:
        """All rows of the sweep's dataset (this run and earlier ones) as a DataFrame."""
        return SweepStore(self.output_dir).to_frame()


def _progress(total: int, initial: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="job",
                desc="sweep", dynamic_ncols=True, file=sys.stderr)


def run_sweep(config: SweepConfig | str | os.PathLike, executor: Executor | None = None,
              progress: bool = True, retry_failed: bool = False,
              dry_run: bool = False) -> SweepResult:
    """Run (or resume) a sweep; returns counts. Finished configurations are never redone.

    ``executor`` defaults to the config's; a given executor is not closed. ``retry_failed``
    re-attempts configurations recorded as failed. ``dry_run`` plans only (tools are still
    checked, nothing is written). Ctrl-C (or SIGTERM to the driver) stops scheduling, cancels
    queued jobs, ends the synthesis tools this machine started, keeps every finished row, and
    returns with ``interrupted=True``: rerun to resume.
    """
    cfg = config if isinstance(config, SweepConfig) else load_config(config)
    t0 = time.perf_counter()
    jobs = plan_sweep(cfg)  # tool discovery happens here: before any project is written
    store = SweepStore(cfg.output_dir)
    finished = store.finished(include_failed=not retry_failed) if store.rows_dir.is_dir() else set()
    todo = [j for j in jobs if j.hash not in finished]
    result = SweepResult(Path(cfg.output_dir), planned=len(jobs), skipped=len(jobs) - len(todo),
                         jobs=jobs)
    if dry_run or not todo:
        result.elapsed_s = time.perf_counter() - t0
        return result
    store.create()
    with store.locked(), _stop_on_signal() as stop:
        own = executor is None
        ex = make_executor(cfg.executor) if own else executor
        bar = _progress(len(jobs), result.skipped, progress)
        pending: dict[Any, SynthJob] = {}

        def submit(job: SynthJob) -> None:
            pending[ex.submit(run_job, job, key=f"synth-{job.hash}-a{job.attempt}")] = job

        def show() -> None:
            bar.set_postfix(done=result.skipped + result.done, failed=result.failed,
                            remaining=result.remaining, refresh=False)

        try:
            for job in todo:
                submit(job)
            show()
            while pending:
                done = ex.wait_first(list(pending), timeout=1.0)
                if stop.is_set():  # before any result is read: see _stop_on_signal
                    raise KeyboardInterrupt
                for fut in done:
                    job = pending.pop(fut)
                    try:
                        row = fut.result()
                    except (KeyboardInterrupt, SystemExit):
                        raise
                    except BaseException as exc:  # the worker died / was killed / lost
                        row = _driver_failure(job, exc)
                    if not row["final"]:
                        result.retried += 1
                        submit(job.next_attempt())
                        continue
                    if row["status"] == STATUS_OK:
                        result.done += 1
                    else:
                        result.failed += 1
                    show()
                    bar.update(1)
        except KeyboardInterrupt:
            result.interrupted = True
            for fut in pending:
                fut.cancel()
        finally:
            bar.close()
            if own:
                ex.close(cancel=True)
            with contextlib.suppress(Exception):
                store.write_dataset()
    result.elapsed_s = time.perf_counter() - t0
    return result


@contextlib.contextmanager
def _stop_on_signal():
    """Ctrl-C (SIGINT) or SIGTERM to the driver sets the yielded event; the run loop checks it
    at least once a second, before it reads the results that came in, then ends as interrupted.

    Why an event and not Python's default KeyboardInterrupt: the default raises wherever the
    main thread happens to be, and inside a Dask future's ``__del__`` (a ``call_soon_threadsafe``
    wake-up) the interpreter prints it as "Exception ignored" and goes on, so the sweep ran to
    the end as if nobody had pressed Ctrl-C. A second Ctrl-C still raises at once.
    SIGTERM also ends the children (see ``_end_children``): without that a terminated driver
    left the vendor tools running as orphans.
    """
    import signal
    import threading

    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals are only delivered to the main thread: nothing to install
        return

    def on_int(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    def on_term(signum, frame):
        _end_children()
        stop.set()

    previous = signal.signal(signal.SIGINT, on_int), signal.signal(signal.SIGTERM, on_term)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


def _end_children() -> None:
    """SIGINT to this process's children; SIGKILL to every process group a tool leads below it."""
    import signal

    import psutil

    me = psutil.Process()
    descendants = me.children(recursive=True)
    for proc in descendants:
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            if os.getpgid(proc.pid) == proc.pid and proc.pid != os.getpgid(0):  # a tool's group
                os.killpg(proc.pid, signal.SIGKILL)
    for proc in me.children():
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGINT)


def _driver_failure(job: SynthJob, exc: BaseException) -> dict[str, Any]:
    """The row of an attempt whose worker never returned; stored when it was the last attempt."""
    err = f"worker lost: {type(exc).__name__}: {exc}"
    final = job.attempt >= job.max_attempts
    row = {"hash": job.hash, **job.spec.to_dict(), "tool": job.tool.name,
           "tool_version": job.tool.version, "vsynth": job.tool.vsynth, "attempts": job.attempt,
           "seed": job.seed, "bias_bits": job.bias_bits,
           "project_dir": str(Path("projects") / job.hash), "status": STATUS_FAILED,
           "error": err, "finished_at": time.time()}
    if final:
        from connas4ml_torch.synth.jobs import log_tail

        store = SweepStore(job.root)
        row["log_tail"] = log_tail(store.project_dir(job.hash) / "synth.log", job.log_tail_lines)
        store.write_row(row)
    else:
        warnings.warn(f"sweep job {job.hash} attempt {job.attempt}: {err}; retrying", stacklevel=2)
    row["final"] = final
    return row
