"""``SearchSettings``: the search's hyperparameters, validated the same way from Python and YAML.

``Search(..., arch_lr=..., dual_lr=...)`` builds one of these, and so does the ``schedule``
section of a run config: a negative dual learning rate (budgets never enforced), a NaN learning
rate or a zero ``arch_every`` is refused before anything trains, with the key named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connas4ml_torch import schema
from connas4ml_torch.errors import ConfigError
from connas4ml_torch.hardware.resources import canonical_resource
from connas4ml_torch.space.supernet import SAMPLING_MODES

__all__ = ["SearchSettings", "SAMPLING_MODES", "SEARCH_SAMPLING", "tradeoff_weights"]

# argmax evaluates one network; it is not a way to search
SEARCH_SAMPLING = tuple(m for m in SAMPLING_MODES if m != "argmax")


@dataclass
class SearchSettings:
    """Hyperparameters of :class:`~connas4ml_torch.Search` (see its docstring for each one)."""

    arch_lr: float = schema.setting(3e-3, ge=0)
    dual_lr: float = schema.setting(0.05, ge=0)
    warmup_steps: int = schema.setting(0, ge=0)
    temperature: tuple[float, float] = schema.setting((1.0, 1.0), gt=0)
    anneal_steps: int | None = schema.setting(None, ge=1)
    margin_quantile: float | None = schema.setting(None, gt=0, le=1)
    arch_every: int = schema.setting(1, ge=1)
    argmax_in_dual: bool = True
    sampling: str | None = None  # None: leave the supernet's sampling mode as it is
    # cost the current weights (non-zero count, CSD digits), refreshed every ``refresh_every``
    # architecture steps (and at every epoch's end in ``fit``); 0: only at construction
    weight_aware: bool = True
    refresh_every: int = schema.setting(0, ge=0)
    # sandwich rule (BigNAS): every weight step also trains the widest network of the space, so
    # the shared weights rate the large candidates as fairly as the ones sampled most
    # (docs/design.md, "Training the shared weights"); costs one more forward/backward per step.
    # None: on where the weight step runs one sampled network (widths or blocks sampled), off
    # where it runs the relaxation (every path gets its gradient anyway)
    sandwich: bool | None = None
    # settle phase: the last ``settle_steps`` weight steps of ``fit`` train the network the
    # selection picks at that moment (architecture frozen), so the derived network needs no
    # fine-tune: the relaxation's mixture of bit widths is not the discrete network
    # (docs/design.md, "Settling"); within the same epochs, so it costs no extra time
    settle_steps: int = schema.setting(0, ge=0)

    def __post_init__(self) -> None:
        if isinstance(self.temperature, list):
            self.temperature = tuple(self.temperature)
        schema.check(self, "Search")
        if self.sampling is not None and self.sampling not in SEARCH_SAMPLING:
            raise ConfigError(f"Search.sampling: expected one of {', '.join(SEARCH_SAMPLING)}, got "
                              f"{self.sampling!r}{schema.closest(self.sampling, list(SEARCH_SAMPLING))}")


def tradeoff_weights(weights: dict[str, Any] | None) -> dict[str, float]:
    """Trade-off weights by canonical resource name: finite numbers >= 0, each resource once."""
    out: dict[str, float] = {}
    for k, v in (weights or {}).items():
        r = canonical_resource(k)
        if r in out:
            raise ConfigError(f"trade-off weight {k!r}: {r} is given twice")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 or v == float("inf"):
            raise ConfigError(f"trade-off weight {k}={v!r}: expected a finite number >= 0")
        out[r] = float(v)
    return out
