"""Pareto sweeps: several searches (budgets or trade-off weights) in parallel, and their front.

:func:`sweep_configs` makes one run config per budget (or trade-off weight) value; the jobs run on
the same executors as the synthesis sweeps (a local process pool, a Dask ``LocalCluster`` or
scheduler address, or a batch system through dask-jobqueue).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from connas4ml_torch import schema
from connas4ml_torch.errors import ConfigError
from connas4ml_torch.run.config import RunConfig

__all__ = ["sweep_job", "sweep_configs", "pareto_sweep", "pareto_front"]


def sweep_job(cfg: RunConfig) -> dict[str, Any]:
    """One search of a sweep (runs in a worker): the flat figures of the searched network."""
    from connas4ml_torch.run.pipeline import run

    torch.set_num_threads(1)  # one search per worker; the workers share the cores
    result = run(cfg)
    ours = result.rows["searched"]
    quality = "accuracy" if "accuracy" in ours else "rel_mae"
    out = {k: ours[k] for k in ("LUT", "FF", "BRAM_18K", "DSP", "latency", "parameters") if k in ours}
    out[quality] = ours.get(quality + "_finetuned", ours[quality])
    out["search_s"] = result.wall_s["search_s"]
    out["sweep_value"] = cfg.sweep_value
    out["output"] = cfg.output
    return out


def sweep_configs(cfg: RunConfig, budgets: dict[str, list[Any]] | None = None,
                  tradeoff: dict[str, list[float]] | None = None) -> list[RunConfig]:
    """One config per budget (or trade-off weight) value, each with its own output folder."""
    if bool(budgets) == bool(tradeoff):
        raise ConfigError("a sweep varies either budgets or trade-off weights (give one of them)")
    axis, values = ("budgets", budgets) if budgets else ("tradeoff", tradeoff)
    if len(values) != 1:
        raise ConfigError(f"a sweep varies one resource at a time, got {sorted(values)}")
    ((resource, choices),) = values.items()
    out = []
    for v in choices:
        sub = str(Path(cfg.output) / f"{axis}_{resource}_{v}".replace("%", "pct"))
        out.append(cfg.replace(**{axis: {**getattr(cfg, axis), resource: v}}, output=sub,
                               progress=False, sweep_value=v))
    return out


def pareto_front(df: pd.DataFrame, cost: str, quality: str, higher_is_better: bool = True) -> pd.Series:
    """Boolean mask of the rows no other row beats in both ``cost`` (lower) and ``quality``."""
    q = df[quality] if higher_is_better else -df[quality]
    mask = []
    for i in range(len(df)):
        dominated = ((df[cost] <= df[cost].iloc[i]) & (q >= q.iloc[i]) &
                     ((df[cost] < df[cost].iloc[i]) | (q > q.iloc[i]))).any()
        mask.append(not dominated)
    return pd.Series(mask, index=df.index)


def pareto_sweep(job: Callable[[dict[str, Any]], Mapping[str, Any]],
                 configs: Sequence[Any], executor: Any = None, *,
                 cost: str = "LUT", quality: str = "accuracy", higher_is_better: bool = True,
                 plot: str | Path | None = None, progress: bool = True) -> pd.DataFrame:
    """Run ``job(config)`` for every config in parallel; return one row per config.

    ``job`` must be importable by the workers (a module-level function) and return a flat
    mapping of results (e.g. ``{"accuracy": .., "LUT": .., "DSP": ..}``). ``executor`` is an
    ``Executor`` or the settings of one (``{"kind": "local"|"dask", "workers": 2, ...}``).
    A failed job becomes a row with its error; the others still finish. The column ``pareto``
    marks the front of ``cost`` against ``quality``; ``plot`` writes it as a PNG.
    """
    from tqdm.auto import tqdm

    from connas4ml_torch.synth.executors import Executor, make_executor

    if not configs:
        raise ValueError("pareto_sweep: no configurations given")
    ex = executor if isinstance(executor, Executor) else make_executor(executor or {"kind": "local", "workers": 2})
    owned = not isinstance(executor, Executor)
    rows: list[dict[str, Any]] = [dict() for _ in configs]
    plain = [schema.to_dict(c) if dataclasses.is_dataclass(c) else dict(c) for c in configs]
    flat = [{k: v for k, v in c.items() if v is None or isinstance(v, (int, float, str, bool))}
            for c in plain]  # nested settings stay in the configs, not in the table
    try:
        pending = {ex.submit(job, cfg): i for i, cfg in enumerate(configs)}
        bar = tqdm(total=len(configs), desc="pareto sweep", disable=not progress)
        while pending:
            for fut in ex.wait_first(list(pending)):
                i = pending.pop(fut)
                try:
                    rows[i] = {**flat[i], **dict(fut.result()), "error": None}
                except Exception as exc:  # one failed search must not lose the others
                    rows[i] = {**flat[i], "error": f"{type(exc).__name__}: {exc}"}
                bar.update(1)
        bar.close()
    finally:
        if owned:
            ex.close()
    df = pd.DataFrame(rows)
    ok = df["error"].isna() if "error" in df else pd.Series(True, index=df.index)
    df["pareto"] = False
    if ok.any() and cost in df and quality in df:
        df.loc[ok, "pareto"] = pareto_front(df[ok], cost, quality, higher_is_better)
        if plot:
            from connas4ml_torch.plots import plot_front

            plot_front(df[ok], cost, quality, plot)
    return df
