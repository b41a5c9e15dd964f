"""Which one-layer configurations a sweep synthesizes: grids and space-filling designs.

A search space is a mapping ``axis -> list of choices`` over the discrete axes of a
:class:`~connas4ml_torch.hardware.layerspec.LayerSpec` (``layer_type``, ``n_in``, ``n_out``,
``kernel``, ``out_size``, ``weight_bits``, ``input_bits``, ``reuse_factor``, ``strategy``,
``io_type``). Axes that are not given take the :class:`HLSConfig` setting (build settings) or the
``LayerSpec`` default. Space-filling designs (Latin hypercube, Sobol) come from
``scipy.stats.qmc``: a point ``u`` in ``[0, 1)^d`` picks choice ``floor(u_i * len(axis_i))``.
Configurations are de-duplicated by :func:`config_hash` (configuration + tool + part).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from connas4ml_torch.hardware.config import HLSConfig
from connas4ml_torch.hardware.layerspec import LayerSpec
from connas4ml_torch.kinds import kind_named, kinds


def _layer_types() -> tuple[str, ...]:
    """The kinds a one-layer sweep can build: every weight kind of the registry."""
    return tuple(k.name for k in kinds("weight"))

__all__ = [
    "AXES",
    "METHODS",
    "HASH_SCHEMA",
    "normalize_space",
    "grid",
    "space_filling",
    "sample_specs",
    "config_hash",
    "dedupe",
]

# axis -> expected type of one choice (for error messages)
AXES: dict[str, str] = {
    "layer_type": "a weight layer kind (Dense|Conv1D|Conv2D...)",
    "n_in": "positive int",
    "n_out": "positive int",
    "kernel": "positive int (square / 1-d kernel)",
    "out_size": "positive int (output length, or height = width)",
    "weight_bits": "positive int",
    "input_bits": "positive int",
    "reuse_factor": "positive int",
    "strategy": "Latency|Resource",
    "io_type": "io_parallel|io_stream",
}
_STR_AXES = {"layer_type", "strategy", "io_type"}
METHODS = ("grid", "lhs", "sobol", "random")
HASH_SCHEMA = 1  # bump when the hashed content changes meaning


def normalize_space(space: Mapping[str, Any], where: str = "space") -> dict[str, list[Any]]:
    """Validate ``axis -> choices``; a scalar is one choice. Errors name the key and the type."""
    if not isinstance(space, Mapping):
        raise ValueError(f"{where}: expected a mapping axis -> list of choices, got {space!r}")
    out: dict[str, list[Any]] = {}
    for axis, values in space.items():
        if axis not in AXES:
            raise ValueError(f"{where}.{axis}: unknown axis; allowed: {', '.join(AXES)}")
        vals = values if isinstance(values, (list, tuple)) else [values]
        if not vals:
            raise ValueError(f"{where}.{axis}: empty list; give at least one {AXES[axis]}")
        clean = []
        for v in vals:
            if axis in _STR_AXES:
                if not isinstance(v, str):
                    raise ValueError(f"{where}.{axis}: {v!r} is not a string ({AXES[axis]})")
            elif isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{where}.{axis}: {v!r} is not a {AXES[axis]}")
            if v not in clean:
                clean.append(v)
        out[axis] = clean
    if "layer_type" in out:
        for t in out["layer_type"]:
            if t not in _layer_types():
                raise ValueError(f"{where}.layer_type: {t!r} is not one of {_layer_types()}")
    return out


def _spec_from_choice(choice: Mapping[str, Any], hls: HLSConfig) -> LayerSpec:
    """One ``LayerSpec`` from one point of the space, build settings from ``hls``."""
    c = dict(choice)
    layer_type = c.pop("layer_type", "Dense")
    dims = kind_named(layer_type).dims
    k = c.pop("kernel", 3)
    s = c.pop("out_size", 8)
    strategy = c.pop("strategy", hls.strategy)
    io_type = c.pop("io_type", hls.io_type)
    rf = c.pop("reuse_factor", hls.reuse_factor)
    # validate strategy/io_type spelling through HLSConfig
    h = hls.replace(strategy=strategy, io_type=io_type, reuse_factor=rf)
    spec = LayerSpec(
        layer_type=layer_type,
        n_in=c.pop("n_in", 16),
        n_out=c.pop("n_out", 16),
        kernel=(k,) * dims,
        out_size=(s,) * dims,
        **c,
    )
    return spec.with_hls(h)


def grid(space: Mapping[str, Sequence[Any]], hls: HLSConfig) -> list[LayerSpec]:
    """Every combination of the axes (Dense layers ignore ``kernel``/``out_size``: deduplicate)."""
    axes = list(space)
    return [
        _spec_from_choice(dict(zip(axes, combo)), hls)
        for combo in itertools.product(*(space[a] for a in axes))
    ]


def space_filling(
    space: Mapping[str, Sequence[Any]], hls: HLSConfig, n: int, method: str = "lhs", seed: int = 0
) -> list[LayerSpec]:
    """``n`` points of a Latin hypercube / scrambled Sobol / uniform random design over the axes.

    Discrete axes make repeated points likely; the design is continued (same engine, next
    points) until ``n`` distinct configurations exist or the grid is exhausted.
    """
    from scipy.stats import qmc

    axes = [a for a in space if len(space[a]) > 1]
    fixed = {a: space[a][0] for a in space if len(space[a]) == 1}
    full = math.prod(len(space[a]) for a in axes) if axes else 1
    want = min(n, full)
    if not axes:
        return [_spec_from_choice(fixed, hls)]
    d = len(axes)
    if method == "lhs":
        engine: Any = qmc.LatinHypercube(d=d, seed=seed)
    elif method == "sobol":
        engine = qmc.Sobol(d=d, scramble=True, seed=seed)
    elif method == "random":
        engine = None
        rng = np.random.default_rng(seed)
    else:
        raise ValueError(f"sampling.method: {method!r} is not one of {METHODS}")
    seen: dict[tuple, LayerSpec] = {}
    batch = want
    for _ in range(64):  # bounded: each round draws at least `want` more points
        if engine is None:
            u = rng.random((batch, d))
        elif method == "sobol":
            # keep the total a power of two (Sobol's balance): first 2**m >= batch, then double
            done = engine.num_generated
            m = int(math.log2(done)) if done else max(0, math.ceil(math.log2(batch)))
            u = engine.random_base2(m)
        else:
            u = engine.random(batch)
        for row in u:
            choice = dict(fixed)
            for a, x in zip(axes, row):
                choice[a] = space[a][min(int(x * len(space[a])), len(space[a]) - 1)]
            spec = _spec_from_choice(choice, hls)
            key = tuple(sorted(spec.to_dict().items()))
            seen.setdefault(key, spec)
            if len(seen) >= want:
                return list(seen.values())
        batch = max(want - len(seen), 1) * 2
    return list(seen.values())


def sample_specs(
    space: Mapping[str, Any], hls: HLSConfig, method: str = "grid", n: int | None = None,
    seed: int = 0,
) -> list[LayerSpec]:
    """The sweep's layer configurations, in a reproducible order (not yet de-duplicated by tool)."""
    sp = normalize_space(space)
    if method == "grid":
        specs = grid(sp, hls)
        return specs if n is None else specs[:n]
    if n is None or n < 1:
        raise ValueError(f"sampling.n: method {method!r} needs a positive int n, got {n!r}")
    return space_filling(sp, hls, n, method=method, seed=seed)


def config_hash(spec: LayerSpec, tool: str, tool_version: str | None,
                extra: Mapping[str, Any] | None = None) -> str:
    """Content hash of a job: the layer configuration (incl. part), the tool and its version.

    ``extra`` holds the other inputs that change the synthesized design (vsynth, weight seed,
    bias bits). 16 hex digits of SHA-256 of a canonical JSON encoding.
    """
    payload = {
        "schema": HASH_SCHEMA,
        "spec": spec.to_dict(),
        "tool": tool,
        "tool_version": tool_version,
        "extra": dict(extra or {}),
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=list)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def dedupe(items: Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Keep the first item of each hash, in order."""
    seen: set[str] = set()
    out = []
    for h, x in items:
        if h not in seen:
            seen.add(h)
            out.append((h, x))
    return out
