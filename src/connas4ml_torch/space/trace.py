"""Find how the searchable layers of a model connect by running it once on an example input.

A ``TorchFunctionMode`` follows every torch operation of the user's ``forward`` (custom code,
Python control flow and all) and tracks, for each tensor, which searchable layer's output
channels it carries and which quantizer last put it on a fixed-point grid. From that we learn,
for each weight layer: whose widths set its input channels (and how many features per channel a
flatten produced), which quantizer feeds it, its spatial sizes; where outputs meet (residual adds,
which tie widths) and which layers produce the model output (their width cannot change).
torch.fx would stop at data-dependent control flow; a run-time trace does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

__all__ = ["Prov", "LayerNode", "ActNode", "Graph", "trace_graph"]

# layout ops after which a tensor is still on the grid of the quantizer that produced it; the
# layer kinds add theirs (kinds.LayerKind.grid_ops: pooling, flatten, relu, dropout ...)
_LAYOUT_OPS = {"view", "reshape", "contiguous", "clone", "squeeze", "unsqueeze", "__getitem__",
               "detach"}


def _grid_keeping() -> set[str]:
    from connas4ml_torch.kinds import kinds

    return _LAYOUT_OPS | {op for k in kinds() for op in k.grid_ops}


@dataclass(frozen=True)
class Prov:
    """Where a tensor's channels come from: ``producer`` None means the model input."""

    producer: str | None
    quant: str | None = None
    block: int = 1          # features per channel after a flatten (channel-major)
    opaque: str | None = None  # why the channel layout was lost, if it was
    off_grid: str | None = None  # the op that took the tensor off its quantizer's grid


@dataclass
class LayerNode:
    """One searchable weight layer, as seen in the trace."""

    name: str
    kind: str               # Dense | Conv1D | Conv2D
    producer: str | None    # searchable layer whose widths are this layer's input channels
    block: int              # input features per producer channel (Dense after flatten)
    in_quant: str | None    # activation quantizer that feeds it
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    is_output: bool = False
    opaque: str | None = None  # an op between producer and this layer the trace cannot follow
    off_grid: str | None = None  # the op between quantizer and this layer that left the grid


@dataclass
class ActNode:
    name: str
    producer: str | None
    shape: tuple[int, ...]


@dataclass
class Graph:
    layers: dict[str, LayerNode] = field(default_factory=dict)
    acts: dict[str, ActNode] = field(default_factory=dict)
    ties: list[set[str | None]] = field(default_factory=list)
    concat: list[tuple[str, tuple[str | None, ...]]] = field(default_factory=list)
    output_producers: set[str | None] = field(default_factory=set)
    input_shape: tuple[int, ...] = ()


def _opname(func) -> str:
    name = getattr(func, "__name__", str(func))
    return name.rstrip("_") if name.endswith("_") and not name.startswith("__") else name


