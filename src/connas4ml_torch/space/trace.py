"""Find how the searchable layers of a model connect by running it once on an example input.

A ``TorchFunctionMode`` follows every torch operation of the user's ``forward`` (custom code,
Python control flow and all) and tracks, for each tensor, which searchable layer's output
channels it carries, which quantizer last put it on a fixed-point grid, whether hls4ml can
compute it exactly (accumulators, sums of exact tensors, max pooling, reshapes: yes; a
``torch.tanh`` in ``forward()``: no, and the first such op is named) and whether it is
non-negative. From that we learn, for each weight layer: whose widths set its input channels
(and how many features per channel a flatten produced), which quantizer feeds it (or that it
needs one: its input is exact but off the grid), its spatial sizes; where outputs meet (residual
adds, which tie widths), which module a BatchNorm directly follows, and which layers produce the
model output (their width cannot change). torch.fx would stop at data-dependent control flow; a
run-time trace does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

__all__ = ["Prov", "LayerNode", "ActNode", "FoldNode", "BlockNode", "Graph", "trace_graph",
           "grid_keeping_ops", "op_name"]

# layout ops after which a tensor is still on the grid of the quantizer that produced it; the
# layer kinds add theirs (kinds.LayerKind.grid_ops: pooling, flatten, relu, dropout ...)
_LAYOUT_OPS = {"view", "reshape", "contiguous", "clone", "squeeze", "unsqueeze", "__getitem__",
               "detach"}


def grid_keeping_ops() -> set[str]:
    """Names of the torch functions after which a tensor is still on its quantizer's grid."""
    from connas4ml_torch.kinds import kinds

    return _LAYOUT_OPS | {op for k in kinds() for op in k.grid_ops}


def _exact_ops() -> dict[str, object]:
    from connas4ml_torch.kinds import kinds

    return {op: k for k in kinds() for op in k.exact_ops}


# ops after which a tensor is non-negative whatever its input; ops that may make it negative
_NONNEG_OPS = {"relu"}
_SIGNED_OPS = {"sub", "__sub__", "__rsub__", "rsub", "neg", "__neg__"}


@dataclass(frozen=True)
class Prov:
    """Where a tensor's channels come from: ``producer`` None means the model input."""

    producer: str | None
    quant: str | None = None
    block: int = 1          # features per channel after a flatten (channel-major)
    opaque: str | None = None  # why the channel layout was lost, if it was
    off_grid: str | None = None  # the op that took the tensor off its quantizer's grid
    inexact: str | None = None  # the first op hls4ml cannot reproduce exactly (None: exact)
    nonneg: bool = False    # every value >= 0 (a ReLU grid, a sum or pool of such values)
    src: str | None = None  # the searchable module whose output this tensor is (no op since)


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
    in_inexact: str | None = None  # the op before it hls4ml cannot reproduce (None: exact input)
    in_nonneg: bool = False   # its input is never negative


@dataclass
class ActNode:
    """A searchable quantizer (ReLU, input, auto-inserted, or an op then a quantizer)."""

    name: str
    producer: str | None
    shape: tuple[int, ...]    # of its input
    out_shape: tuple[int, ...] = ()
    in_inexact: str | None = None
    in_nonneg: bool = False
    # the quantizer whose grid its input is on (kept modules: a max pool's input and result
    # bits, docs/layer_kinds.md section 4); None for searchable quantizers and off-grid inputs
    in_quant: str | None = None


@dataclass
class FoldNode:
    """A module folded into the weight layer before it (BatchNorm): ``src`` is the searchable
    module whose output it takes directly (``None``: some op in between)."""

    name: str
    producer: str | None
    src: str | None
    shape: tuple[int, ...]


@dataclass
class BlockNode:
    """A skippable block (kinds/skip.py), traced on its keep path: where its input and output
    come from and whether both are on a quantizer's grid."""

    name: str
    in_producer: str | None
    out_producer: str | None
    in_quant: str | None
    out_quant: str | None
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    in_off_grid: str | None = None
    out_off_grid: str | None = None


@dataclass
class Graph:
    layers: dict[str, LayerNode] = field(default_factory=dict)
    acts: dict[str, ActNode] = field(default_factory=dict)
    folds: dict[str, FoldNode] = field(default_factory=dict)
    ties: list[set[str | None]] = field(default_factory=list)
    concat: list[tuple[str, tuple[str | None, ...]]] = field(default_factory=list)
    output_producers: set[str | None] = field(default_factory=set)
    output_inexact: str | None = None  # the op that makes the model output inexact, if any
    input_shape: tuple[int, ...] = ()
    passives: dict[str, ActNode] = field(default_factory=dict)  # kept modules (pools, flatten)
    blocks: dict[str, BlockNode] = field(default_factory=dict)  # skippable blocks


def op_name(func) -> str:
    """The name a torch function is known by in ``grid_ops`` (in-place ``relu_`` -> ``relu``)."""
    name = getattr(func, "__name__", str(func))
    return name.rstrip("_") if name.endswith("_") and not name.startswith("__") else name


