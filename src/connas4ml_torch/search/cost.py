"""Cost tables: the surrogate queried once for every combination of each layer's choices.

A layer's resources depend on a few architecture *variables*: the width of the layer that feeds
it, its own width, its weight bits, the bits of the quantizer that feeds it, its kernel size. Each
variable is one architecture parameter (tied layers share one, which the tables respect by
enumerating shared variables once). The table of a layer is a tensor over its variables; the
expected cost of the supernet is the sum over layers of the table contracted (``einsum``) with the
variables' probability vectors: differentiable and microseconds per step. A layer inside a
skippable block has the block's keep variable as one more axis, with cost 0 at "skip": its
expected cost is ``p_keep`` times its cost.
"""

from __future__ import annotations

import itertools
import string
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from connas4ml_torch.hardware.config import HLSConfig
from connas4ml_torch.hardware.layerspec import LayerSpec
from connas4ml_torch.hardware.resources import SEARCHABLE, canonical_resource  # noqa: F401
from connas4ml_torch.kinds import SpecContext, choice_argmax, searchable_kind
from connas4ml_torch.kinds.skip import KEEP

__all__ = ["RESOURCES", "Variable", "LayerTable", "CostTables", "canonical_resource"]

# searchable resources (hardware.resources spells them) -> the cost model's output column
RESOURCES = {r: r for r in SEARCHABLE}
_SKIPPED = "skipped"  # the spec of a layer whose skippable block is skipped: it costs nothing


@dataclass
class Variable:
    """One architecture choice: ``values`` and the parameter whose softmax weighs them."""

    key: str                  # "layer.kind" of its first owner
    values: tuple[int, ...]
    alpha: nn.Parameter | None  # None: a single, fixed value
    owners: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class LayerTable:
    name: str
    variables: list[int]       # indices into CostTables.variables
    table: Tensor              # [len(values) per variable..., n_resources]
    upper: Tensor | None       # the same for the upper prediction quantile


