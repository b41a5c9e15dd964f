"""Where the jobs run: one small interface, three implementations.

* :class:`LocalPoolExecutor` — ``concurrent.futures.ProcessPoolExecutor`` on this machine
  (default);
* :class:`DaskExecutor` — a ``distributed`` cluster: a new ``LocalCluster`` or an existing
  scheduler ``address``;
* :class:`JobqueueExecutor` — a batch system through ``dask-jobqueue`` (SLURM, PBS, HTCondor),
  with the cluster's settings from the sweep YAML (:func:`jobqueue_cluster_kwargs` maps and
  checks them).

Futures of both libraries share ``done()``, ``result()`` and ``cancel()``; executors add
``submit``, ``wait_first`` (block until at least one future is done) and ``close``.
"""

from __future__ import annotations

import inspect
import multiprocessing
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent import futures as cf
from typing import Any

__all__ = ["Executor", "LocalPoolExecutor", "DaskExecutor", "JobqueueExecutor", "make_executor",
           "jobqueue_cluster_kwargs", "EXECUTOR_KINDS", "JOBQUEUE_KINDS"]

JOBQUEUE_KINDS = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "htcondor": "HTCondorCluster"}
EXECUTOR_KINDS = ("local", "dask", *JOBQUEUE_KINDS)
# executor-level keys of a jobqueue section (not passed to the cluster class)
_JQ_OWN = {"kind", "jobs", "adapt"}


class Executor:
    """Runs ``fn(arg)`` somewhere and hands back futures."""

    name = "executor"
    n_workers: int = 1

    def submit(self, fn: Callable[[Any], Any], arg: Any, key: str | None = None) -> Any:
        raise NotImplementedError

    def wait_first(self, pending: Iterable[Any], timeout: float | None = None) -> set[Any]:
        """Futures of ``pending`` that are done, after waiting for at least one (or timeout)."""
        raise NotImplementedError

    def close(self, cancel: bool = False) -> None:
        """Release workers; ``cancel`` drops jobs that have not started."""

    def describe(self) -> str:
        return f"{self.name} ({self.n_workers} workers)"

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close(cancel=exc[0] is not None)


