"""The run pipeline (top floor, beside ``cli``): config -> data -> baseline -> search -> derive
-> fine-tune -> export, on the one public search loop (``Search.fit``)."""

from connas4ml_torch.run.config import (
    DataConfig,
    ExportSettings,
    RunConfig,
    Schedule,
    load_config,
)
from connas4ml_torch.run.data import Splits, entry_point, load_data
from connas4ml_torch.run.pipeline import run
from connas4ml_torch.run.results import RunResult, load_derived, save_derived
from connas4ml_torch.run.sweep import pareto_front, pareto_sweep, sweep_configs, sweep_job

__all__ = ["RunConfig", "DataConfig", "Schedule", "ExportSettings", "load_config", "Splits",
           "load_data", "entry_point", "run", "RunResult", "save_derived", "load_derived",
           "sweep_configs", "sweep_job", "pareto_sweep", "pareto_front"]
