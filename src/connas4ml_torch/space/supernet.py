"""``searchable(model, space)``: the user's module as a one-shot supernet; ``derive()`` the result."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from connas4ml_torch.errors import UnsupportedLayerError
from connas4ml_torch.kinds import (
    ARCH_PREFIX,
    ArchControl,
    Searchable,
    choice_argmax,
    kind_named,
    kind_of,
    require_kind,
    searchable_kind,
)
from connas4ml_torch.kinds.activation import SearchableAct
from connas4ml_torch.space.spec import INPUT, SearchSpace
from connas4ml_torch.space.trace import Graph

__all__ = ["Supernet", "searchable", "SAMPLING_MODES"]

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
# how the supernet weighs its choices in a forward pass (ArchControl.mode)
SAMPLING_MODES = ("softmax", "gumbel", "gumbel_hard", "reinforce", "auto", "argmax")


def _set_child(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, new)


def _is_container(mod: nn.Module) -> bool:
    """Containers and custom modules made only of other modules (no parameters of their own)."""
    return isinstance(mod, _CONTAINERS) or (
        not list(mod.parameters(recurse=False)) and not list(mod.buffers(recurse=False))
        and bool(list(mod.children())))


def _convert(model: nn.Module, space: SearchSpace, ctl: ArchControl) -> None:
    """Replace the modules of ``model`` in place by what their layer kind makes of them; refuse
    any module without a kind, naming it (the registry: connas4ml_torch.kinds). The blocks of
    ``space.skip`` are then wrapped by the ``Skip`` kind (their layers converted first)."""
    blocks = space.skip_blocks([n for n, _ in model.named_modules()])
    skip: list[str] = []
    replacements: list[tuple[str, nn.Module]] = []
    for name, mod in list(model.named_modules()):
        if any(name.startswith(p + ".") for p in skip):
            continue
        if not name:
            if not list(mod.children()):
                raise UnsupportedLayerError(
                    "searchable(): wrap the layer in an nn.Sequential or a module")
            own = list(mod.named_parameters(recurse=False))
            if own:
                raise UnsupportedLayerError(
                    f"searchable(): the model holds parameters of its own ({own[0][0]}); put "
                    "them in layers (nn.Linear, nn.Conv...)")
            continue
        # a kind first: a Brevitas QuantIdentity has no parameters of its own but is a layer
        k = kind_of(mod)
        if k is None and _is_container(mod):
            continue
        k = require_kind(name, mod, "searchable()")
        skip.append(name)  # a kind owns its module and everything inside it
        new = k.to_searchable(name, mod, space, ctl)
        if new is not None:
            replacements.append((name, new))
    skip_kind = kind_named("Skip")
    for name in blocks:
        owned = name in skip or any(name.startswith(o + ".") for o in skip)
        skip_kind.check_block(name, model.get_submodule(name), is_layer=owned)
    for name, new in replacements:  # only once every module was accepted: a refusal leaves
        _set_child(model, name, new)  # the user's model as it was
    for name in blocks:
        block = model.get_submodule(name)
        _set_child(model, name, skip_kind.to_searchable(name, block, space, ctl))


class Supernet(nn.Module):
    """The user's network with searchable quantized layers in place of the originals.

    ``net`` is the user's module (its layers replaced, names kept); ``input_quant`` quantizes
    the input. Architecture parameters are kept apart from weights: use
    :meth:`arch_parameters` for the architecture optimizer and :meth:`weight_parameters` for
    yours.
    """

    def __init__(self, model: nn.Module, space: SearchSpace, example_input: Tensor | None = None):
        super().__init__()
        self.space = space
        self.control = ArchControl()
        _convert(model, space, self.control)
        self.input_quant = SearchableAct(INPUT, self.control, space.act_bits_for(INPUT), relu=False)
        self.net = model
        self.graph: Graph | None = None
        if example_input is not None:
            self.analyse(example_input)
        else:  # quantizers analyse() may add are checked when it runs
            space.check_patterns(self._looked_up(potential=True))

    # ---- structure ---------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        if self.graph is None:
            self.analyse(x, lazy=True)
        return self._body(x)

    def _body(self, x: Tensor) -> Tensor:
        self.control.samples.clear()  # "reinforce": one fresh network per forward pass
        return self.net(self.input_quant(x))

    def _looked_up(self, potential: bool = False) -> dict[str, set[str]]:
        """Which module names each SearchSpace field was asked about (unmatched patterns are
        typos: SearchSpace.check_patterns refuses them). ``potential``: also the input
        quantizers ``analyse`` may add (before it ran)."""
        mods = self.searchable_modules()
        weights = {n for n, m in mods.items() if searchable_kind(m).role == "weight"}
        acts = {n for n, m in mods.items() if searchable_kind(m).role == "act"}
        if potential:
            acts |= {f"{n}.input_quant" for n in weights}
        return {"width": weights, "weight_bits": weights,
                "kernel": {n for n in weights if hasattr(mods[n], "kernel_size")},
                "act_bits": acts}

    def searchable_modules(self) -> dict[str, Searchable]:
        """Every searchable module by the user's name (the input quantizer is ``"input"``)."""
        mods = {INPUT: self.input_quant}
        mods.update({m.name: m for m in self.net.modules() if isinstance(m, Searchable)})
        return mods

    def skip_blocks(self) -> dict[str, list[str]]:
        """Every skippable block by the user's name: the searchable modules inside it."""
        return {m.name: m.inner_names() for m in self.net.modules()
                if isinstance(m, Searchable) and searchable_kind(m).role == "block"}

    def weight_layers(self) -> dict[str, Searchable]:
        """Searchable weight layers, in the order forward() calls them once analysed."""
        mods = {n: m for n, m in self.searchable_modules().items()
                if searchable_kind(m).role == "weight"}
        if self.graph is not None:
            return {n: mods[n] for n in self.graph.layers}
        return mods

    def analyse(self, example_input: Tensor, lazy: bool = False) -> Graph:
        """Trace the model: connectivity, shapes, ties, output layers; initialise thresholds
        (see :func:`connas4ml_torch.space.analysis.analyse`)."""
        from connas4ml_torch.space.analysis import analyse

        return analyse(self, example_input, lazy)

    # ---- parameters --------------------------------------------------------------------
    def named_arch_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        for n, p in self.named_parameters():
            if n.rsplit(".", 1)[-1].startswith(ARCH_PREFIX):
                yield n, p

    def arch_parameters(self) -> list[nn.Parameter]:
        """Architecture logits (one vector per searched choice)."""
        return [p for _, p in self.named_arch_parameters()]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Weights, biases and quantizer thresholds: what the user's optimizer trains."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    # ---- architecture state ---------------------------------------------------------------
    @property
    def temperature(self) -> float:
        return self.control.temperature

    def set_temperature(self, tau: float) -> None:
        """Softmax / Gumbel temperature; anneal it towards 0 to sharpen the choices."""
        if not tau > 0:
            raise ValueError(f"temperature must be > 0, got {tau}")
        self.control.temperature = float(tau)

    def set_sampling(self, mode: str) -> None:
        """``"auto"`` (the default: widths and skippable blocks sampled, the rest relaxed),
        ``"softmax"`` (all relaxed), ``"gumbel"`` / ``"gumbel_hard"`` / ``"reinforce"`` (sampled)
        or ``"argmax"``."""
        if mode not in SAMPLING_MODES:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLING_MODES)}, got {mode!r}")
        self.control.mode = mode

    def probabilities(self) -> dict[str, dict[str, Tensor]]:
        """Current choice probabilities (softmax at the current temperature) per layer and kind."""
        out: dict[str, dict[str, Tensor]] = {}
        for name, mod in self.searchable_modules().items():
            for kind, alpha in mod.arch().items():
                if alpha is not None:
                    p = torch.softmax(alpha.detach() / self.control.temperature, dim=0)
                    out.setdefault(name, {})[kind] = p
        return out

    def choices(self) -> dict[str, dict[str, int]]:
        """The argmax choice of every layer: ``{layer: {"width": 32, "weight_bits": 4, ...}}``."""
        out: dict[str, dict[str, int]] = {}
        for name, mod in self.searchable_modules().items():
            arch = mod.arch()
            for kind, values in mod.choice_values().items():
                alpha = arch.get(kind)
                idx = int(choice_argmax(alpha)) if alpha is not None else 0
                out.setdefault(name, {})[kind] = values[idx]
        return out

    def _indices(self, choices: dict[str, dict[str, int]]) -> dict[tuple[str, str], int]:
        mods = self.searchable_modules()
        full = self.choices()
        for layer, kinds in choices.items():
            if layer not in mods:
                raise ValueError(f"choices: unknown layer {layer!r}; layers: {sorted(mods)}")
            for kind, value in kinds.items():
                allowed = mods[layer].choice_values().get(kind)
                if allowed is None:
                    raise ValueError(f"choices: layer {layer!r} has no choice {kind!r}")
                if value not in allowed:
                    raise ValueError(f"choices: {layer}.{kind}={value} is not one of {list(allowed)}")
                full[layer][kind] = value
        idx = {}
        for layer, kinds in full.items():
            for kind, value in kinds.items():
                idx[(layer, kind)] = mods[layer].choice_values()[kind].index(value)
        # tied layers must agree
        for layer, mod in mods.items():
            if getattr(mod, "alpha_width", None) is not None:
                for other, om in mods.items():
                    if other != layer and getattr(om, "alpha_width", None) is mod.alpha_width and \
                            idx[(layer, "width")] != idx[(other, "width")]:
                        raise ValueError(f"choices: {layer} and {other} have tied widths but "
                                         f"were given {full[layer]['width']} and "
                                         f"{full[other]['width']}")
        return idx

    def widest_choices(self) -> dict[str, dict[str, int]]:
        """The largest value of every choice (widths, bit widths, kernels; blocks kept): the
        network the sandwich rule trains beside the sampled one (see ``SearchSettings.sandwich``)."""
        return {name: {kind: max(values) for kind, values in mod.choice_values().items()}
                for name, mod in self.searchable_modules().items()}

    @contextlib.contextmanager
    def fixed(self, choices: dict[str, dict[str, int]] | None = None):
        """Run the supernet as one discrete network (default: the argmax choices)."""
        old = self.control.fixed
        self.control.fixed = self._indices(choices or {})
        try:
            yield self
        finally:
            self.control.fixed = old

    # ---- derivation ----------------------------------------------------------------------
    def derive(self, choices: dict[str, dict[str, int]] | None = None) -> nn.Module:
        """The discrete network as a plain Brevitas model (argmax choices unless given)."""
        from connas4ml_torch.space.derive import derive_model

        if self.graph is None:
            raise RuntimeError("derive(): run the supernet once (or pass example_input to "
                               "searchable()) so its structure is known")
        full = self.choices()
        self._indices(choices or {})
        for layer, kinds in (choices or {}).items():
            full[layer].update(kinds)
        return derive_model(self, full)


def searchable(model: nn.Module, space: SearchSpace | dict[str, Any] | None = None,
               example_input: Tensor | None = None) -> Supernet:
    """Turn ``model`` (modified in place) into a :class:`Supernet` over ``space``.

    Pass ``example_input`` (a small batch) to analyse the structure and initialise activation
    ranges now; otherwise it happens on the first forward call. Under DDP pass it.
    """
    if space is None:
        space = SearchSpace()
    elif isinstance(space, dict):
        space = SearchSpace.from_dict(space)
    return Supernet(model, space, example_input)
