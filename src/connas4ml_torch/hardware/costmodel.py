"""What the search needs from a cost model (``CostModel``), and the results a prediction returns.

``CostModel`` is a ``typing.Protocol``: any object with ``predict`` and ``predict_network`` works
(``ResourceModel`` is the library's; where a model also has ``network_shares``, what each layer
adds to a network, the search's tables use that instead of ``predict``). ``NetworkPrediction``
is a read-only mapping of the totals (``LUT``, ``FF``, ``BRAM_18K``, ``DSP``, ``latency``,
``II``; aliases such as ``latency_cycles`` are accepted) that also carries the per-layer
breakdown, whose rows (layers and the model-level glue) add up to the totals, and the domain
findings. A ``DomainFinding`` says which input of which layer lies outside what the model was
fitted on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from connas4ml_torch.hardware.layerspec import LayerSpec
from connas4ml_torch.hardware.resources import TARGETS, canonical_resource

__all__ = ["CostModel", "NetworkPrediction", "DomainFinding", "fitted_domain", "check_domain",
           "summarize_domain"]


@runtime_checkable
class CostModel(Protocol):
    """The interface the search calls: per-layer and whole-network predictions of ``TARGETS``."""

    def predict(self, specs: Sequence[LayerSpec], quantile: float | None = None) -> pd.DataFrame:
        """One row per layer, columns ``TARGETS``."""
        ...

    def predict_network(self, specs: Sequence[LayerSpec],
                        quantile: float | None = None) -> Mapping[str, float]:
        """Totals of the network made of ``specs`` (in order), keyed by ``TARGETS``."""
        ...


@dataclass(frozen=True)
class DomainFinding:
    """One input outside the fitted domain: ``layer`` (row index, ``None`` for the network),
    ``feature`` (a LayerSpec field or derived quantity), the ``value`` asked for and what the
    model was fitted on (``low``/``high`` for numbers, ``seen`` for categories)."""

    layer: int | None
    feature: str
    value: Any
    low: float | None = None
    high: float | None = None
    seen: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = "network" if self.layer is None else f"layer {self.layer}"
        if self.seen:
            return f"{where}: {self.feature}={self.value!r} not among the fitted {list(self.seen)}"
        return f"{where}: {self.feature}={self.value:g} outside the fitted [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class NetworkPrediction(Mapping[str, float]):
    """Whole-network prediction: a mapping of totals plus ``layers`` (one row per layer and one
    ``glue`` row; each resource column sums to its total, latency as each layer's share of the
    network latency, II per layer with the network II the max) and ``domain`` findings."""

    totals: dict[str, float]
    layers: pd.DataFrame
    domain: tuple[DomainFinding, ...] = ()
    quantile: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> float:
        return self.totals[canonical_resource(key, allowed=TARGETS)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.totals)

    def __len__(self) -> int:
        return len(self.totals)

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v:.4g}" for k, v in self.totals.items())
        return f"NetworkPrediction({body}; {len(self.layers) - 1} layers, {len(self.domain)} findings)"


_CATS = ("layer_type", "strategy", "io_type", "vitis", "family")
_RANGES = ("n_in", "n_out", "weight_bits", "input_bits", "reuse_factor", "kernel_size", "pixels")


def _domain_frame(frame: pd.DataFrame) -> pd.DataFrame:
    from connas4ml_torch.hardware.features import is_vitis, part_info

    def prod(t: object) -> float:
        return float(np.prod(t)) if isinstance(t, tuple) and t else 1.0

    return pd.DataFrame({
        "layer_type": frame["layer_type"].astype(str).to_numpy(),
        "strategy": frame["strategy"].astype(str).str.capitalize().to_numpy(),
        "io_type": frame["io_type"].astype(str).to_numpy(),
        "vitis": ["Vitis HLS" if is_vitis(b, v) else "Vivado HLS"
                  for b, v in zip(frame["backend"], frame["tool_version"])],
        "family": [part_info(str(p))[0] for p in frame["part"].fillna("")],
        "n_in": pd.to_numeric(frame["n_in"], errors="coerce").to_numpy(float),
        "n_out": pd.to_numeric(frame["n_out"], errors="coerce").to_numpy(float),
        "weight_bits": pd.to_numeric(frame["weight_bits"], errors="coerce").to_numpy(float),
        "input_bits": pd.to_numeric(frame["input_bits"], errors="coerce").to_numpy(float),
        "reuse_factor": pd.to_numeric(frame["reuse_factor"], errors="coerce").to_numpy(float),
        "kernel_size": [prod(k) for k in frame["kernel"]],
        "pixels": [prod(o) for o in frame["out_size"]],
    })


def fitted_domain(frame: pd.DataFrame) -> dict[str, Any]:
    """The domain of a training table: the categories seen and the numeric ranges (Dense/Conv
    rows for sizes, weight bits and reuse factor; every row for input bits)."""
    d = _domain_frame(frame)
    w = d[d["layer_type"].isin(("Dense", "Conv1D", "Conv2D"))]
    w = w if len(w) else d
    dom: dict[str, Any] = {c: sorted(set(map(str, d[c]))) for c in _CATS}
    rng: dict[str, list[float]] = {}
    for c in _RANGES:
        src = d if c == "input_bits" else w
        v = src[c].to_numpy(float)
        v = v[np.isfinite(v)]
        if v.size:
            rng[c] = [float(v.min()), float(v.max())]
    dom["ranges"] = rng
    dom["n_rows"] = int(len(frame))
    return dom


def check_domain(frame: pd.DataFrame, domain: dict[str, Any]) -> tuple[DomainFinding, ...]:
    """Every (layer, feature) of ``frame`` outside ``domain``; one finding per layer and feature."""
    d = _domain_frame(frame)
    out: list[DomainFinding] = []
    weight = d["layer_type"].isin(("Dense", "Conv1D", "Conv2D")).to_numpy()
    for c in _CATS:
        seen = set(domain.get(c, ()))
        for i in np.flatnonzero(~d[c].astype(str).isin(seen).to_numpy()):
            out.append(DomainFinding(int(i), c, str(d[c].iat[i]), seen=tuple(sorted(seen))))
    for c, (lo, hi) in domain.get("ranges", {}).items():
        v = d[c].to_numpy(float)
        rows = np.ones(len(d), bool) if c == "input_bits" else weight
        for i in np.flatnonzero(rows & np.isfinite(v) & ((v < lo) | (v > hi))):
            out.append(DomainFinding(int(i), c, float(v[i]), low=lo, high=hi))
    return tuple(sorted(out, key=lambda f: (f.layer if f.layer is not None else -1, f.feature)))


def summarize_domain(findings: Sequence[Any]) -> str:
    """``"weight_bits 2..3 outside the fitted [4, 16]; layer_type ['Pooling1D'] not among ..."``:
    one clause per feature, the range asked for against the range fitted."""
    by: dict[str, list[Any]] = {}
    for f in findings:
        by.setdefault(f.feature, []).append(f)
    parts = []
    for feature, fs in by.items():
        if fs[0].seen:
            vals = sorted({str(f.value) for f in fs})
            parts.append(f"{feature} {vals} not among the fitted {list(fs[0].seen)}")
        else:
            vals = [float(f.value) for f in fs]
            parts.append(f"{feature} {min(vals):g}..{max(vals):g} outside the fitted "
                         f"[{fs[0].low:g}, {fs[0].high:g}]")
    return "; ".join(parts)
