"""``firmware/parameters.h`` and ``firmware/defines.h``: the layer configurations hls4ml compiled.

``parameters.h`` holds one C++ struct per layer (``struct config2 : nnet::dense_config {...}``,
``relu_config4``, helper structs such as ``config2_mult``), each preceded by a ``// <layer name>``
comment; ``defines.h`` holds the types (``typedef ap_fixed<8,3> fc1_weight_t;``) and, in older
versions, the sizes (``#define N_LAYER_2 64``). These are the *effective* settings (the reuse
factor hls4ml settled on, the resolved ``auto`` precisions), so they win over every other source.

Member values are literals, names of other members or macros, or small arithmetic
(``DIV_ROUNDUP(n_in * n_out, reuse_factor)``): evaluated by a whitelist walker over Python's
``ast`` (integers, + - * / %, parentheses, DIV_ROUNDUP/MIN/MAX), never ``eval``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from connas4ml_torch.errors import ReportError
from connas4ml_torch.hardware.reports.base import MiB, Parser, read_text, register, show
from connas4ml_torch.hardware.reports.names import fixed_type

__all__ = ["parse_parameters_h", "parse_defines_h", "parse_structs", "parse_layer_calls"]

MAX_BYTES = 8 * MiB
_STRUCT = re.compile(r"^[ \t]*struct[ \t]+(\w+)[ \t]*(?::[ \t]*(?:public[ \t]+)?(?:nnet::)?(\w+)"
                     r"[ \t]*)?\{", re.M)
_MEMBER = re.compile(r"static\s+(?:const|constexpr)\s+(?:const\s+)?([\w:<>]+(?:\s+\w+)?)\s+(\w+)"
                     r"\s*=\s*([^;{}]{1,500});")
_TYPEDEF = re.compile(r"typedef\s+([^;{}]{1,300}?)\s+(\w+)\s*;")
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+([^\n]{1,200})$", re.M)
_PRIMARY = re.compile(r"(?:[A-Za-z]\w*?_)?config(\d+)")


def _div_roundup(a: int, b: int) -> int:
    return -(-a // b)


_FUNCS = {"DIV_ROUNDUP": _div_roundup, "MIN": min, "MAX": max}
_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
        ast.Mult: lambda a, b: a * b, ast.FloorDiv: lambda a, b: a // b,
        ast.Mod: lambda a, b: a % b}


def _eval(expr: str, names: dict[str, Any], depth: int = 0) -> int | None:
    """A C integer expression over ``names``; None when it is anything else."""
    s = re.sub(r"\b(\d+)[uUlL]+\b", r"\1", expr.strip())
    s = re.sub(r"(?<![/])/(?!/)", "//", s)
    if len(s) > 300 or depth > 20:
        return None
    try:
        tree = ast.parse(s, mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return None

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and \
                not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Name):
            v = names.get(node.id)
            if isinstance(v, int) and not isinstance(v, bool):
                return v
            if isinstance(v, str):
                r = _eval(v, names, depth + 1)
                if r is not None:
                    return r
            raise ValueError(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and b == 0:
                raise ValueError("division by zero")
            v = _OPS[type(node.op)](a, b)
            if abs(v) > 10**15:
                raise ValueError("too large")
            return v
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in _FUNCS and not node.keywords and 1 < len(node.args) < 4:
            args = [ev(a) for a in node.args]
            if node.func.id == "DIV_ROUNDUP" and args[1] == 0:
                raise ValueError("division by zero")
            return int(_FUNCS[node.func.id](*args))
        raise ValueError(type(node).__name__)

    try:
        return ev(tree)
    except (ValueError, TypeError, RecursionError, OverflowError):
        return None


def parse_defines_h(path: str | Path) -> dict[str, dict[str, Any]]:
    """``{"typedefs": {name: spelling}, "defines": {macro: int}}`` of a ``defines.h``."""
    path = Path(path)
    text = read_text(path, MAX_BYTES)
    return _defs(text)


def _defs(text: str) -> dict[str, dict[str, Any]]:
    typedefs = {m.group(2): " ".join(m.group(1).split()) for m in _TYPEDEF.finditer(text)}
    defines: dict[str, Any] = {}
    for m in _DEFINE.finditer(text):
        v = _eval(m.group(2).split("//")[0], defines)
        if v is not None:
            defines[m.group(1)] = v
    return {"typedefs": typedefs, "defines": defines}


def _resolve_type(name: str, typedefs: dict[str, str]) -> str:
    seen = set()
    while name in typedefs and name not in seen:
        seen.add(name)
        name = typedefs[name]
    return name


def parse_structs(text: str, typedefs: dict[str, str], defines: dict[str, Any]) -> \
        dict[str, dict[str, Any]]:
    """Every ``struct NAME [: base] {...}`` with evaluated members and resolved types."""
    out: dict[str, dict[str, Any]] = {}
    comment = None
    pos = 0
    for m in _STRUCT.finditer(text):
        if m.start() < pos:
            continue  # a struct nested in the one we just read
        between = text[pos:m.start()]
        for cm in re.finditer(r"^[ \t]*//[ \t]*([^\n]{1,200})$", between, re.M):
            comment = cm.group(1).strip()
        depth, i = 0, m.end() - 1
        while i < len(text):
            c = text[i]
            depth += c == "{"
            depth -= c == "}"
            if depth == 0:
                break
            i += 1
        body, pos = text[m.end():i], i + 1
        d: dict[str, Any] = {"config_struct": m.group(2), "layer_name": comment}
        raw: dict[str, str] = {}
        for mm in _MEMBER.finditer(body):
            raw[mm.group(2)] = " ".join(mm.group(3).split())
        scope = {**defines, **raw}
        for k, v in raw.items():
            if "::" in v and not re.search(r"[-+*/(]", v):
                d[k] = v.rsplit("::", 1)[-1]
            elif v in ("true", "false"):
                d[k] = v == "true"
            else:
                r = _eval(v, scope)
                if r is not None:
                    d[k] = r
                    scope[k] = r
        types = {}
        for tm in _TYPEDEF.finditer(body):
            alias, target = tm.group(2), _resolve_type(" ".join(tm.group(1).split()), typedefs)
            types[alias] = target
            t = fixed_type(target)
            if t is not None and alias.endswith("_t"):
                d[alias[:-2] + "_bits"] = t.width
                d[alias[:-2] + "_type"] = t.spelling()
            if alias == "mult_config":
                d["mult_config"] = target
        d["types"] = types
        out[m.group(1)] = d
    return out


def parse_parameters_h(path: str | Path, defines: str | Path | None = None) -> \
        dict[int, dict[str, Any]]:
    """Layer configurations of an hls4ml ``parameters.h``, types resolved through ``defines.h``.

    Returns ``{config_index: struct}`` for each layer's own struct (``config2``,
    ``relu_config4``...), where a struct holds its integer members (``n_in``, ``n_out``,
    ``n_chan``, ``n_filt``, ``filt_width``, ``out_width``, ``reuse_factor``, ``table_size``...),
    enum members by name (``strategy: "latency"``, ``io_type: "io_parallel"``), ``<x>_bits``/
    ``<x>_type`` for each ``<x>_t`` type (``weight_bits``), ``config_struct`` (the nnet base),
    ``config_name``, ``layer_name`` (hls4ml's comment above it) and ``subconfigs`` (structs
    such as ``config2_mult`` that belong to the layer).
    """
    path = Path(path)
    text = read_text(path, MAX_BYTES)
    if "struct" not in text and "#define" not in text:
        raise ReportError(f"{show(path)}: no struct or #define (not an hls4ml parameters.h)")
    defs = _defs(text)
    if defines is not None and Path(defines).is_file():
        extra = parse_defines_h(defines)
        defs["typedefs"] = {**extra["typedefs"], **defs["typedefs"]}
        defs["defines"] = {**extra["defines"], **defs["defines"]}
    structs = parse_structs(text, defs["typedefs"], defs["defines"])
    out: dict[int, dict[str, Any]] = {}
    for name, d in structs.items():
        m = _PRIMARY.fullmatch(name)
        if m:
            d = {**d, "config_name": name, "subconfigs": {}}
            out.setdefault(int(m.group(1)), d)
    for name, d in structs.items():
        m = re.fullmatch(r"(?:[A-Za-z]\w*?_)?config(\d+)_(\w+)", name)
        if m and int(m.group(1)) in out:
            out[int(m.group(1))]["subconfigs"][name] = d
    return out


_CALL = re.compile(r"\bnnet::(\w+)\s*<")


def _template_args(text: str, start: int) -> tuple[list[str], int]:
    """The top-level comma-separated template arguments from just after a ``<``."""
    depth, args, cur, i = 1, [], [], start
    while i < len(text) and depth:
        c = text[i]
        depth += (c == "<") - (c == ">")
        if depth == 1 and c == ",":
            args.append("".join(cur).strip())
            cur = []
        elif depth:
            cur.append(c)
        i += 1
    args.append("".join(cur).strip())
    return args, i


def parse_layer_calls(path: str | Path, typedefs: dict[str, str]) -> dict[int, dict[str, Any]]:
    """Each layer's input and result type as the project's top function calls it
    (``nnet::dense<input_t, layer2_t, config2>(...)`` in ``firmware/<project>.cpp``: the first
    template argument is the input, the one before the config the result), resolved through
    ``defines.h``. Vivado elides repeated types from function names; the call never does.
    Returns ``{config_index: {"input_bits", "result_bits"}}`` (widths that resolve only)."""
    text = read_text(Path(path), MAX_BYTES)
    out: dict[int, dict[str, Any]] = {}
    for m in _CALL.finditer(text):
        args, _ = _template_args(text, m.end())
        if len(args) < 3:
            continue
        cm = _PRIMARY.fullmatch(args[-1])
        if not cm:
            continue
        got = {}
        for key, arg in (("input_bits", args[0]), ("result_bits", args[-2])):
            t = fixed_type(_resolve_type(arg, typedefs))
            if t is not None:
                got[key] = t.width
        if got:
            out.setdefault(int(cm.group(1)), got)
    return out


def _is_firmware(path: Path, name: str) -> bool:
    return path.name.lower() == name and path.parent.name.lower() == "firmware"


register(Parser(name="parameters_h", kind="parameters", suffixes=("parameters.h",),
                matches=lambda path, head: _is_firmware(path, "parameters.h"),
                parse=lambda path: parse_parameters_h(path), max_bytes=MAX_BYTES))
register(Parser(name="defines_h", kind="defines", suffixes=("defines.h",),
                matches=lambda path, head: _is_firmware(path, "defines.h"),
                parse=parse_defines_h, max_bytes=MAX_BYTES))
