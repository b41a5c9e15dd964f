"""``HLSConfig``: the hls4ml settings one network is built with, shared by export and cost model."""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["HLSConfig", "BACKENDS", "IO_TYPES", "STRATEGIES"]

BACKENDS = ("Vitis", "Vivado")
IO_TYPES = ("io_parallel", "io_stream")
STRATEGIES = ("Latency", "Resource")
_LAYER_KEYS = {"ReuseFactor": "reuse_factor", "Strategy": "strategy"}


def _check_choice(what: str, value: Any, allowed: tuple[str, ...]) -> str:
    for a in allowed:  # accept any case, keep hls4ml's spelling
        if isinstance(value, str) and value.lower() == a.lower():
            return a
    raise ValueError(f"HLSConfig: {what}={value!r} is not one of {', '.join(allowed)}")


def _check_reuse(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"HLSConfig: {where} must be a positive integer, got {value!r}")
    return value


@dataclass
class HLSConfig:
    """hls4ml build settings, with hls4ml's names where they exist.

    ``layers`` maps module names (globs allowed, as in the search space) to overrides in hls4ml's
    spelling, e.g. ``{"fc1": {"ReuseFactor": 4}, "conv*": {"Strategy": "Resource"}}``. The first
    matching pattern wins.
    """

    backend: str = "Vitis"
    part: str = "xcvu13p-flga2577-2-e"
    clock_period: float = 5.0
    io_type: str = "io_parallel"
    strategy: str = "Latency"
    reuse_factor: int = 1
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.backend = _check_choice("backend", self.backend, BACKENDS)
        self.io_type = _check_choice("io_type", self.io_type, IO_TYPES)
        self.strategy = _check_choice("strategy", self.strategy, STRATEGIES)
        self.reuse_factor = _check_reuse("reuse_factor", self.reuse_factor)
        if not isinstance(self.part, str) or not self.part.strip():
            raise ValueError(f"HLSConfig: part must be an FPGA part name, got {self.part!r}")
        if isinstance(self.clock_period, bool) or not isinstance(self.clock_period, (int, float)) or self.clock_period <= 0:
            raise ValueError(f"HLSConfig: clock_period (ns) must be > 0, got {self.clock_period!r}")
        self.clock_period = float(self.clock_period)
        clean: dict[str, dict[str, Any]] = {}
        for pattern, over in dict(self.layers).items():
            if not isinstance(over, dict):
                raise ValueError(f"HLSConfig: layers[{pattern!r}] must be a dict, got {over!r}")
            unknown = set(over) - set(_LAYER_KEYS)
            if unknown:
                raise ValueError(
                    f"HLSConfig: layers[{pattern!r}] has unknown keys {sorted(unknown)}; "
                    f"allowed: {sorted(_LAYER_KEYS)}"
                )
            o = dict(over)
            if "ReuseFactor" in o:
                o["ReuseFactor"] = _check_reuse(f"layers[{pattern!r}]['ReuseFactor']", o["ReuseFactor"])
            if "Strategy" in o:
                o["Strategy"] = _check_choice(f"layers[{pattern!r}]['Strategy']", o["Strategy"], STRATEGIES)
            clean[pattern] = o
        self.layers = clean

    def for_layer(self, name: str) -> dict[str, Any]:
        """The effective ``{"ReuseFactor", "Strategy"}`` of the layer called ``name``."""
        out = {"ReuseFactor": self.reuse_factor, "Strategy": self.strategy}
        for pattern, over in self.layers.items():
            if fnmatch.fnmatchcase(name, pattern):
                out.update(over)
                break
        return out

    def replace(self, **changes: Any) -> HLSConfig:
        """A copy with some fields changed (validated again)."""
        d = asdict(self)
        d.update(changes)
        return HLSConfig(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HLSConfig:
        """Build from a YAML/JSON mapping; unknown keys are an error that names them."""
        allowed = set(cls.__dataclass_fields__)
        # hls4ml spellings are accepted too
        aliases = {"Backend": "backend", "Part": "part", "ClockPeriod": "clock_period",
                   "IOType": "io_type", "Strategy": "strategy", "ReuseFactor": "reuse_factor"}
        norm = {aliases.get(k, k): v for k, v in dict(d).items()}
        unknown = set(norm) - allowed
        if unknown:
            raise ValueError(f"HLSConfig: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        return cls(**norm)