def _one_thread() -> None:
    """Pool worker start: one BLAS/OpenMP thread per worker (as Dask's nanny does), so that N
    workers on N cores do not oversubscribe them (torch would start one thread per core each)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")


class LocalPoolExecutor(Executor):
    """A process pool on this machine (``spawn``: no fork of a process that imported torch)."""

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"executor.workers: expected a positive int, got {workers!r}")
        self.n_workers = workers
        self._pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(max_workers=self.n_workers, initializer=_one_thread,
                                      mp_context=multiprocessing.get_context("spawn"))

    def submit(self, fn: Callable[[Any], Any], arg: Any, key: str | None = None) -> Any:
        try:
            return self._pool.submit(fn, arg)
        except cf.process.BrokenProcessPool:  # a worker died (OOM, kill): start a fresh pool
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(fn, arg)

    def wait_first(self, pending: Iterable[Any], timeout: float | None = None) -> set[Any]:
        done, _ = cf.wait(list(pending), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return set(done)

    def close(self, cancel: bool = False) -> None:
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)


class DaskExecutor(Executor):
    """A Dask ``distributed`` client: on ``client``, on a scheduler ``address``, or on a new
    ``LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)``."""

    name = "dask"

    def __init__(self, workers: int = 2, address: str | None = None, client: Any = None,
                 cluster: Any = None, **cluster_kwargs: Any) -> None:
        from distributed import Client, LocalCluster

        self._own_client = client is None
        self._cluster = None
        if client is None:
            if address is None and cluster is None:
                kw = {"n_workers": workers, "threads_per_worker": 1, "processes": True,
                      "dashboard_address": None, **cluster_kwargs}
                cluster = self._cluster = LocalCluster(**kw)
            client = Client(address) if address is not None else Client(cluster)
        self.client = client
        self.n_workers = max(1, len(client.scheduler_info().get("workers", {})) or workers)

    def submit(self, fn: Callable[[Any], Any], arg: Any, key: str | None = None) -> Any:
        # pure=False: a retry of the same job is a new task, never a cached result
        return self.client.submit(fn, arg, key=key, pure=False)

    def wait_first(self, pending: Iterable[Any], timeout: float | None = None) -> set[Any]:
        from distributed import wait

        fs = list(pending)
        try:
            done, _ = wait(fs, timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return {f for f in fs if f.done()}
        return set(done)

    def describe(self) -> str:
        return f"{self.name} ({self.n_workers} workers, scheduler {self.client.scheduler.address})"

    def close(self, cancel: bool = False) -> None:
        if not self._own_client:
            return
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def _params(fn: Callable[..., Any]) -> set[str]:
    return {n for n, p in inspect.signature(fn).parameters.items()
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and n != "self"}


def jobqueue_cluster_kwargs(kind: str, settings: Mapping[str, Any]) -> tuple[type, dict[str, Any]]:
    """The ``dask_jobqueue`` cluster class for ``kind`` and its keyword arguments from YAML.

    Keys are the class's own (``queue``, ``account``, ``walltime``, ``cores``, ``memory``,
    ``processes``, ``job_extra_directives``, ``job_script_prologue``, ...): an unknown key is an
    error that lists the allowed ones. ``cores`` and ``memory`` are required.
    """
    import dask_jobqueue
    from dask_jobqueue.core import Job, JobQueueCluster

    if kind not in JOBQUEUE_KINDS:
        raise ValueError(f"executor.kind: {kind!r} is not a batch system; one of "
                         f"{', '.join(JOBQUEUE_KINDS)}")
    cls = getattr(dask_jobqueue, JOBQUEUE_KINDS[kind])
    job_cls = cls.job_cls
    allowed = ((_params(JobQueueCluster.__init__) | _params(job_cls.__init__)
                | _params(Job.__init__))
               - {"job_cls", "loop", "asynchronous", "scheduler", "name", "config_name",
                  "n_workers"})
    kw = {k: v for k, v in settings.items() if k not in _JQ_OWN}
    unknown = sorted(set(kw) - allowed)
    if unknown:
        raise ValueError(f"executor ({kind}): unknown keys {unknown}; allowed: "
                         f"{', '.join(sorted(allowed | _JQ_OWN))}")
    for req, typ in (("cores", int), ("memory", str)):
        v = kw.get(req)
        if v is None or isinstance(v, bool) or not isinstance(v, typ):
            raise ValueError(f"executor.{req}: required for {kind}, expected {typ.__name__} "
                             f"(e.g. cores: 4, memory: '16GB'), got {v!r}")
    return cls, kw


class JobqueueExecutor(DaskExecutor):
    """A ``dask-jobqueue`` cluster (SLURM/PBS/HTCondor): ``jobs: N`` batch jobs, or
    ``adapt: {minimum_jobs, maximum_jobs}``."""

    def __init__(self, kind: str, settings: Mapping[str, Any]) -> None:
        cls, kw = jobqueue_cluster_kwargs(kind, settings)
        cluster = cls(**kw)
        if "adapt" in settings:
            cluster.adapt(**dict(settings["adapt"]))
        else:
            cluster.scale(jobs=int(settings.get("jobs", 1)))
        self.name = kind
        super().__init__(cluster=cluster)
        self._cluster = cluster


def make_executor(settings: Mapping[str, Any] | None = None) -> Executor:
    """An executor from the ``executor`` section of a sweep config (``kind`` picks the class)."""
    s = dict(settings or {})
    kind = s.pop("kind", "local")
    if kind == "local":
        unknown = set(s) - {"workers"}
        if unknown:
            raise ValueError(f"executor (local): unknown keys {sorted(unknown)}; allowed: workers")
        return LocalPoolExecutor(int(s.get("workers", 1)))
    if kind == "dask":
        unknown = set(s) - {"workers", "address", "memory_limit"}
        if unknown:
            raise ValueError(f"executor (dask): unknown keys {sorted(unknown)}; "
                             "allowed: workers, address, memory_limit")
        kw = {"memory_limit": s["memory_limit"]} if "memory_limit" in s else {}
        return DaskExecutor(workers=int(s.get("workers", 2)), address=s.get("address"), **kw)
    if kind in JOBQUEUE_KINDS:
        return JobqueueExecutor(kind, {**s, "kind": kind})
    raise ValueError(f"executor.kind: {kind!r} is not one of {', '.join(EXECUTOR_KINDS)}")
