"""Synthesis sweeps that create surrogate training data, on a local pool or a Dask cluster.

``run_sweep(config)`` samples one-layer configurations (grid or space-filling design), writes one
hls4ml project per configuration through the export path of ``export_to_hls()``, synthesizes
each with the vendor tool (or a configured command), reads the reports, and stores one row per
configuration atomically; reruns skip finished configurations (docs/design.md, "Synthesis sweeps"). The output folder
is a tree of hls4ml projects that ``read_reports`` / ``connas4ml surrogate fit`` read directly.
"""

from connas4ml_torch.synth.executors import (
    DaskExecutor,
    Executor,
    JobqueueExecutor,
    LocalPoolExecutor,
    jobqueue_cluster_kwargs,
    make_executor,
)
from connas4ml_torch.synth.jobs import SynthJob, build_layer_model, run_job
from connas4ml_torch.synth.sampling import config_hash, sample_specs
from connas4ml_torch.synth.store import SweepLockedError, SweepStore
from connas4ml_torch.synth.sweep import SweepConfig, SweepResult, load_config, plan_sweep, run_sweep
from connas4ml_torch.synth.tools import SynthTool, ToolNotFoundError, custom_tool, vendor_tool

__all__ = [
    "DaskExecutor",
    "Executor",
    "JobqueueExecutor",
    "LocalPoolExecutor",
    "SweepConfig",
    "SweepLockedError",
    "SweepResult",
    "SweepStore",
    "SynthJob",
    "SynthTool",
    "ToolNotFoundError",
    "build_layer_model",
    "config_hash",
    "custom_tool",
    "jobqueue_cluster_kwargs",
    "load_config",
    "make_executor",
    "plan_sweep",
    "run_job",
    "run_sweep",
    "sample_specs",
    "vendor_tool",
]
