"""``HLSConfig``: the hls4ml settings one network is built with, shared by export and cost model.

One dataclass, validated by :mod:`connas4ml_torch.schema` however it is built: keyword
arguments, ``from_dict`` (YAML/JSON, hls4ml spellings ``Backend``, ``Part``, ``ClockPeriod``,
``IOType``, ``Strategy``, ``ReuseFactor`` accepted) or the CLI.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, replace
from typing import Any

from connas4ml_torch import schema
from connas4ml_torch.errors import ConfigError

__all__ = ["HLSConfig", "BACKENDS", "IO_TYPES", "STRATEGIES", "LAYER_KEYS"]

BACKENDS = ("Vitis", "Vivado")
IO_TYPES = ("io_parallel", "io_stream")
STRATEGIES = ("Latency", "Resource")
LAYER_KEYS = ("ReuseFactor", "Strategy")  # per-layer overrides, in hls4ml's spelling


def _choice(what: str, value: Any, allowed: tuple[str, ...]) -> str:
    for a in allowed:  # accept any case, keep hls4ml's spelling
        if isinstance(value, str) and value.lower() == a.lower():
            return a
    raise ConfigError(f"HLSConfig: {what}={value!r} is not one of {', '.join(allowed)}"
                      + schema.closest(str(value), list(allowed)))


@dataclass
class HLSConfig:
    """hls4ml build settings, with hls4ml's names where they exist.

    ``layers`` maps module names (globs allowed, as in the search space) to overrides in hls4ml's
    spelling, e.g. ``{"fc1": {"ReuseFactor": 4}, "conv*": {"Strategy": "Resource"}}``. The first
    matching pattern wins.
    """

    backend: str = schema.setting("Vitis", aliases=("Backend",))
    part: str = schema.setting("xcvu13p-flga2577-2-e", aliases=("Part",))
    clock_period: float = schema.setting(5.0, gt=0, aliases=("ClockPeriod",), doc="ns")
    io_type: str = schema.setting("io_parallel", aliases=("IOType",))
    strategy: str = schema.setting("Latency", aliases=("Strategy",))
    reuse_factor: int = schema.setting(1, ge=1, aliases=("ReuseFactor",))
    layers: dict[str, dict[str, Any]] = schema.setting(default_factory=dict, aliases=("LayerName",))

    def __post_init__(self) -> None:
        schema.check(self, "HLSConfig")
        self.backend = _choice("backend", self.backend, BACKENDS)
        self.io_type = _choice("io_type", self.io_type, IO_TYPES)
        self.strategy = _choice("strategy", self.strategy, STRATEGIES)
        if not self.part.strip():
            raise ConfigError(f"HLSConfig: part must be an FPGA part name, got {self.part!r}")
        clean: dict[str, dict[str, Any]] = {}
        for pattern, over in dict(self.layers).items():
            where = f"HLSConfig: layers[{pattern!r}]"
            if not isinstance(over, dict):
                raise ConfigError(f"{where} must be a mapping, got {over!r}")
            unknown = sorted(set(over) - set(LAYER_KEYS))
            if unknown:
                raise ConfigError(f"{where} has unknown key {unknown[0]!r}"
                                  f"{schema.closest(unknown[0], list(LAYER_KEYS))}; allowed: "
                                  f"{', '.join(LAYER_KEYS)}")
            o = dict(over)
            if "ReuseFactor" in o:
                rf = o["ReuseFactor"]
                if isinstance(rf, bool) or not isinstance(rf, int) or rf < 1:
                    raise ConfigError(f"{where}['ReuseFactor'] must be a positive integer, "
                                      f"got {rf!r}")
            if "Strategy" in o:
                o["Strategy"] = _choice(f"layers[{pattern!r}]['Strategy']", o["Strategy"], STRATEGIES)
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
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> HLSConfig:
        """Build from a YAML/JSON mapping (hls4ml spellings accepted); an unknown key is an error
        that names it and the closest valid key."""
        return schema.from_dict(cls, d, "hls")
