"""Discretization with repair: from architecture logits to one network within every budget.

HardCoRe-NAS: the argmax of a relaxed problem can violate the budget, so the argmax is stepped
down, one choice at a time, taking the step with the best cost saved per probability mass lost,
until every budget holds by the cost model's prediction (its upper quantile when a safety margin
is asked for). Every step is reported as a :class:`Repair`. Pure: :func:`select` reads the
search's state and returns a :class:`Selection`; nothing is stored on the search.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from connas4ml_torch.errors import InfeasibleBudgetError

if TYPE_CHECKING:
    from connas4ml_torch.search.search import Search

__all__ = ["Repair", "Selection", "select"]


@dataclass(frozen=True)
class Repair:
    """One step of discretization repair: a choice stepped down to meet the budgets."""

    layer: str
    kind: str
    old: int
    new: int
    saved: dict[str, float]

    def __str__(self) -> str:
        saved = ", ".join(f"{r} -{v:,.0f}" for r, v in self.saved.items() if v > 0)
        return f"{self.layer}.{self.kind}: {self.old} -> {self.new} ({saved})"


@dataclass(frozen=True)
class Selection:
    """The chosen network: ``choices`` (``{layer: {kind: value}}``), its predicted ``resources``,
    the ``repairs`` that brought it within budget and the per-layer ``breakdown`` (adds up to
    ``resources``: a ``"model-level"`` row holds the network-level glue)."""

    choices: dict[str, dict[str, int]]
    resources: dict[str, float]
    repairs: list[Repair] = field(default_factory=list)
    breakdown: dict[str, dict[str, float]] = field(default_factory=dict)
    index: dict[int, int] = field(default_factory=dict, repr=False)  # variable -> value index


def _violations(search: Search, choice: dict[int, int]) -> dict[str, float]:
    cost = search.tables.cost_at(choice, upper=search.margin_quantile is not None)
    res = search.resources
    return {r: (float(cost[res.index(r)]) - b) / max(b, 1.0)
            for r, b in search.budgets.items() if float(cost[res.index(r)]) > b}


def repair(search: Search, choice: dict[int, int]) -> tuple[dict[int, int], list[Repair]]:
    """``choice`` (variable -> value index) stepped down until every budget holds."""
    tables, res = search.tables, search.resources
    probs = tables.probs(search.supernet.temperature)
    repairs: list[Repair] = []
    upper = search.margin_quantile is not None
    for _ in range(10_000):
        viol = _violations(search, choice)
        if not viol:
            return choice, repairs
        cost = tables.cost_at(choice, upper)
        best, best_score = None, -math.inf
        for v in range(len(tables.variables)):
            i = choice[v]
            if i == 0:
                continue
            trial = dict(choice)
            trial[v] = i - 1
            new = tables.cost_at(trial, upper)
            saved = sum(max(0.0, float(cost[res.index(r)] - new[res.index(r)]))
                        / max(search.budgets[r], 1.0) for r in viol)
            if saved <= 0:
                continue
            # floored: near-equal probabilities would otherwise make any step look free
            lost = max(float(probs[v][i].detach() - probs[v][i - 1].detach()), 0.05)
            score = saved / lost
            if score > best_score:
                best, best_score = (v, trial, new), score
        if best is None:
            raise InfeasibleBudgetError(
                "discretization: no smaller choice reduces the violated budget(s) "
                + ", ".join(f"{r} (+{100 * x:.1f}%)" for r, x in viol.items()))
        v, trial, new = best
        var = tables.variables[v]
        layer, kind = var.owners[0]
        repairs.append(Repair(layer, kind, var.values[choice[v]], var.values[trial[v]],
                              {r: float(cost[i] - new[i]) for i, r in enumerate(res)}))
        choice = trial
    raise InfeasibleBudgetError("discretization did not converge")


def selection_at(search: Search, choice: dict[int, int], repairs: list[Repair] | None = None
                 ) -> Selection:
    """The :class:`Selection` of one discrete network (variable -> value index)."""
    tables = search.tables
    breakdown = tables.layer_breakdown(choice)
    if float(tables.overhead.abs().sum()) > 0:
        breakdown["model-level"] = dict(zip(search.resources, tables.overhead.tolist()))
    return Selection(tables.choice_to_layers(choice),
                     dict(zip(search.resources, tables.cost_at(choice).tolist())),
                     list(repairs or []), breakdown, dict(choice))


def select(search: Search) -> Selection:
    """The argmax network of the search, repaired until it meets every budget."""
    choice, repairs = repair(search, search.tables.argmax_choice())
    return selection_at(search, choice, repairs)