class _Tracer(TorchFunctionMode):
    def __init__(self, graph: Graph):
        super().__init__()
        self.graph = graph
        self.prov: dict[int, Prov] = {}
        self.keep: list[Tensor] = []  # keep traced tensors alive so ids are not reused
        self.depth = 0
        self.grid_ops = grid_keeping_ops()
        self.exact_ops = _exact_ops()

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
        name = op_name(func)
        producers = tuple(dict.fromkeys(p.producer for _, p in ins))
        inexact = next((p.inexact for _, p in ins if p.inexact), None)
        nonneg = all(p.nonneg for _, p in ins)
        if name in ("cat", "stack", "concat", "concatenate") and len(ins) > 1:
            self.graph.concat.append((name, producers))
            p = Prov(producers[0], None, 1, f"{name} of {producers}",
                     off_grid=f"the op {name!r} (concatenation)",
                     inexact=inexact or f"the op {name!r} (concatenation)", nonneg=nonneg)
            for o in outs:
                self.set(o, p)
            return out
        if len(producers) > 1:  # outputs meet (add, mul...): their widths must be equal
            self.graph.ties.append(set(producers))
        t_in, p_in = ins[0]
        keeps = name in self.grid_ops and len(ins) == 1
        quant = p_in.quant if keeps else None
        off = p_in.off_grid if keeps else (p_in.off_grid or f"the op {name!r} leaves the grid")
        if keeps:
            nonneg = nonneg or name in _NONNEG_OPS
        elif name in self.exact_ops and len(ins) == len(flat_in) and not inexact:
            # every operand a traced tensor: hls4ml adds them exactly (a wide enough result)
            nonneg = nonneg and name not in _SIGNED_OPS
            inexact = self.exact_ops[name].exact_op_problem(name, [tuple(t.shape) for t, _ in ins])
        else:
            inexact = inexact or (f"the op {name!r} with a constant in forward()"
                                  if name in self.exact_ops else f"the op {name!r} in forward()")
            nonneg = False
        for o in outs:
            self.set(o, replace(self._layout(t_in, o, p_in, quant, name), off_grid=off,
                                inexact=inexact, nonneg=nonneg))
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
    from connas4ml_torch.kinds import Searchable, kind_of, searchable_kind

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
        role = searchable_kind(mod).role
        if role == "act":
            graph.acts.setdefault(mod.name, ActNode(mod.name, p.producer, shape, tuple(out.shape),
                                                    p.inexact, p.nonneg))
            tracer.set(out, Prov(p.producer, mod.name, p.block, p.opaque,
                                 nonneg=not getattr(mod, "signed", True), src=mod.name))
        elif role == "fold":
            graph.folds.setdefault(mod.name, FoldNode(mod.name, p.producer, p.src, shape))
            tracer.set(out, replace(p, src=mod.name))
        else:
            if mod.name in graph.layers:
                raise ValueError(
                    f"module {mod.name!r} is called more than once in forward(); a searchable "
                    "layer must be used once (shared weights cannot have two widths)"
                )
            graph.layers[mod.name] = LayerNode(
                mod.name, mod.kind, p.producer, p.block, p.quant, shape, tuple(out.shape),
                opaque=p.opaque, off_grid=p.off_grid, in_inexact=p.inexact, in_nonneg=p.nonneg,
            )
            tracer.set(out, Prov(mod.name, None, 1,
                                 off_grid=f"{mod.name}'s output is its unquantized accumulator",
                                 src=mod.name))

    def passive_hooks(name: str):
        def pre(mod, args):
            if tracer.depth == 0 and args and isinstance(args[0], Tensor):
                p = tracer.get(args[0]) or Prov(None)
                mod._trace_passive = (p, tuple(args[0].shape))

        def post(mod, args, out):
            got = mod.__dict__.pop("_trace_passive", None)
            if got is not None and isinstance(out, Tensor):
                p, shape = got
                graph.passives.setdefault(name, ActNode(name, p.producer, shape, tuple(out.shape),
                                                        p.inexact, p.nonneg, in_quant=p.quant))
        return pre, post

    def block_hooks():
        def pre(mod, args):
            if tracer.depth == 0:
                p = tracer.get(args[0]) or Prov(None, off_grid="an untraced tensor")
                mod._trace_block = (p, tuple(args[0].shape))

        def post(mod, args, out):
            got = mod.__dict__.pop("_trace_block", None)
            if got is not None:
                p, shape = got
                q = tracer.get(out) or Prov(None, off_grid="an untraced tensor")
                graph.blocks.setdefault(mod.name, BlockNode(
                    mod.name, p.producer, q.producer, p.quant, q.quant, shape, tuple(out.shape),
                    p.off_grid if p.quant is None else None,
                    q.off_grid if q.quant is None else None))
        return pre, post

    for m in supernet.modules():
        if isinstance(m, Searchable) and searchable_kind(m).role == "block":
            pre, post = block_hooks()  # not a layer: the layers inside it are traced
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post))
        elif isinstance(m, Searchable):
            handles.append(m.register_forward_pre_hook(pre_hook))
            handles.append(m.register_forward_hook(post_hook))
    # modules kept as they are (their kind may check the traced shapes: an adaptive pool)
    root = getattr(supernet, "net", supernet)
    for name, m in root.named_modules():
        k = None if isinstance(m, Searchable) or not name else kind_of(m)
        if k is not None and k.role == "passive":
            pre, post = passive_hooks(name)
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post))
    x = example_input.detach().clone()
    was_training = supernet.training
    try:
        with torch.no_grad(), tracer:
            tracer.set(x, Prov(None, None, 1, off_grid="the network input",
                               inexact="the unquantized network input"))
            out = (forward or supernet)(x)
    finally:
        for h in handles:
            h.remove()
        supernet.train(was_training)
    for o in tree_flatten(out)[0]:
        p = tracer.get(o)
        if p is not None:
            graph.output_producers.add(p.producer)
            graph.output_inexact = graph.output_inexact or p.inexact
    for name in graph.output_producers:
        if name in graph.layers:
            graph.layers[name].is_output = True
    return graph
