"""Data for a run: a bundled dataset (jets, calo) or the user's loader entry point, as splits."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from connas4ml_torch.errors import ConfigError
from connas4ml_torch.run.config import RunConfig

__all__ = ["Splits", "load_data", "entry_point"]


@dataclass
class Splits:
    """Train, validation and test ``(x, y)`` tensors, the task and what the loader adds."""

    train: tuple[Tensor, Tensor]
    val: tuple[Tensor, Tensor]
    test: tuple[Tensor, Tensor]
    task: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to(self, device: torch.device | str) -> Splits:
        """The same splits with every tensor on ``device``."""
        return Splits(*(tuple(t.to(device) for t in part)
                        for part in (self.train, self.val, self.test)), self.task, dict(self.meta))


def entry_point(spec: str, what: str, config_dir: str | None = None) -> Callable:
    """Import ``package.module:attr`` with an error that says which config key was wrong.

    A module that is not importable is looked for beside the config file too, so a config can
    name ``my_task:load`` for a ``my_task.py`` in its own folder.
    """
    module, _, attr = spec.partition(":")
    try:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not config_dir or exc.name != module.split(".")[0]:
                raise
            sys.path.insert(0, config_dir)
            try:
                mod = importlib.import_module(module)
            finally:
                sys.path.remove(config_dir)
        obj = getattr(mod, attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"config key {what}: cannot import {spec!r} ({exc})") from exc
    if not callable(obj):
        raise ConfigError(f"config key {what}: {spec!r} is not callable")
    return obj


def load_data(cfg: RunConfig) -> Splits:
    """The train/val/test tensors the config asks for (bundled dataset or user loader)."""
    d = cfg.data
    seed = cfg.seed
    if d.loader:
        raw = entry_point(d.loader, "data.loader", cfg.config_dir)(**d.loader_args)
        try:
            parts = {k: tuple(torch.as_tensor(np.asarray(a)) for a in raw[k])
                     for k in ("train", "val", "test")}
        except (KeyError, TypeError) as exc:
            raise ConfigError("data.loader must return {'train': (x, y), 'val': (x, y), "
                              f"'test': (x, y)}} ({exc})") from exc
        task = d.task or ("classification" if not parts["train"][1].is_floating_point()
                          else "regression")
        return Splits(parts["train"], parts["val"], parts["test"], task)
    if d.dataset == "jets":
        from connas4ml_torch.datasets import jets

        data = jets.load_jets(n_per_class=d.n_per_class, seed=seed, progress=cfg.progress)
        tr, va, te = jets.train_val_test_split(data, seed=seed)
        (xtr, xva, xte), _, _ = jets.standardize(tr.X, va.X, te.X)

        def conv(x, y):
            return (torch.as_tensor(np.asarray(x, np.float32)),
                    torch.as_tensor(np.asarray(y)).long())

        return Splits(conv(xtr, tr.y), conv(xva, va.y), conv(xte, te.y), "classification",
                      {"classes": list(data.class_names)})
    from connas4ml_torch.datasets import calo

    data = calo.load_calo(d.n_samples, seed=seed, progress=cfg.progress)
    x = torch.as_tensor(np.asarray(data.X, np.float32))
    y = torch.as_tensor(np.asarray(data.y, np.float32))
    x = torch.log1p(x.clamp_min(0))  # energies span decades: log scale keeps the grid useful
    y_scale = float(y.mean())
    y = y / y_scale
    n = len(x)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    a, b = int(0.6 * n), int(0.8 * n)
    idx = (perm[:a], perm[a:b], perm[b:])
    return Splits(*((x[i], y[i]) for i in idx), "regression", {"y_scale": y_scale})
