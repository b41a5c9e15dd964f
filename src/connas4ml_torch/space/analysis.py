"""What the trace of a supernet's ``forward`` says, and what follows from it.

:func:`analyse` traces the model once (``space.trace``), completes what the trace shows (a
BatchNorm is folded into the weight layer it follows, a weight layer whose input is exact but off
the grid gets a searchable input quantizer, an op-then-quantizer module gets an unsigned grid when
its input is never negative), traces again when something changed, lets every layer kind check
its traced shapes, refuses what hls4ml cannot reproduce exactly (naming the op), and ties the
widths of layers whose outputs meet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from connas4ml_torch.errors import UnsupportedLayerError
from connas4ml_torch.kinds import Searchable, kind_of, searchable_kind
from connas4ml_torch.kinds import kinds as registered_kinds
from connas4ml_torch.kinds.activation import SearchableAct
from connas4ml_torch.kinds.batchnorm import SearchableBatchNorm
from connas4ml_torch.kinds.skip import KEEP
from connas4ml_torch.quant import log2_threshold_for
from connas4ml_torch.space.spec import INPUT
from connas4ml_torch.space.trace import Graph, trace_graph

if TYPE_CHECKING:
    from connas4ml_torch.space.supernet import Supernet

__all__ = ["analyse"]


@torch.no_grad()
def analyse(sn: Supernet, example_input: Tensor, lazy: bool = False) -> Graph:
    """Trace the model: connectivity, shapes, ties, output layers; initialise thresholds.

    What the trace shows is completed once, then traced again: a BatchNorm is folded into
    the weight layer it directly follows, a weight layer whose input is exact but off the
    grid (a residual sum) gets a searchable input quantizer (``<layer>.input_quant``), an
    operation-then-quantizer module (average pooling) gets an unsigned grid when its input
    is never negative. Anything hls4ml cannot reproduce exactly (``torch.tanh`` in
    ``forward()``) is refused naming the op. BatchNorm running statistics are left as
    they were (the traces are not training steps).
    """
    saved = [(b, {k: v.clone() for k, v in b.bn.state_dict().items()})
             for b in sn.net.modules() if isinstance(b, SearchableBatchNorm)]
    fixed = sn.control.fixed
    # skippable blocks are traced on their keep path: their layers are what the trace is about
    sn.control.fixed = {**fixed, **{(b, KEEP): 1 for b in sn.skip_blocks()}}
    try:
        graph = trace_graph(sn, example_input, sn._body)
        if _complete(sn, graph):
            graph = trace_graph(sn, example_input, sn._body)
    finally:
        sn.control.fixed = fixed
        for b, state in saved:
            b.bn.load_state_dict(state)
    mods = sn.searchable_modules()
    for name, node in list(graph.layers.items()) + list(graph.acts.items()):
        searchable_kind(mods[name]).check_traced(name, mods[name], node)
    for name, node in graph.passives.items():  # kept modules: their kind may refuse shapes
        module = sn.net.get_submodule(name)
        kind_of(module).check_traced(name, module, node)
    _check_blocks(sn, graph, mods)
    for node in graph.layers.values():
        if node.opaque and len(mods_widths(mods, node.producer)) > 1:
            raise ValueError(
                f"{node.name}: its input channels come from {node.producer} through an "
                f"operation the search cannot follow ({node.opaque}); use nn.Flatten / "
                f"x.flatten(1), or keep the width of {node.producer} fixed"
            )
        if node.in_quant is None:  # _complete gave it a quantizer unless inexact
            raise _inexact(node.name, node.in_inexact or node.off_grid or "an unknown op")
        if node.is_output and len(mods[node.name].widths) > 1:
            raise ValueError(f"{node.name} produces the model output: its width cannot be "
                             "searched; remove it from SearchSpace.width")
    for _name, producers in graph.concat:
        searched = [p for p in producers if p and len(mods[p].widths) > 1]
        if searched:
            raise ValueError(f"outputs of {', '.join(searched)} are concatenated; width "
                             "search across a concatenation is not supported: fix their widths")
    groups = [set(g) for g in graph.ties] + [set(g) for g in sn.space.tie]
    for group in groups:
        _tie(group, mods, lazy)
    sn.graph = graph
    sn.space.check_patterns(sn._looked_up())
    return graph

def _check_blocks(sn: Supernet, graph: Graph, mods: dict[str, Searchable]) -> None:
    """Refuse a skippable block the identity cannot replace: its kind checks shapes and grids;
    here, the widths entering and leaving it (a searched width would differ between paths)."""
    for name in sn.skip_blocks():
        node = graph.blocks.get(name)
        if node is None:
            raise UnsupportedLayerError(f"searchable(): skippable block {name!r} is never "
                                        "called in forward(); remove it from SearchSpace.skip")
        searchable_kind(mods[name]).check_traced(name, mods[name], node)
        for side, producer in (("enters", node.in_producer), ("leaves", node.out_producer)):
            if len(mods_widths(mods, producer)) > 1:
                raise UnsupportedLayerError(
                    f"searchable(): the width that {side} skippable block {name!r} is searched "
                    f"(layer {producer!r}), so keeping and skipping the block would give "
                    f"different widths. Fix: remove {producer!r} from SearchSpace.width (widths "
                    "inside the block may be searched)")


def _complete(sn: Supernet, graph: Graph) -> bool:
    """Fold BatchNorms, add input quantizers, set op quantizers' signs; whether anything
    changed (the model is then traced again)."""
    mods = sn.searchable_modules()
    changed = False
    for name, node in graph.folds.items():
        bn = mods[name]
        if node.src not in graph.layers:
            node.src = None
        searchable_kind(bn).check_traced(name, bn, node)
        if bn.folded_into is None:
            layer = mods[node.src]
            if layer.bn is not None:
                raise UnsupportedLayerError(
                    f"searchable(): BatchNorms {layer.bn.name!r} and {name!r} both follow "
                    f"{node.src!r}; only one can be folded into it")
            _link_batchnorm(layer, bn)
            changed = True
    for name, node in graph.acts.items():
        m = mods[name]
        if name != INPUT and node.in_inexact:
            raise _inexact(name, node.in_inexact)
        if getattr(m, "auto_sign", False) and m.signed == node.in_nonneg:
            m.set_signed(not node.in_nonneg)  # an average of ReLU outputs: unsigned grid
            changed = True
    for name, node in graph.layers.items():
        m = mods[name]
        if node.in_quant is not None or node.in_inexact or m.input_quant is not None:
            continue  # on a grid; or refused by analyse, naming the op
        qname = f"{name}.input_quant"
        m.attach_input_quant(SearchableAct(qname, sn.control, sn.space.act_bits_for(qname),
                                           relu=node.in_nonneg))
        changed = True
    if graph.output_inexact:
        raise _inexact("the model output", graph.output_inexact)
    return changed

def _tie(group: set, mods: dict[str, Searchable], lazy: bool) -> None:
    names = sorted(n for n in group if n is not None)
    for n in names:
        if n not in mods or searchable_kind(mods[n]).role != "weight":
            raise ValueError(f"tie: {n!r} is not a searchable weight layer")
    searched = [n for n in names if len(mods[n].widths) > 1]
    if not searched:
        return
    if None in group:
        raise ValueError(f"{', '.join(searched)} meet the model input (residual add): "
                         "their width cannot be searched")
    widths = {mods[n].widths for n in names}
    if len(widths) > 1:
        raise ValueError(f"layers {', '.join(names)} meet in an add: their outputs must have "
                         f"equal widths, but their width choices differ: "
                         + "; ".join(f"{n}={list(mods[n].widths)}" for n in names))
    owner = mods[names[0]]
    for n in names[1:]:
        if mods[n].alpha_width is owner.alpha_width:
            continue
        if lazy:
            raise ValueError(f"layers {', '.join(names)} must share a width choice; pass "
                             "example_input to searchable() so they are tied before training")
        mods[n].alpha_width = owner.alpha_width


def _exact_modules() -> str:
    names = []
    for k in registered_kinds():
        if k.role in ("act", "fold", "passive") and k.torch_types:
            names += [f"nn.{t.__name__}" for t in k.torch_types]
    return ", ".join(dict.fromkeys(names))


def _inexact(where: str, reason: str) -> UnsupportedLayerError:
    """The error for an op hls4ml cannot reproduce exactly: it names the op first (a kind may
    give its own explanation after `` -- ``)."""
    op, _, why = reason.partition(" -- ")
    if why:
        return UnsupportedLayerError(f"{op} (feeding {where!r}) cannot be exported: {why}")
    return UnsupportedLayerError(
        f"{reason} (feeding {where!r}) has no bit-exact hls4ml counterpart: the FPGA would "
        "compute something else (a lookup table, a default precision). Fix: use a module the "
        f"search implements exactly ({_exact_modules()}) instead of the functional op, or apply "
        "it outside the exported network")


@torch.no_grad()
def _link_batchnorm(layer: Searchable, bn: SearchableBatchNorm) -> None:
    """Fold ``bn`` into ``layer`` from now on; thresholds cover the folded weights and bias under
    the statistics of the traced batch."""
    from connas4ml_torch.kinds._weights import fold_factors

    layer.fold(bn)
    bn.folded_into = layer.name
    seen = getattr(bn, "seen", None)
    scale, mean = fold_factors(bn.bn, *seen) if seen is not None else fold_factors(bn.bn)
    layer._fold_now = (scale, mean)
    w, b = layer.effective_weight(), layer.effective_bias()
    layer._fold_now = None
    layer.weight_log2_threshold.fill_(log2_threshold_for(float(w.abs().max())))
    layer.bias_log2_threshold.fill_(log2_threshold_for(float(b.abs().max())))


def mods_widths(mods: dict[str, Searchable], name: str) -> tuple[int, ...]:
    m = mods.get(name)
    return getattr(m, "widths", ()) if m is not None else ()
