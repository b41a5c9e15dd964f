"""Bring your own model and data: the two entry points a search config names.

``connas4ml search examples/custom_task.yaml`` imports this file (the config's folder is on the
import path) and calls ``tiny_mlp(**model_args)`` and ``load(**loader_args)``.
"""

import numpy as np
from torch import nn


def tiny_mlp(n_in: int = 8, hidden: int = 32, n_out: int = 3) -> nn.Module:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, n_out))


def load(n: int = 3000, seed: int = 0) -> dict:
    """Three noisy classes; returns {'train': (x, y), 'val': (x, y), 'test': (x, y)}."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 8)) * 1.5
    y = rng.integers(0, 3, n)
    x = (centres[y] + rng.normal(size=(n, 8))).astype(np.float32)
    a, b = int(0.6 * n), int(0.8 * n)
    return {"train": (x[:a], y[:a]), "val": (x[a:b], y[a:b]), "test": (x[b:], y[b:])}