class CostTables:
    """Per-layer cost tensors of a supernet under one ``HLSConfig``, from a ``ResourceModel``.

    ``weight_aware``: describe each weight layer's current weights (non-zero count, CSD digits
    on each bit width's grid) to the cost model, which costs constant products by them under the
    Latency strategy; :meth:`rebuild` refreshes the tables as the weights train.
    """

    def __init__(self, supernet, cost_model, hls: HLSConfig, quantile: float | None = None,
                 progress: bool = False, weight_aware: bool = False):
        if supernet.graph is None:
            raise RuntimeError("cost tables need the supernet's structure: pass example_input "
                               "to searchable() or run the supernet once first")
        self.supernet = supernet
        self.hls = hls
        self.cost_model, self.quantile, self.weight_aware = cost_model, quantile, weight_aware
        self.resources = list(RESOURCES)
        self.variables: list[Variable] = []
        self._var_of: dict[tuple[str, str], int] = {}
        mods = supernet.searchable_modules()
        for name, mod in mods.items():
            arch = mod.arch()
            for kind, values in mod.choice_values().items():
                self._variable(name, kind, values, arch.get(kind))
        self.rebuild()

    def rebuild(self) -> None:
        """Query the cost model for every layer and choice (again: the weights may have moved)."""
        supernet, cost_model, quantile = self.supernet, self.cost_model, self.quantile
        mods = supernet.searchable_modules()
        self.__dict__.pop("_on_device", None)
        self.layers: list[LayerTable] = []
        specs: list[LayerSpec] = []
        slices: list[tuple[str, list[int], list[tuple[int, ...]]]] = []
        graph = supernet.graph
        # weight layers, then the activations, tables and pools between them, then the max pools:
        # every layer whose kind describes it to the cost model (a cast merged into the next
        # layer is free; export/specs.py lists a derived model's layers in the same order)
        nodes = [(n, node, SpecContext(n, mods[n], {}, node.in_shape, node.out_shape, node.block,
                                       with_weights=self.weight_aware, memo={}))
                 for n, node in graph.layers.items()]
        nodes += [(n, node, SpecContext(n, mods[n], {}, node.shape, node.out_shape or node.shape))
                  for n, node in graph.acts.items()]
        # modules kept as they are whose kind describes them (max pooling): not searchable,
        # named by their path in the user's module (space/trace.py)
        root = getattr(supernet, "net", supernet)
        kept = {n: root.get_submodule(n) for n in graph.passives}
        nodes += [(n, node, SpecContext(n, kept[n], {}, node.shape, node.out_shape or node.shape))
                  for n, node in graph.passives.items()]
        # a layer inside a skippable block costs nothing when the block is skipped: its table
        # gets the block's keep variable as one more axis (cost 0 at "skip")
        gate_of: dict[str, int] = {}
        for block, names in supernet.skip_blocks().items():
            inside = {id(m) for m in mods[block].modules()}
            for inner in [*names, *(n for n, m in kept.items() if id(m) in inside)]:
                gate_of[inner] = self._var_of[(block, KEEP)]
        for name, node, ctx0 in nodes:
            mod = ctx0.module
            kind = searchable_kind(mod)
            # the layer kind says which architecture variables its cost depends on
            deps = {axis: self._var_of[key] for axis, key in kind.cost_axes(mod, node).items()
                    if key in self._var_of}
            if not deps and kind.role != "weight":
                continue
            gate = gate_of.get(name)
            var_ids = list(dict.fromkeys([*deps.values(), *([gate] if gate is not None else [])]))
            combos = list(itertools.product(*(range(len(self.variables[v].values)) for v in var_ids)))
            layer_specs = []
            for combo in combos:
                val = {v: self.variables[v].values[i] for v, i in zip(var_ids, combo)}
                if gate is not None and not val[gate]:
                    layer_specs.append(_SKIPPED)
                    continue
                layer_specs.append(kind.spec(replace(ctx0, values={k: val[v] for k, v in deps.items()}),
                                             self.hls))
            if any(sp is None for sp in layer_specs):
                continue
            specs += layer_specs
            slices.append((name, var_ids, combos))
        point = self._predict(cost_model, specs, None)
        upper = self._predict(cost_model, specs, quantile) if quantile else None
        start = 0
        for name, var_ids, combos in slices:
            shape = [len(self.variables[v].values) for v in var_ids] + [len(self.resources)]
            n = len(combos)
            t = torch.tensor(point[start:start + n], dtype=torch.float32).reshape(shape)
            u = (torch.tensor(upper[start:start + n], dtype=torch.float32).reshape(shape)
                 if upper is not None else None)
            self.layers.append(LayerTable(name, var_ids, t, u))
            start += n
        self.n_queries = len(specs)
        # the network-level term (interfaces, control, glue) of the cost model, as an affine map
        # total = scale * layer_sum + overhead read off two networks (the widest and the
        # smallest, every skippable block kept in both: the same layers); the layer tables are
        # scaled once so that expected() stays one einsum a layer
        self.overhead = torch.zeros(len(self.resources))
        if hasattr(cost_model, "predict_network"):
            keeps = {self._var_of[(b, KEEP)] for b in supernet.skip_blocks()}
            ends = [{v: len(var.values) - 1 for v, var in enumerate(self.variables)},
                    {v: int(v in keeps) for v in range(len(self.variables))}]
            sums = [self._layer_sum_at(c, upper=False) for c in ends]
            totals = [self._network_total(cost_model, specs, slices, c) for c in ends]
            scale = torch.ones(len(self.resources))
            for i in range(len(self.resources)):
                (s1, s0), (t1, t0) = (float(x[i]) for x in sums), (float(t[i]) for t in totals)
                a = (t1 - t0) / (s1 - s0) if abs(s1 - s0) > 1e-9 else (t1 / s1 if s1 > 0 else 1.0)
                a = max(a, 0.0)
                scale[i] = a
                self.overhead[i] = max(0.0, t1 - a * s1)
            for lt in self.layers:
                lt.table = lt.table * scale
                if lt.upper is not None:
                    lt.upper = lt.upper * scale
            self._block_glue(cost_model, specs, slices, keeps, ends[0], totals[0])
        self._specs = specs
        self._slices = slices

    def _block_glue(self, cost_model, specs: list, slices: list, keeps: set[int],
                    widest: dict[int, int], full: Tensor) -> None:
        """Add to the tables of a skippable block's layers, at "keep", the network-level cost
        their presence brings (the cost model's glue per layer): read off the widest network
        with and without the block, so that skipping a block also takes that away (and moved
        out of ``overhead``)."""
        for kv in sorted(keeps):
            gated = [lt for lt in self.layers if kv in lt.variables]
            if not gated:
                continue
            skip = {**widest, kv: 0}
            glue = (full - self._network_total(cost_model, specs, slices, skip)
                    - self._layer_sum_at(widest, False) + self._layer_sum_at(skip, False))
            for lt in gated:
                at = [slice(None)] * len(lt.variables) + [slice(None)]
                at[lt.variables.index(kv)] = 1
                lt.table[tuple(at)] += glue / len(gated)
                if lt.upper is not None:
                    lt.upper[tuple(at)] += glue / len(gated)
            self.overhead -= glue  # now in the block's tables: the widest total is unchanged

    def _network_total(self, cost_model, specs: list, slices: list, choice: dict[int, int]
                       ) -> Tensor:
        """``predict_network`` of one discrete network, as a vector over ``resources``."""
        t = self._network(cost_model, [specs[i] for i in self._spec_indices(slices, choice)])
        return torch.tensor([float(t.get(r, t.get("latency_cycles", 0.0))) for r in self.resources])

    def state_dict(self) -> dict[str, Any]:
        """The tables as they are (they follow the weights when weight-aware)."""
        return {"tables": [lt.table.clone() for lt in self.layers],
                "upper": [None if lt.upper is None else lt.upper.clone() for lt in self.layers],
                "overhead": self.overhead.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["tables"]) != len(self.layers):
            raise ValueError("cost tables of a different network")
        for lt, t, u in zip(self.layers, state["tables"], state["upper"]):
            lt.table, lt.upper = t.clone(), (None if u is None else u.clone())
        self.overhead = state["overhead"].clone()
        self.__dict__.pop("_on_device", None)

    # ---- construction helpers -------------------------------------------------------------
    def _variable(self, layer: str, kind: str, values, alpha) -> None:
        for i, var in enumerate(self.variables):
            if alpha is not None and var.alpha is alpha:
                var.owners.append((layer, kind))
                self._var_of[(layer, kind)] = i
                return
        self.variables.append(Variable(f"{layer}.{kind}", tuple(values), alpha, [(layer, kind)]))
        self._var_of[(layer, kind)] = len(self.variables) - 1

    @staticmethod
    def _network(cost_model, specs: list) -> dict[str, float]:
        """``predict_network`` of the layers that exist (a skipped block's are left out)."""
        live = [sp for sp in specs if sp is not _SKIPPED]
        return cost_model.predict_network(live) if live else {}

    def _predict(self, cost_model, specs: list, quantile) -> np.ndarray:
        """The cost model's predictions, one row per spec (zeros for a skipped block's)."""
        live = [sp for sp in specs if sp is not _SKIPPED]
        out = np.zeros((len(specs), len(self.resources)))
        if live:
            rows = self._predict_live(cost_model, live, quantile)
            out[[i for i, sp in enumerate(specs) if sp is not _SKIPPED]] = rows
        return out

    def _predict_live(self, cost_model, specs: list[LayerSpec], quantile) -> np.ndarray:
        # a layer's share of a network (ResourceModel.network_shares: latency chained with the
        # neighbours) where the model offers it, so tables + overhead == predict_network
        fn = getattr(cost_model, "network_shares", None) or cost_model.predict
        df = fn(specs) if quantile is None else fn(specs, quantile=quantile)
        # the domain findings were warned about in predict(); pandas deep-copies ``attrs`` on
        # every operation, which with thousands of findings cost more than the prediction
        df.attrs = {}
        # a model saved before the one vocabulary calls latency "latency_cycles"
        df = df.rename(columns={"latency_cycles": "latency"})
        cols = [RESOURCES[r] for r in self.resources]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"the cost model does not predict {missing}")
        out = df[cols].to_numpy(dtype=np.float64)
        if not np.isfinite(out).all():
            raise ValueError("the cost model returned non-finite predictions")
        return np.maximum(out, 0.0)

    def _spec_indices(self, slices, choice: dict[int, int]) -> list[int]:
        out, start = [], 0
        for _name, var_ids, combos in slices:
            out.append(start + combos.index(tuple(choice[v] for v in var_ids)))
            start += len(combos)
        return out

    def _layer_sum_at(self, choice: dict[int, int], upper: bool) -> Tensor:
        total = torch.zeros(len(self.resources))
        for lt in self.layers:
            t = lt.upper if (upper and lt.upper is not None) else lt.table
            total = total + t[tuple(choice[v] for v in lt.variables)]
        return total

    # ---- queries ---------------------------------------------------------------------------
    def probs(self, temperature: float) -> list[Tensor]:
        """Probability vector of every variable (a one-element [1.] for fixed ones)."""
        out = []
        for var in self.variables:
            if var.alpha is None:
                out.append(torch.ones(1))  # moved to the tables' device by expected()
            else:
                out.append(torch.softmax(var.alpha / temperature, dim=0))
        return out

    def _device_tables(self, device: torch.device, dtype: torch.dtype = torch.float32
                       ) -> tuple[list[Tensor], Tensor]:
        """The layer tables on ``device`` in ``dtype`` (copied once each: the supernet may be on
        a GPU, or in float64)."""
        cache = self.__dict__.setdefault("_on_device", {})
        key = (device, dtype)
        if key not in cache:
            cache[key] = ([lt.table.to(device, dtype) for lt in self.layers],
                          self.overhead.to(device, dtype))
        return cache[key]

    def expected(self, temperature: float) -> Tensor:
        """Expected resources ``[n_resources]`` under the current probabilities (differentiable)."""
        p = self.probs(temperature)
        alpha = next((var.alpha for var in self.variables if var.alpha is not None), None)
        device = alpha.device if alpha is not None else torch.device("cpu")
        tables, overhead = self._device_tables(device, alpha.dtype if alpha is not None
                                               else torch.float32)
        total = overhead.clone()
        letters = string.ascii_lowercase
        for lt, table in zip(self.layers, tables):
            sub = "".join(letters[i] for i in range(len(lt.variables)))
            eq = f"{sub}z," + ",".join(letters[i] for i in range(len(lt.variables))) + "->z"
            total = total + torch.einsum(eq, table, *[p[v].to(device) for v in lt.variables])
        return total

    def argmax_choice(self) -> dict[int, int]:
        """The argmax index of every variable (one host transfer for all of them)."""
        alphas = [var.alpha for var in self.variables if var.alpha is not None]
        idx = iter(torch.stack([choice_argmax(a) for a in alphas]).tolist() if alphas else [])
        return {v: (next(idx) if var.alpha is not None else 0) for v, var in enumerate(self.variables)}

    def cost_at(self, choice: dict[int, int], upper: bool = False) -> Tensor:
        """Predicted resources of one discrete network (``choice``: variable -> value index)."""
        return self._layer_sum_at(choice, upper) + self.overhead

    def cheapest(self) -> dict[str, float]:
        """Minimum achievable value of each resource in the space (by the model's prediction)."""
        out = {}
        for i, r in enumerate(self.resources):
            choice = {v: 0 for v in range(len(self.variables))}  # smallest widths and bits
            best = float(self.cost_at(choice)[i])
            improved = True
            while improved:  # coordinate descent guards against a non-monotone surrogate
                improved = False
                for v, var in enumerate(self.variables):
                    for j in range(len(var.values)):
                        trial = dict(choice)
                        trial[v] = j
                        c = float(self.cost_at(trial)[i])
                        if c < best - 1e-9:
                            best, choice, improved = c, trial, True
            out[r] = best
        return out

    def choice_to_layers(self, choice: dict[int, int]) -> dict[str, dict[str, int]]:
        """Variable indices -> ``{layer: {kind: value}}`` for ``Supernet.derive``."""
        out: dict[str, dict[str, int]] = {}
        for v, var in enumerate(self.variables):
            for layer, kind in var.owners:
                out.setdefault(layer, {})[kind] = var.values[choice[v]]
        return out

    def layer_breakdown(self, choice: dict[int, int]) -> dict[str, dict[str, float]]:
        """Per-layer predicted resources of one discrete network."""
        return {lt.name: dict(zip(self.resources, lt.table[tuple(choice[v] for v in lt.variables)].tolist()))
                for lt in self.layers}

    def specs_at(self, choice: dict[int, int]) -> dict[str, LayerSpec]:
        idx = self._spec_indices(self._slices, choice)
        return {lt.name: self._specs[i] for lt, i in zip(self.layers, idx)
                if self._specs[i] is not _SKIPPED}

