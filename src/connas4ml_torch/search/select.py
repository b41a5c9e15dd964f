"""Discretization: from architecture logits to one network that spends its budget well.

1. Repair (HardCoRe-NAS): the argmax of a relaxed problem can violate the budget, so the argmax
   is stepped down, one choice at a time, taking the step with the best cost saved per
   probability mass lost, until every budget holds by the cost model's prediction (its upper
   quantile when a safety margin is asked for). Every step is reported as a :class:`Repair`.
2. Fill: a search under a hard budget tends to end below it (the multipliers overshoot, and the
   narrow paths of a weight-shared supernet train faster), so the repaired argmax is also grown,
   one choice at a time, while every budget holds: by probability gained per budget spent, and
   evenly (the least-grown layer first). The largest *uniform* network that fits (every choice
   at the same relative place among its values: a width multiplier and one bit width, the
   baseline a search must beat) joins them; an argmax that broke a budget is also repaired
   evenly (the cut spread over the layers) and grown back. These candidates, and the argmax,
   are scored on validation data with the shared weights (``score``: lower is better) and the
   best is kept; when the larger networks are not better, the selection says so in ``note``.

Pure: :func:`select` reads the search's state and returns a :class:`Selection`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from connas4ml_torch.errors import InfeasibleBudgetError

if TYPE_CHECKING:
    from connas4ml_torch.search.search import Search

__all__ = ["Repair", "Selection", "select", "settled_selection", "validation_score"]


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
    budget_used: float | None = None   # the binding budget's share used (max over budgets)
    scores: dict[str, float] = field(default_factory=dict)  # candidate -> validation score
    note: str = ""                     # why a network smaller than the budget allows was kept
    candidate: str = "argmax"  # which won: argmax, filled, filled evenly, argmax repaired evenly, uniform


def _violations(search: Search, choice: dict[int, int]) -> dict[str, float]:
    cost = search.tables.cost_at(choice, upper=search.margin_quantile is not None)
    res = search.resources
    return {r: (float(cost[res.index(r)]) - b) / max(b, 1.0)
            for r, b in search.budgets.items() if float(cost[res.index(r)]) > b}


def repair(search: Search, choice: dict[int, int], evenly: bool = False
           ) -> tuple[dict[int, int], list[Repair]]:
    """``choice`` (variable -> value index) stepped down until every budget holds: by cost saved
    per probability lost, or ``evenly`` (the variable highest among its values first, so that
    the cut is spread over the layers instead of taking one layer's bits down several times)."""
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
            score = (i / (len(tables.variables[v].values) - 1), saved) if evenly else saved / lost
            if best is None or score > best_score:
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


def budget_used(search: Search, choice: dict[int, int]) -> float | None:
    """The largest share of any budget the network uses (``None`` without budgets)."""
    if not search.budgets:
        return None
    cost = search.tables.cost_at(choice)
    return max(float(cost[search.resources.index(r)]) / max(b, 1.0)
               for r, b in search.budgets.items())


def fill(search: Search, choice: dict[int, int], evenly: bool = False) -> dict[int, int]:
    """``choice`` grown one step at a time while every budget holds.

    Default order: the step with the most probability gained per share of the binding budget it
    spends (the search's own preference); ``evenly``: the variable furthest below its largest
    value first (a uniform scale-up, the baseline a search must beat).
    """
    tables = search.tables
    if not search.budgets:
        return dict(choice)
    probs = tables.probs(search.supernet.temperature)
    choice = dict(choice)
    used = budget_used(search, choice) or 0.0
    for _ in range(10_000):
        best, best_key = None, None
        for v, var in enumerate(tables.variables):
            i = choice[v]
            if i + 1 >= len(var.values):
                continue
            trial = {**choice, v: i + 1}
            if _violations(search, trial):
                continue
            extra = max((budget_used(search, trial) or 0.0) - used, 1e-9)
            if evenly:
                key = (-(i + 1) / len(var.values), -extra)
            else:
                gain = float(probs[v][i + 1].detach()) + 0.05  # floored: a step is never free
                key = (gain / extra, 0.0)
            if best_key is None or key > best_key:
                best, best_key = trial, key
        if best is None:
            best = _swap_up(search, choice, used)
        if best is None:
            return choice
        choice = best
        used = budget_used(search, choice) or 0.0
    return choice


def _swap_up(search: Search, choice: dict[int, int], used: float) -> dict[int, int] | None:
    """When no single step up fits: one step up paid for by steps down elsewhere (the cheapest
    in budget first), kept if the network then uses more of the budget. In a coarse space (a
    width that doubles the next layer's inputs) this is how the budget gets spent."""
    variables = search.tables.variables
    best, best_used = None, used + 1e-6
    for v, var in enumerate(variables):
        if choice[v] + 1 >= len(var.values):
            continue
        trial = {**choice, v: choice[v] + 1}
        while _violations(search, trial):
            downs = [{**trial, w: trial[w] - 1} for w in range(len(variables))
                     if w != v and trial[w] > 0]
            if not downs:
                break
            trial = max(downs, key=lambda t: -(budget_used(search, t) or 0.0)
                        if _violations(search, t) else 10.0 + (budget_used(search, t) or 0.0))
        u = budget_used(search, trial) or 0.0
        if not _violations(search, trial) and u > best_used:
            best, best_used = trial, u
    return best


def uniform(search: Search) -> dict[int, int] | None:
    """The largest network that fits with every choice at the same relative place among its
    values (skippable blocks kept); ``None`` when even the smallest such network does not fit."""
    variables = search.tables.variables
    places = sorted({i / (len(var.values) - 1) for var in variables if len(var.values) > 1
                     for i in range(len(var.values))}, reverse=True)
    for f in places:
        choice = {v: (len(var.values) - 1 if var.owners[0][1] == "keep"
                      else int(math.floor(f * (len(var.values) - 1) + 1e-9)))
                  for v, var in enumerate(variables)}
        if not _violations(search, choice):
            return choice
    return None


def selection_at(search: Search, choice: dict[int, int], repairs: list[Repair] | None = None,
                 scores: dict[str, float] | None = None, note: str = "",
                 candidate: str = "argmax") -> Selection:
    """The :class:`Selection` of one discrete network (variable -> value index)."""
    tables = search.tables
    breakdown = tables.layer_breakdown(choice)
    if float(tables.overhead.abs().sum()) > 0:
        breakdown["model-level"] = dict(zip(search.resources, tables.overhead.tolist()))
    return Selection(tables.choice_to_layers(choice),
                     dict(zip(search.resources, tables.cost_at(choice).tolist())),
                     list(repairs or []), breakdown, dict(choice), budget_used(search, choice),
                     dict(scores or {}), note, candidate)


def select(search: Search, score: Callable[[dict[str, dict[str, int]]], float] | None = None,
           fill_budget: bool = True) -> Selection:
    """The network ``derive()`` returns.

    The argmax repaired until it meets every budget; with budgets and ``fill_budget``, also the
    two filled networks and the largest uniform one (see the module docstring). With ``score``
    (``choices -> validation loss``, lower is better) the best-scoring candidate wins (ties: the
    smaller); without it the network filled by the search's own preference is taken. After a
    settle phase, the network it trained (:func:`settled_selection`).
    """
    if search.settled is not None:
        return settled_selection(search, search.settled)
    argmax = search.tables.argmax_choice()
    base, repairs = repair(search, argmax)
    if not (search.budgets and fill_budget):
        return selection_at(search, base, repairs)
    cands = {"argmax": base, "filled": fill(search, base), "filled evenly": fill(search, base, True)}
    fixes = {n: repairs for n in cands}
    if repairs:  # the argmax broke a budget: a cut spread over the layers competes on validation
        spread, fixes["argmax repaired evenly"] = repair(search, argmax, evenly=True)
        cands["argmax repaired evenly"] = fill(search, spread)
    even = uniform(search)
    if even is not None:
        cands["uniform"] = even
        fixes["uniform"] = []
    unique: dict[tuple, str] = {}
    for name, c in cands.items():
        unique.setdefault(tuple(sorted(c.items())), name)
    names = list(unique.values())
    if score is None:
        return selection_at(search, cands["filled"], repairs, candidate="filled")
    scores = {n: float(score(search.tables.choice_to_layers(cands[n]))) for n in names}
    best = min(names, key=lambda n: (scores[n], budget_used(search, cands[n]) or 0.0))
    note = ""
    used = budget_used(search, cands[best]) or 0.0
    bigger = {n: scores[n] for n in names if (budget_used(search, cands[n]) or 0.0) > used}
    if bigger and used < 0.9:
        note = (f"kept the {best} network ({100 * used:.0f}% of the binding budget): the larger "
                "networks that fit were not better on validation ("
                + ", ".join(f"{n} {100 * (budget_used(search, cands[n]) or 0):.0f}%: "
                            f"{s:.4g}" for n, s in bigger.items())
                + f" vs {scores[best]:.4g})")
    return selection_at(search, cands[best], fixes[best], scores, note, best)


def settled_selection(search: Search, choice: dict[int, int]) -> Selection:
    """The network the settle phase trained (``Search.settled``). The weight-aware tables may
    have moved while it trained (more non-zero weights, more signed digits): if it no longer
    meets a budget it is repaired, and the repairs say so."""
    fixed, repairs = repair(search, dict(choice))
    return selection_at(search, fixed, repairs, candidate="settled",
                        note=f"trained as this network for the last {search.settings.settle_steps} "
                             "steps (settle phase)")


def validation_score(supernet, batches: Iterable, loss_fn: Callable
                     ) -> Callable[[dict[str, dict[str, int]]], float]:
    """``choices -> mean loss over batches`` of ``supernet`` run as that one network with its
    shared weights, in eval mode (``Search.validation_score``)."""
    import torch

    batches = list(batches)

    @torch.no_grad()
    def score(choices: dict[str, dict[str, int]]) -> float:
        was = supernet.training
        supernet.eval()
        try:
            with supernet.fixed(choices):
                losses = [float(loss_fn(supernet(x), y)) for x, y in batches]
        finally:
            supernet.train(was)
        return sum(losses) / max(len(losses), 1)

    return score
