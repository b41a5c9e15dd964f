"""The run config: one dataclass per section, validated by :mod:`connas4ml_torch.schema`.

The same classes are built from YAML (``connas4ml search CONFIG.yaml``), from a Python dict
(``RunConfig.from_dict``) and field by field in Python. A typo'd key names the file, the dotted
key and the closest valid key; a wrong type or value names the key, what was expected and the
value (``schedule.dual_lr: expected a value >= 0, got -1``). Sections: ``data``, ``space``
(:class:`~connas4ml_torch.SearchSpace`), ``hls`` (:class:`~connas4ml_torch.HLSConfig`, hls4ml
spellings accepted), ``budgets`` / ``tradeoff``, ``schedule``, ``export``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from connas4ml_torch import schema
from connas4ml_torch.errors import ConfigError
from connas4ml_torch.hardware.config import HLSConfig
from connas4ml_torch.hardware.resources import canonical_resource, parse_budgets
from connas4ml_torch.search.settings import SEARCH_SAMPLING, SearchSettings
from connas4ml_torch.space.spec import SearchSpace

__all__ = ["DataConfig", "Schedule", "ExportSettings", "RunConfig", "load_config", "LR_SCHEDULES"]

# the search's weight learning rate over its steps: constant, or cosine to 0 (as ``train()``,
# the baseline QAT's loop, but per step)
LR_SCHEDULES = ("constant", "cosine")


@dataclass
class DataConfig:
    """Where the data comes from: a bundled dataset or the user's loader entry point."""

    dataset: str | None = None          # bundled: "jets" | "calo"
    loader: str | None = None           # or "package.module:function" -> dict of splits
    loader_args: dict[str, Any] = field(default_factory=dict)
    n_per_class: int | None = schema.setting(None, ge=1)  # jets: None = the shipped sample
    n_samples: int = schema.setting(4000, ge=10)          # calo
    task: str | None = None             # classification | regression (set by bundled data)

    def __post_init__(self) -> None:
        schema.check(self, "data")
        if bool(self.dataset) == bool(self.loader):
            raise ConfigError("data: give exactly one of data.dataset (jets | calo) and "
                              "data.loader ('package.module:function')")
        if self.dataset and self.dataset not in ("jets", "calo"):
            raise ConfigError(f"data.dataset: expected 'jets' or 'calo', got {self.dataset!r}"
                              f"{schema.closest(self.dataset, ['jets', 'calo'])}")
        if self.task not in (None, "classification", "regression"):
            raise ConfigError("data.task: expected 'classification' or 'regression', got "
                              f"{self.task!r}")


