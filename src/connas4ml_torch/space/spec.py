"""``SearchSpace``: which choices each layer of the user's model gets, by module name.

Every field maps module names (``fnmatch`` globs allowed, first matching pattern wins) to a list of
candidates; a plain list applies to every layer. ``"input"`` names the input quantizer in
``act_bits``. A pattern that matches no module of the model is an error (a typo would otherwise
silently search nothing).

``skip`` is an operation choice rather than a list of candidates: each named block (a submodule
whose output has its input's shape, e.g. ``nn.Sequential(Linear, ReLU)``) is kept or replaced by
the identity. A depth choice is several skippable blocks in a row: the depth is how many of them
the search keeps (:func:`depth_choice`).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from connas4ml_torch import schema
from connas4ml_torch.errors import ConfigError

__all__ = ["SearchSpace", "Choices", "depth_choice"]

Choices = "list[int] | dict[str, list[int]]"
INPUT = "input"


def _norm_list(where: str, values: Any) -> tuple[int, ...]:
    if isinstance(values, int) and not isinstance(values, bool):
        values = [values]
    if not isinstance(values, (list, tuple)) or not values:
        raise ConfigError(f"SearchSpace: {where} must be a non-empty list of ints, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"SearchSpace: {where} has {v!r}; choices must be positive ints")
        out.append(int(v))
    if len(set(out)) != len(out):
        raise ConfigError(f"SearchSpace: {where} has repeated choices {values!r}")
    return tuple(sorted(out))


def _norm_map(name: str, value: Any) -> dict[str, tuple[int, ...]]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): _norm_list(f"{name}[{k!r}]", v) for k, v in value.items()}
    return {"*": _norm_list(name, value)}


@dataclass
class SearchSpace:
    """Candidate widths, bit widths and kernel sizes per layer.

    Args:
        width: output widths (neurons / filters) per layer; layers not named keep their width.
        weight_bits: weight bit widths (list for all layers, or per-layer dict); layers not
            named get 8 bits, or a Brevitas layer's own bit width.
        act_bits: activation bit widths of each quantizer, by module name: ReLUs and the other
            activations (Sigmoid, Tanh, LeakyReLU), average pools (their output is quantized),
            the input quantizer (``"input"``) and the input quantizer a weight layer gets when
            its input is a sum (``"<layer>.input_quant"``); default 8 bits, or a Brevitas
            quantizer's own.
        kernel: kernel sizes per conv layer (centre-cropped super-kernel; needs 'same' padding).
        bias_bits: bit width of the quantized biases (fixed, not searched).
        tie: groups of layer names whose widths must be equal (ties found from residual adds are
            added automatically).
        skip: blocks the search may replace by the identity (module names or globs; a glob
            selects the outermost matching modules, so ``"blocks.*"`` is every child of
            ``blocks``). A block's output must have its input's shape and sit on a quantizer's
            grid, and the widths entering and leaving it must not be searched.
    """

    width: dict[str, list[int]] = field(default_factory=dict)
    weight_bits: Any = None
    act_bits: Any = None
    kernel: dict[str, list[int]] = field(default_factory=dict)
    bias_bits: int = 8
    tie: list[list[str]] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.width, dict):
            raise ConfigError("SearchSpace: width must be a dict {layer name or glob: [widths]}")
        if not isinstance(self.kernel, dict):
            raise ConfigError("SearchSpace: kernel must be a dict {layer name or glob: [sizes]}")
        self._width = _norm_map("width", self.width)
        self._wbits = _norm_map("weight_bits", self.weight_bits)
        self._abits = _norm_map("act_bits", self.act_bits)
        self._kernel = _norm_map("kernel", self.kernel)
        for k, ks in self._kernel.items():
            if any(s % 2 == 0 for s in ks):
                raise ConfigError(f"SearchSpace: kernel[{k!r}]={list(ks)}: sizes must be odd")
        if isinstance(self.bias_bits, bool) or not isinstance(self.bias_bits, int) or self.bias_bits < 2:
            raise ConfigError(f"SearchSpace: bias_bits must be an int >= 2, got {self.bias_bits!r}")
        for b in {b for m in (self._wbits, self._abits) for v in m.values() for b in v}:
            if b < 2 or b > 16:
                raise ConfigError(f"SearchSpace: bit width {b} outside the supported 2..16")
        self.tie = [list(g) for g in self.tie]
        if isinstance(self.skip, str) or not isinstance(self.skip, (list, tuple)) or any(
                not isinstance(p, str) or not p for p in self.skip):
            raise ConfigError(f"SearchSpace: skip must be a list of block names or globs "
                              f"(e.g. ['blocks.*']), got {self.skip!r}")
        self.skip = list(dict.fromkeys(self.skip))

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> SearchSpace:
        """Build from a YAML/JSON mapping; unknown keys name the closest valid one."""
        return schema.from_dict(cls, d, "space")

    # ---- lookups ---------------------------------------------------------------------------
    @staticmethod
    def _lookup(table: dict[str, tuple[int, ...]], name: str):
        for pattern, values in table.items():
            if fnmatch.fnmatchcase(name, pattern):
                return values
        return None

    def widths_for(self, name: str, default: int) -> tuple[int, ...]:
        found = self._lookup(self._width, name)
        if found is None:
            return (default,)
        if max(found) > default:
            raise ConfigError(
                f"SearchSpace: width choices {list(found)} for {name!r} exceed the module's "
                f"{default} outputs; make the module at least as wide as the widest choice"
            )
        return found

    def weight_bits_for(self, name: str, default: tuple[int, ...] = (8,)) -> tuple[int, ...]:
        """Weight bit choices of layer ``name``; ``default`` when the space does not name it."""
        return self._lookup(self._wbits, name) or tuple(default)

    def act_bits_for(self, name: str, default: tuple[int, ...] = (8,)) -> tuple[int, ...]:
        """Activation bit choices of quantizer ``name``; ``default`` when not named."""
        return self._lookup(self._abits, name) or tuple(default)

    def kernels_for(self, name: str, default: int) -> tuple[int, ...]:
        found = self._lookup(self._kernel, name)
        if found is None:
            return (default,)
        if max(found) > default:
            raise ConfigError(
                f"SearchSpace: kernel choices {list(found)} for {name!r} exceed the module's "
                f"kernel {default}; build the module with the largest kernel"
            )
        return found

    def skip_blocks(self, names: list[str]) -> list[str]:
        """The skippable blocks among module ``names``: the outermost module matched by each
        ``skip`` pattern; a pattern matching nothing, or only modules inside another skippable
        block, is refused naming it (nested skippable blocks are not supported)."""
        matched = {p: [n for n in names if n and fnmatch.fnmatchcase(n, p)] for p in self.skip}
        every = {n for ns in matched.values() for n in ns}
        outer = {n for n in every if not any(n.startswith(o + ".") for o in every)}
        for p, ns in matched.items():
            if not ns:
                raise ConfigError(f"SearchSpace: skip[{p!r}] matches no module of the model; "
                                  "check the module names (print(model) shows them)")
            if not set(ns) & outer:
                raise ConfigError(f"SearchSpace: skip[{p!r}] names {ns[0]!r}, inside another "
                                  "skippable block; nested skippable blocks are not supported")
        return [n for n in names if n in outer]

    def check_patterns(self, names: dict[str, set[str]]) -> None:
        """Raise if a per-layer pattern matches none of the module names it applies to
        (``names``: field -> the names the supernet looked up for that field)."""
        for field_name, table in (("width", self._width), ("weight_bits", self._wbits),
                                  ("act_bits", self._abits), ("kernel", self._kernel)):
            for pattern in table:
                if pattern != "*" and not any(fnmatch.fnmatchcase(n, pattern)
                                              for n in names.get(field_name, ())):
                    raise ConfigError(
                        f"SearchSpace: {field_name}[{pattern!r}] matches no searchable module "
                        "of the model; check the module names (print(model) shows them)"
                    )

    def to_dict(self) -> dict[str, Any]:
        def plain(m: dict[str, tuple[int, ...]]):
            return {k: list(v) for k, v in m.items()}

        return {"width": plain(self._width), "weight_bits": plain(self._wbits),
                "act_bits": plain(self._abits), "kernel": plain(self._kernel),
                "bias_bits": self.bias_bits, "tie": self.tie, "skip": list(self.skip)}


def depth_choice(container: str, n: int, start: int = 0) -> list[str]:
    """``skip`` entries for a depth choice: children ``start .. start+n-1`` of ``container``
    (an ``nn.Sequential`` of equal-shape blocks), so the search keeps 0..n of them."""
    if n < 1 or start < 0:
        raise ConfigError(f"depth_choice: need n >= 1 and start >= 0, got n={n}, start={start}")
    return [f"{container}.{i}" for i in range(start, start + n)]