class _Tracer(TorchFunctionMode):
    def __init__(self, graph: Graph):
        super().__init__()
        self.graph = graph
        self.prov: dict[int, Prov] = {}
        self.keep: list[Tensor] = []  # keep traced tensors alive so ids are not reused
        self.depth = 0
        self.grid_ops = _grid_keeping()

    def set(self, t: Tensor, p: Prov) -> None:
        self.prov[id(t)] = p
        self.keep.append(t)

    def get(self, t) -> Prov | None:
        return self.prov.get(id(t)) if isinstance(t, Tensor) else None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.depth:
            return out
        flat_in, _ = tree_flatten((args, kwargs))
        ins = [(t, p) for t in flat_in if (p := self.get(t)) is not None]
        if not ins:
            return out
        outs = [t for t in tree_flatten(out)[0] if isinstance(t, Tensor)]
        if not outs:
            return out
        name = _opname(func)
        producers = tuple(dict.fromkeys(p.producer for _, p in ins))
        if name in ("cat", "stack", "concat", "concatenate") and len(ins) > 1:
            self.graph.concat.append((name, producers))
            p = Prov(producers[0], None, 1, f"{name} of {producers}")
            for o in outs:
                self.set(o, p)
            return out
        if len(producers) > 1:  # outputs meet (add, mul...): their widths must be equal
            self.graph.ties.append(set(producers))
        t_in, p_in = ins[0]
        keeps = name in self.grid_ops and len(ins) == 1
        quant = p_in.quant if keeps else None
        off = p_in.off_grid if keeps else (p_in.off_grid or f"the op {name!r} leaves the grid")
        for o in outs:
            self.set(o, replace(self._layout(t_in, o, p_in, quant, name), off_grid=off))
        return out

    @staticmethod
    def _layout(t_in: Tensor, o: Tensor, p: Prov, quant, name: str) -> Prov:
        si, so = tuple(t_in.shape), tuple(o.shape)
        if p.opaque:
            return Prov(p.producer, quant, p.block, p.opaque)
        if len(si) < 2 or len(so) < 2 or si[0] != so[0]:
            return Prov(p.producer, quant, p.block, f"{name} changed the batch layout {si}->{so}")
        if si[1:] == so[1:] or (len(si) == len(so) and si[1] == so[1]):
            return Prov(p.producer, quant, p.block)
        if len(so) == 2 and so[1] == math.prod(si[1:]):  # flatten, channel-major
            return Prov(p.producer, quant, p.block * math.prod(si[2:]))
        return Prov(p.producer, quant, p.block, f"{name} reshaped {si}->{so}")


def trace_graph(supernet: nn.Module, example_input: Tensor, forward=None) -> Graph:
    """Run ``forward`` (default ``supernet``) once on ``example_input``; return the layer graph."""
    from connas4ml_torch.kinds import Searchable, searchable_kind

    graph = Graph(input_shape=tuple(example_input.shape))
    tracer = _Tracer(graph)
    handles = []

    def pre_hook(mod, args):
        if tracer.depth == 0:
            x = args[0]
            p = tracer.get(x) or Prov(None, None, 1, "the input of this layer was not traced")
            mod._trace_in = (p, tuple(x.shape))
        tracer.depth += 1

    def post_hook(mod, args, out):
        tracer.depth -= 1
        if tracer.depth:
            return
        p, shape = mod._trace_in
        del mod._trace_in
        if searchable_kind(mod).role == "act":
            graph.acts.setdefault(mod.name, ActNode(mod.name, p.producer, shape))
            tracer.set(out, Prov(p.producer, mod.name, p.block, p.opaque))
        else:
            if mod.name in graph.layers:
                raise ValueError(
                    f"module {mod.name!r} is called more than once in forward(); a searchable "
                    "layer must be used once (shared weights cannot have two widths)"
                )
            graph.layers[mod.name] = LayerNode(
                mod.name, mod.kind, p.producer, p.block, p.quant, shape, tuple(out.shape),
                opaque=p.opaque, off_grid=p.off_grid,
            )
            tracer.set(out, Prov(mod.name, None, 1,
                                 off_grid=f"{mod.name}'s output is its unquantized accumulator"))

    for m in supernet.modules():
        if isinstance(m, Searchable):
            handles.append(m.register_forward_pre_hook(pre_hook))
            handles.append(m.register_forward_hook(post_hook))
    x = example_input.detach().clone()
    was_training = supernet.training
    try:
        with torch.no_grad(), tracer:
            tracer.set(x, Prov(None, None, 1))
            out = (forward or supernet)(x)
    finally:
        for h in handles:
            h.remove()
        supernet.train(was_training)
    for o in tree_flatten(out)[0]:
        p = tracer.get(o)
        if p is not None:
            graph.output_producers.add(p.producer)
    for name in graph.output_producers:
        if name in graph.layers:
            graph.layers[name].is_output = True
    return graph
