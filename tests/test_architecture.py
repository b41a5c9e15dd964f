"""The house rules, read off the source with ``ast`` (docs/design.md, "Rooms and floors").

* Packages import only from their own floor's package or from floors below; the package
  graph has no cycle.
* Layer classes (``nn.Linear``, ``QuantConv2d`` ...) are named in code only inside the layer-kind
  registry (``connas4ml_torch/kinds``) and the reference models (``models.py``).
* A source file over 400 lines says why in its docstring.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "connas4ml_torch"

# the documented floors, bottom to top (docs/design.md)
FLOORS: dict[str, int] = {
    "errors": 0,
    "schema": 1, "quant": 1, "training": 1, "plots": 1, "models": 1, "datasets": 1, "configs": 1,
    "hardware": 2,
    "kinds": 3,
    "space": 4,
    "search": 5, "export": 5,
    "synth": 6,
    "run": 7,
    "cli": 8, "demo": 8,
}
LAYER_CLASSES = {"Linear", "Conv1d", "Conv2d", "Conv3d", "ReLU", "MaxPool1d", "MaxPool2d",
                 "BatchNorm1d", "BatchNorm2d", "QuantLinear", "QuantConv1d", "QuantConv2d",
                 "QuantReLU", "QuantIdentity"}


def _unit(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    """Every connas4ml_torch module this file imports (module level or inside functions)."""
    tree = ast.parse(path.read_text())
    pkg = ".".join(("connas4ml_torch", *path.relative_to(SRC).with_suffix("").parts[:-1]))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("connas4ml_torch")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            if mod.startswith("connas4ml_torch"):
                out.add(mod)
                out |= {f"{mod}.{a.name}" for a in node.names}  # "from pkg import submodule"
    return out


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.name != "__init__.py" or p.parent != SRC)


def _unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in _sources():
        unit = _unit(path)
        for mod in _imports(path):
            parts = mod.split(".")
            if len(parts) < 2:
                continue
            target = parts[1]
            if target in FLOORS and target != unit:
                graph.setdefault(unit, set()).add(target)
    return graph


def test_every_package_is_on_a_documented_floor():
    units = {_unit(p) for p in _sources()}
    assert units <= set(FLOORS), f"undocumented packages/modules: {sorted(units - set(FLOORS))}"


def test_no_upward_or_sideways_import():
    bad = []
    for unit, targets in _unit_graph().items():
        for t in targets:
            if FLOORS[t] >= FLOORS[unit]:
                bad.append(f"{unit} (floor {FLOORS[unit]}) imports {t} (floor {FLOORS[t]})")
    assert not bad, "imports against the floors:\n" + "\n".join(sorted(bad))


def test_package_graph_has_no_cycle():
    graph = _unit_graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(u: str) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(v):] + [v]))
            if v not in state:
                visit(v)
        stack.pop()
        state[u] = 2

    for u in sorted(graph):
        if u not in state:
            visit(u)


def test_layer_classes_are_named_in_code_only_by_the_registry():
    offenders = []
    for path in _sources():
        rel = path.relative_to(SRC)
        if rel.parts[0] == "kinds" or rel.name == "models.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            name = node.attr if isinstance(node, ast.Attribute) else (
                node.id if isinstance(node, ast.Name) else None)
            if name in LAYER_CLASSES:
                offenders.append(f"{rel}:{node.lineno} {name}")
    assert not offenders, ("layer classes named outside connas4ml_torch/kinds (ask the registry "
                           "instead):\n" + "\n".join(offenders))


def test_long_files_say_why():
    long = []
    for path in _sources():
        n = len(path.read_text().splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if n > 400 and "long because" not in doc.lower():
            long.append(f"{path.relative_to(SRC)} ({n} lines)")
    assert not long, "files over 400 lines without a reason in their docstring:\n" + "\n".join(long)
