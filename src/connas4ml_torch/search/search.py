"""``Search``: architecture steps with a differentiable resource loss inside the user's own loop.

Hard budgets use Lagrangian relaxation with dual ascent (no penalty weight to tune):
``loss + sum_r lambda_r (E[R_r] - B_r) / B_r``, ``lambda_r <- max(0, lambda_r + eta (E[R_r] - B_r) / B_r)``
(``B_r`` floored at 1 in the denominators, so a zero budget, e.g. no DSPs, works).
Trade-off mode adds ``sum_r w_r E[R_r] / R_r(widest)`` with fixed user weights. Before any
training the cheapest network of the space is checked against the budgets; ``derive()`` takes
the argmax and repairs it until it fits (HardCoRe-NAS: the argmax of a relaxation can break it).
The task loss reaches the architecture through the supernet's relaxation (first-order DARTS) or,
with ``supernet.set_sampling("reinforce")``, through a score-function estimate that compares two
sampled networks (see ``search.estimators.reinforce_pair``); ``"auto"`` samples the widths and
skippable blocks that way and keeps the bit widths and kernel sizes relaxed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from connas4ml_torch.errors import InfeasibleBudgetError
from connas4ml_torch.hardware.config import HLSConfig
from connas4ml_torch.hardware.resources import parse_budgets
from connas4ml_torch.kinds import SAMPLED_IN_AUTO
from connas4ml_torch.search.cost import CostTables
from connas4ml_torch.search.estimators import (
    arch_gradients,
    checked_loss,
    reinforce_pair,
    requires_grad_off,
)
from connas4ml_torch.search.select import Repair, Selection, select, validation_score
from connas4ml_torch.search.settings import SearchSettings, tradeoff_weights

__all__ = ["Search", "InfeasibleBudgetError", "Repair", "Selection"]


class Search:
    """Joint weight/architecture search of a :class:`~connas4ml_torch.Supernet` under budgets.

    Args:
        supernet: from :func:`connas4ml_torch.searchable` (analysed: pass ``example_input``).
        cost_model: a fitted ``ResourceModel`` (``predict(list[LayerSpec]) -> DataFrame``).
        hls: the ``HLSConfig`` the network will be built with.
        constraints: hard budgets, e.g. ``{"LUT": 60_000, "DSP": "10%", "latency": 40}``.
        weights: trade-off mode, e.g. ``{"LUT": 0.5}``: penalty per unit of resource relative
            to the widest network. Both may be given.
        arch_lr: learning rate of the architecture optimizer (Adam).
        dual_lr: step of the Lagrange multipliers' dual ascent.
        warmup_steps: ``arch_step`` calls that only count (weights train, architecture frozen).
        temperature: ``(start, end)`` annealed exponentially over ``anneal_steps`` arch steps.
        margin_quantile: repair against this upper quantile of the network's prediction (e.g.
            0.9; from held-out networks) instead of the point prediction, for a safety margin.
        arch_every: update the architecture on every k-th ``arch_step`` call only (the others
            return at once): cheaper searches, at the price of fewer architecture updates.
        argmax_in_dual: the multipliers follow max(expected, argmax) cost (default), so the
            network ``derive()`` returns is pushed inside the budget and seldom needs repair;
            ``False``: the expected cost alone (the plain Lagrangian relaxation).
        sandwich: in :meth:`fit`, also train the widest network on every batch (BigNAS'
            sandwich rule), so the final selection rates wide candidates fairly; ``None``
            (default): on where the weight step samples one network (widths, blocks), off for
            the relaxations. One more forward/backward per step.
        settle_steps: the last ``settle_steps`` steps of :meth:`fit` freeze the architecture at
            the selection of that moment (scored on validation batches) and train that network
            alone; :meth:`selection` and :meth:`derive` then return it. Within the epochs
            given, so the search costs the same; the derived network needs no fine-tune.
    """

    def __init__(self, supernet, cost_model, hls: HLSConfig | None = None,
                 constraints: dict[str, Any] | None = None, weights: dict[str, float] | None = None,
                 *, arch_lr: float = 3e-3, dual_lr: float = 0.05, warmup_steps: int = 0,
                 temperature: tuple[float, float] = (1.0, 1.0), anneal_steps: int | None = None,
                 margin_quantile: float | None = None, example_input: Tensor | None = None,
                 arch_every: int = 1, argmax_in_dual: bool = True, sandwich: bool | None = None,
                 settle_steps: int = 0, settings: SearchSettings | None = None):
        if settings is None:  # the keyword arguments, validated as a YAML schedule would be
            settings = SearchSettings(arch_lr=arch_lr, dual_lr=dual_lr, warmup_steps=warmup_steps,
                                      temperature=tuple(temperature), anneal_steps=anneal_steps,
                                      margin_quantile=margin_quantile, arch_every=arch_every,
                                      argmax_in_dual=argmax_in_dual, sandwich=sandwich,
                                      settle_steps=settle_steps)
        self.settings = settings
        if settings.sampling is not None:
            supernet.set_sampling(settings.sampling)
        if supernet.graph is None:
            if example_input is None:
                raise RuntimeError("Search needs the supernet's structure: pass example_input "
                                   "to searchable() or to Search()")
            supernet.analyse(example_input)
        self.supernet = supernet
        kinds = {k for m in supernet.searchable_modules().values() for k in m.arch()}
        self._has_widths, self._has_relaxed = (bool(kinds & SAMPLED_IN_AUTO),
                                               bool(kinds - SAMPLED_IN_AUTO))
        self.hls = hls or HLSConfig()
        self.budgets = parse_budgets(constraints, self.hls.part)
        self.weights = tradeoff_weights(weights)
        self.margin_quantile = settings.margin_quantile
        self.tables = CostTables(supernet, cost_model, self.hls, quantile=settings.margin_quantile,
                                 weight_aware=settings.weight_aware)
        self.resources = self.tables.resources
        self.minimum = self.tables.cheapest()
        self._check_feasible()
        widest = {v: len(var.values) - 1 for v, var in enumerate(self.tables.variables)}
        self.reference = self.tables.cost_at(widest).clamp_min(1.0)
        self.lambdas = torch.zeros(len(self.resources))
        self.dual_lr = settings.dual_lr
        self.arch_every = settings.arch_every
        self.argmax_in_dual = settings.argmax_in_dual
        self.warmup_steps = settings.warmup_steps
        self.tau_start, self.tau_end = (float(t) for t in settings.temperature)
        self.anneal_steps = settings.anneal_steps
        self.step = 0
        self.arch_steps = 0
        # settle phase (``settle_steps``): the step it starts at, and the network it trains
        self.settle_at: int | None = None
        self.settled: dict[int, int] | None = None
        self.history: list[dict[str, float]] = []
        self.prob_history: list[tuple[int, dict[str, list[float]]]] = []
        # fixed with the optimizer; foreach: Adam's arithmetic bit for bit, in fewer launches
        self._arch_params = params = supernet.arch_parameters()
        self._weight_params = supernet.weight_parameters()
        self.arch_optimizer = (torch.optim.Adam(params, lr=settings.arch_lr, betas=(0.5, 0.999),
                                                foreach=True) if params else None)
        supernet.set_temperature(self.tau_start)

    def refresh_costs(self) -> None:
        """Query the cost model again for the current weights (weight-aware tables: zero weights
        and few signed digits make constant products cheaper as training goes on)."""
        self.tables.rebuild()
        self.minimum = self.tables.cheapest()

    # ---- budgets ---------------------------------------------------------------------------
    def _check_feasible(self) -> None:
        bad = {r: b for r, b in self.budgets.items() if self.minimum[r] > b}
        if bad:
            lines = [f"  {r}: budget {b:,.0f}, minimum achievable {self.minimum[r]:,.0f}"
                     for r, b in bad.items()]
            raise InfeasibleBudgetError(
                "no network in the search space meets the budget(s):\n" + "\n".join(lines) +
                "\nminimum achievable of each resource (cheapest network of the space): " +
                ", ".join(f"{r}={v:,.0f}" for r, v in self.minimum.items()) +
                "\nRaise the budget, allow smaller widths/bits, or raise the reuse factor."
            )
        # each budget alone may be reachable but not all at once: the all-smallest network
        # is the cheapest in every resource for a monotone cost model
        smallest = self.tables.cost_at({v: 0 for v in range(len(self.tables.variables))})
        joint = {r: float(smallest[self.resources.index(r)]) for r in self.budgets}
        if any(joint[r] > b for r, b in self.budgets.items()):
            raise InfeasibleBudgetError(
                "the budgets cannot be met together; the smallest network needs " +
                ", ".join(f"{r}={v:,.0f} (budget {self.budgets[r]:,.0f})" for r, v in joint.items())
            )

    # ---- the loop --------------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        return self.supernet.temperature

    def expected_resources(self) -> dict[str, Tensor]:
        """Expected LUT/FF/BRAM_18K/DSP/latency of the supernet (differentiable tensors)."""
        e = self.tables.expected(self.supernet.temperature)
        return dict(zip(self.resources, e.unbind()))

    def argmax_resources(self, upper: bool = False) -> dict[str, float]:
        """Predicted resources of the current argmax network."""
        c = self.tables.cost_at(self.tables.argmax_choice(), upper=upper)
        return dict(zip(self.resources, c.tolist()))

    def resource_loss(self, e: Tensor | None = None) -> Tensor:
        """The differentiable resource term added to the task loss (``e``: expected resources)."""
        if e is None:
            e = self.tables.expected(self.supernet.temperature)
        lam, ref = self.lambdas.to(e.device), self.reference.to(e.device)
        loss = e.new_zeros(())
        for r, b in self.budgets.items():
            i = self.resources.index(r)
            loss = loss + lam[i] * (e[i] - b) / max(b, 1.0)
        for r, w in self.weights.items():
            i = self.resources.index(r)
            loss = loss + w * e[i] / ref[i]
        return loss

    def arch_step(self, closure: Callable[[], Tensor]) -> dict[str, float]:
        """One architecture update on a validation batch (first-order DARTS), then dual ascent.

        ``closure()`` returns the task loss of the supernet on a validation batch. Where widths
        are sampled (``"auto"``, ``"reinforce"``) it is called twice, to compare two networks:
        bind the batch outside the closure so that both see the same one. Only the
        architecture parameters receive gradients here; weight gradients are left untouched.
        During warm-up the closure is not called and nothing changes but the step count.
        """
        self.step += 1
        if self.step <= self.warmup_steps or self.arch_optimizer is None:
            return {"step": self.step, "warmup": 1.0}
        if (self.step - self.warmup_steps - 1) % self.arch_every:
            return {"step": self.step, "skipped": 1.0}
        mode = self.supernet.control.mode
        params = self._arch_params
        relaxed_grads: list[Tensor | None] = [None] * len(params)
        # the validation passes differentiate the logits only (same values, same gradients)
        with requires_grad_off(self._weight_params):
            if mode == "reinforce" or (mode == "auto" and self._has_widths):
                # "auto" with only sampled choices (widths, blocks) is plain "reinforce"
                relaxed = mode == "auto" and self._has_relaxed
                task, objective, relaxed_grads = reinforce_pair(self, closure, params, relaxed)
            else:
                task = objective = checked_loss(closure(), self.step)
        e = self.tables.expected(self.supernet.temperature)
        total = objective + self.resource_loss(e)
        grads = arch_gradients(total, params, relaxed_grads, self.step)
        for p, g in zip(params, grads):
            p.grad = g
        self.arch_optimizer.step()
        self.arch_optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            # the constraint values at which the gradient was taken (one host read for all)
            ev = e.detach().tolist()
            # the multipliers answer to the larger of the expected and the argmax cost: the
            # relaxation may fit the budget while its argmax does not (HardCoRe-NAS), and it is
            # the argmax that derive() returns
            a = (self.tables.cost_at(self.tables.argmax_choice()).tolist()
                 if self.argmax_in_dual and self.budgets else None)
            for r, b in self.budgets.items():
                i = self.resources.index(r)
                c = max(ev[i], a[i]) if self.argmax_in_dual else ev[i]
                g = (c - b) / max(b, 1.0)
                self.lambdas[i] = torch.clamp(self.lambdas[i] + self.dual_lr * g, min=0.0)
        self.arch_steps += 1
        self._anneal()
        every = self.settings.refresh_every
        if self.settings.weight_aware and every and self.arch_steps % every == 0:
            self.refresh_costs()
        stats = {"step": self.step, "task_loss": float(task.detach()), "temperature": self.temperature}
        stats.update({f"E[{r}]": ev[i] for i, r in enumerate(self.resources)})
        lam = self.lambdas.tolist()
        stats.update({f"lambda_{r}": lam[self.resources.index(r)] for r in self.budgets})
        self.history.append(stats)
        if self.arch_steps == 1 or self.arch_steps % 10 == 0:
            self.prob_history.append((self.step, {
                f"{layer}.{kind}": p.tolist()
                for layer, kinds in self.supernet.probabilities().items() for kind, p in kinds.items()}))
        return stats

    @property
    def sandwich(self) -> bool:
        """Whether :meth:`fit` also trains the widest network (``settings.sandwich``; None: auto)."""
        if self.settings.sandwich is not None:
            return self.settings.sandwich
        mode = self.supernet.control.mode
        return mode in ("reinforce", "gumbel_hard") or (mode == "auto" and self._has_widths)

    def weight_pass(self) -> contextlib.AbstractContextManager:
        """For a weight step's forward and backward passes: no gradient is computed for the
        architecture logits (:meth:`arch_step` sets theirs itself); the weights' are unchanged.
        :meth:`fit` runs its weight steps in it, a loop of your own may too; not through
        ``DistributedDataParallel`` (it expects a gradient for every parameter it holds), nor
        with an optimizer that holds the logits."""
        return requires_grad_off(self._arch_params)

    def choice_values(self) -> dict[str, tuple[int, ...]]:
        """``{"layer.kind": candidate values}`` of every searched choice."""
        return {f"{layer}.{kind}": vals
                for layer, mod in self.supernet.searchable_modules().items()
                for kind, vals in mod.choice_values().items() if len(vals) > 1}

    def _anneal(self) -> None:
        if not self.anneal_steps:
            return
        frac = min(1.0, self.arch_steps / self.anneal_steps)
        tau = self.tau_start * (self.tau_end / self.tau_start) ** frac
        self.supernet.set_temperature(tau)

    def fit(self, train_loader: Iterable, val_loader: Iterable, loss_fn: Callable,
            optimizer: torch.optim.Optimizer, epochs: int = 1, progress: bool = True, *,
            checkpoint: str | Path | None = None, checkpoint_every: int | None = None,
            resume: bool = False, on_step: Callable[[int], None] | None = None,
            model: nn.Module | None = None, scheduler: Any = None) -> Search:
        """The search loop: per training batch, one ``arch_step`` on the next validation batch
        (cycled) then one weight step with ``optimizer``, for ``epochs``.

        Several processes (``torch.distributed``, e.g. one per GPU): wrap the supernet in
        ``DistributedDataParallel`` and pass it as ``model`` (the weight steps run through it),
        and give every process loaders built with its ``rank``/``world_size``
        (:class:`~connas4ml_torch.training.TensorBatches`): architecture gradients are averaged
        over the processes, so the search sees the global batch.

        ``checkpoint``: a file rewritten atomically after every epoch and every
        ``checkpoint_every`` steps; ``resume=True`` continues from it exactly (with
        :class:`~connas4ml_torch.training.TensorBatches` loaders, bit for bit). ``on_step(step)``
        is called after each step. ``scheduler``: a ``torch.optim.lr_scheduler`` of
        ``optimizer``, stepped after every weight step (per step, not per epoch) and checkpointed.
        A NaN/inf training loss stops with the step and the first non-finite module."""
        from connas4ml_torch.search.loop import fit

        return fit(self, train_loader, val_loader, loss_fn, optimizer, epochs, progress=progress,
                   checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume,
                   on_step=on_step, model=model, scheduler=scheduler)

    def short_postfix(self) -> dict[str, str]:
        """Argmax resources against budgets, for a progress bar."""
        a = self.argmax_resources()
        return {r: f"{a[r]:,.0f}" + (f"/{self.budgets[r]:,.0f}" if r in self.budgets else "")
                for r in (self.budgets or {"LUT": 0})}

    # ---- discretization ----------------------------------------------------------------------
    def selection(self, score: Callable[[dict[str, dict[str, int]]], float] | None = None,
                  fill_budget: bool = True) -> Selection:
        """The network ``derive()`` returns, without building it (pure: nothing is stored).

        The argmax choices repaired until every budget holds; under hard budgets also grown
        while the budgets hold (``fill_budget``), the candidates compared by ``score``
        (``choices -> validation loss``, e.g. :meth:`validation_score`) when given. The result
        holds the choices, their predicted resources, the repairs, a per-layer breakdown, the
        share of the binding budget used and, when a smaller network was kept, why. After a
        settle phase (``settle_steps``) it is the network that phase trained (``score`` unused).
        """
        return select(self, score, fill_budget)

    def validation_score(self, batches: Iterable, loss_fn: Callable
                         ) -> Callable[[dict[str, dict[str, int]]], float]:
        """``choices -> mean loss over batches`` of the supernet run as that one network with
        its shared weights (for :meth:`selection`)."""
        return validation_score(self.supernet, batches, loss_fn)

    def discretize(self) -> tuple[dict[int, int], list[Repair]]:
        """Argmax choices (variable -> value index), stepped down until every budget holds."""
        sel = self.selection(fill_budget=False)
        return sel.index, sel.repairs

    def derive(self, selection: Selection | None = None) -> nn.Module:
        """The chosen network (``selection`` or :meth:`selection`) as a plain Brevitas model,
        within every budget by prediction; each repair is printed. The returned model's
        ``choices`` attribute records the architecture."""
        sel = selection or self.selection()
        for rep in sel.repairs:
            print(f"connas4ml: repair {rep}")
        return self.supernet.derive(sel.choices)

    # ---- reporting ---------------------------------------------------------------------------
    def summary(self) -> str:
        """Expected and argmax resources against each budget, and the current choices."""
        e = {r: float(v.detach()) for r, v in self.expected_resources().items()}
        a = self.argmax_resources()
        lines = [f"step {self.step} (arch steps {self.arch_steps}), temperature {self.temperature:.3g}",
                 f"{'resource':<10}{'expected':>12}{'argmax':>12}{'budget':>12}{'minimum':>12}{'lambda':>9}"]
        for i, r in enumerate(self.resources):
            b = self.budgets.get(r)
            lam = f"{float(self.lambdas[i]):.3f}" if r in self.budgets else "-"
            lines.append(f"{r:<10}{e[r]:>12,.0f}{a[r]:>12,.0f}{(f'{b:,.0f}' if b else '-'):>12}"
                         f"{self.minimum[r]:>12,.0f}{lam:>9}")
        lines.append("choices: " + "; ".join(
            f"{layer}: " + ",".join(f"{k}={v}" for k, v in kinds.items())
            for layer, kinds in self.supernet.choices().items()))
        return "\n".join(lines)

    # ---- checkpoint ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Supernet, architecture optimizer, multipliers, temperature, step and RNG: one dict."""
        return {
            "supernet": self.supernet.state_dict(),
            "arch_optimizer": self.arch_optimizer.state_dict() if self.arch_optimizer else None,
            "lambdas": self.lambdas.clone(),
            "temperature": self.supernet.temperature,
            "step": self.step,
            "arch_steps": self.arch_steps,
            "budgets": dict(self.budgets),
            "history": list(self.history),
            "prob_history": list(self.prob_history),
            "rng": torch.get_rng_state(),
            "cost_tables": self.tables.state_dict(),
            "settle_at": self.settle_at,
            "settled": None if self.settled is None else dict(self.settled),
        }

    def load_state_dict(self, state: dict[str, Any], restore_rng: bool = True) -> None:
        """Resume: continues exactly as if the search had never stopped."""
        if state.get("budgets") != self.budgets:
            raise ValueError(f"checkpoint budgets {state.get('budgets')} differ from this "
                             f"search's {self.budgets}")
        self.supernet.load_state_dict(state["supernet"])
        if self.arch_optimizer is not None and state["arch_optimizer"] is not None:
            self.arch_optimizer.load_state_dict(state["arch_optimizer"])
        self.lambdas = state["lambdas"].clone()
        self.supernet.set_temperature(state["temperature"])
        self.step = int(state["step"])
        self.arch_steps = int(state["arch_steps"])
        self.history = list(state["history"])
        self.prob_history = list(state.get("prob_history", []))
        if state.get("cost_tables") is not None:
            self.tables.load_state_dict(state["cost_tables"])
            self.minimum = self.tables.cheapest()
        self.settle_at = state.get("settle_at")
        settled = state.get("settled")
        self.settled = None if settled is None else {int(k): int(v) for k, v in settled.items()}
        if restore_rng and state.get("rng") is not None:
            torch.set_rng_state(state["rng"])