@dataclass
class Schedule:
    """Epochs, batch size, learning rates and the search's settings."""

    epochs: int = schema.setting(10, ge=1)
    warmup_epochs: int = schema.setting(1, ge=0)
    batch_size: int = schema.setting(256, ge=1)
    lr: float = schema.setting(3e-3, gt=0)
    arch_lr: float = schema.setting(3e-2, ge=0)
    dual_lr: float = schema.setting(0.2, ge=0)
    temperature: list[float] = schema.setting(default_factory=lambda: [1.0, 0.2], gt=0)
    finetune_epochs: int = schema.setting(2, ge=0)
    baseline_epochs: int | None = schema.setting(None, ge=0)  # None: as epochs; 0: no baseline
    baseline_bits: int = schema.setting(8, ge=2, le=16)
    max_steps_per_epoch: int | None = schema.setting(None, ge=1)
    margin_quantile: float | None = schema.setting(None, gt=0, le=1)
    arch_every: int = schema.setting(1, ge=1)       # architecture update on every k-th step
    sampling: str = "auto"                          # see SEARCH_SAMPLING
    checkpoint_every: int | None = schema.setting(None, ge=1)  # steps; None: every epoch
    sandwich: bool | None = None                    # train the widest network too (None: auto)
    settle_epochs: int = schema.setting(0, ge=0)    # last epochs: train the selected network alone
    lr_schedule: str = "constant"                   # the search's weight LR: constant or cosine

    def __post_init__(self) -> None:
        schema.check(self, "schedule")
        if self.sampling not in SEARCH_SAMPLING:
            raise ConfigError(f"schedule.sampling: expected one of {', '.join(SEARCH_SAMPLING)}, "
                              f"got {self.sampling!r}"
                              f"{schema.closest(self.sampling, list(SEARCH_SAMPLING))}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"schedule.lr_schedule: expected one of {', '.join(LR_SCHEDULES)}, "
                              f"got {self.lr_schedule!r}{schema.closest(self.lr_schedule, list(LR_SCHEDULES))}")
        if len(self.temperature) != 2:
            raise ConfigError(f"schedule.temperature: expected [start, end] > 0, got "
                              f"{self.temperature!r}")
        if self.warmup_epochs > self.epochs:
            raise ConfigError(f"schedule.warmup_epochs: {self.warmup_epochs} is more than "
                              f"schedule.epochs ({self.epochs}); the architecture would never move")
        if self.settle_epochs and self.warmup_epochs + self.settle_epochs >= self.epochs:
            raise ConfigError(f"schedule.settle_epochs: {self.settle_epochs} settle + "
                              f"{self.warmup_epochs} warm-up epochs leave none of the "
                              f"{self.epochs} epochs to search in")

    def lr_scheduler(self, optimizer: torch.optim.Optimizer, steps: int) -> Any:
        """The ``Search.fit(scheduler=...)`` of ``lr_schedule`` over ``steps`` (None: constant)."""
        if self.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, steps))
        return None

    def search_settings(self, steps_per_epoch: int) -> SearchSettings:
        """The :class:`SearchSettings` this schedule describes (warm-up and annealing in steps)."""
        return SearchSettings(
            arch_lr=self.arch_lr, dual_lr=self.dual_lr,
            warmup_steps=self.warmup_epochs * steps_per_epoch,
            temperature=tuple(self.temperature),
            anneal_steps=max(1, (self.epochs - self.warmup_epochs - self.settle_epochs)
                             * steps_per_epoch // self.arch_every),
            margin_quantile=self.margin_quantile, arch_every=self.arch_every,
            sampling=self.sampling, sandwich=self.sandwich,
            settle_steps=self.settle_epochs * steps_per_epoch)


@dataclass
class ExportSettings:
    """Export the chosen network to hls4ml and check it bit-exact on ``n_verify`` test rows."""

    enabled: bool = True
    n_verify: int = schema.setting(256, ge=1)

    def __post_init__(self) -> None:
        schema.check(self, "export")


@dataclass
class RunConfig:
    """One search run, end to end (see ``examples/*.yaml``)."""

    model: str = ""                                  # "package.module:factory"
    name: str = "search"
    seed: int = 0
    model_args: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=lambda: DataConfig(dataset="jets"))
    space: SearchSpace = field(default_factory=SearchSpace)
    hls: HLSConfig = field(default_factory=HLSConfig)
    budgets: dict[str, Any] = field(default_factory=dict)
    tradeoff: dict[str, float] = field(default_factory=dict)
    schedule: Schedule = field(default_factory=Schedule)
    export: ExportSettings = field(default_factory=ExportSettings)
    output: str = "runs/search"
    progress: bool = True
    # intra-op CPU threads; None: 1 for networks under a million weights (their ops are too
    # small to split, and on a busy machine spinning threads made a search 9x slower), else
    # torch's default
    threads: int | None = schema.setting(None, ge=1)
    # where the baseline, the search and the fine-tune run ("cpu", "cuda", "cuda:1", "mps");
    # checked against the machine when the run starts (a saved config loads anywhere); the
    # export always runs on the CPU
    device: str = "cpu"
    config_dir: str | None = None        # set by load_config: entry points may live beside it
    sweep_value: int | float | str | None = None  # set by sweep_configs: the swept value

    def __post_init__(self) -> None:
        for name, cls in (("data", DataConfig), ("space", SearchSpace), ("hls", HLSConfig),
                          ("schedule", Schedule), ("export", ExportSettings)):
            v = getattr(self, name)
            if isinstance(v, dict):  # built in Python from plain dicts
                setattr(self, name, schema.from_dict(cls, v, name))
        schema.check(self, "")
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ConfigError(f"device: expected a torch device such as 'cpu', 'cuda' or "
                              f"'cuda:1', got {self.device!r}") from None
        if not self.model or ":" not in self.model:
            raise ConfigError(f"model: expected 'package.module:factory', got {self.model!r}")
        for key, v in self.budgets.items():  # names, shares of the part, finiteness
            try:
                parse_budgets({key: v}, self.hls.part)
            except ValueError as exc:
                raise ConfigError(f"budgets.{key}: {exc}") from None
        seen: dict[str, str] = {}
        for key, v in self.tradeoff.items():
            try:
                r = canonical_resource(key)
            except ValueError as exc:
                raise ConfigError(f"tradeoff.{key}: {exc}") from None
            if r in seen:
                raise ConfigError(f"tradeoff.{key}: {r} is already given as {seen[r]!r}")
            seen[r] = key
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < float("inf"):
                raise ConfigError(f"tradeoff.{key}: expected a finite number >= 0, got {v!r}")
        if len({canonical_resource(k) for k in self.budgets}) != len(self.budgets):
            raise ConfigError(f"budgets: a resource is given twice under two spellings: "
                              f"{sorted(self.budgets)}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        return schema.from_dict(cls, d)

    def replace(self, **changes: Any) -> RunConfig:
        """A validated copy with some top-level fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (YAML/JSON)."""
        d = schema.to_dict(self)
        d["space"] = self.space.to_dict()
        return d


def load_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML run config; errors name the file and the key."""
    path = Path(path)
    return schema.load_yaml(RunConfig, path, config_dir=str(path.resolve().parent))
