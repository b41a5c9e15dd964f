"""hls4ml function names and fixed-point types, in every spelling the tools write them.

A layer report is named after the synthesized C++ function, e.g.
``dense_latency_ap_ufixed_8_0_4_0_0_ap_fixed_16_6_5_3_0_config5_s``: the function (``dense_latency``),
its template arguments mangled with ``_`` (input type, result type, the layer's config struct),
and a suffix Vivado adds (``_s``, ``_1``...). Vitis also writes the unmangled signature in the
report's RTL ports (``dense_latency<ap_fixed<16, 6, 5, 3, 0>, ..., config2>``), which we prefer.
Vivado cuts long names (``name_max_length``) and elides repeated template arguments
(``dense_latency_ap_fixed_ap_fixed_config2_0_0``, ``dense_latency_0_0_0..._2``): whatever survives
is used, and ``truncated`` says that the name lost something.

Types: ``ap_fixed<W,I[,Q,O,N]>``, ``ap_ufixed``, ``ap_int<W>``, ``ap_uint<W>``, hls4ml's ``fixed<>``
/``ufixed<>``/``int<>``/``uint<>``, rounding and saturation modes by name or by number, and the
mangled forms ``ap_fixed_16_6_5_3_0``, ``ap_ufixed_8_0_4_0_0``, ``ap_uint_1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from connas4ml_torch.hardware.reports.hls4ml_layers import (
    ACTIVATIONS,
    SOFTMAX_IMPL,
    layer_kind,
)

__all__ = ["FixedType", "fixed_type", "parse_fixed_type", "parse_function_name"]

_Q_MODES = ["RND", "RND_ZERO", "RND_MIN_INF", "RND_INF", "RND_CONV", "TRN", "TRN_ZERO"]
_O_MODES = ["SAT", "SAT_ZERO", "SAT_SYM", "WRAP", "WRAP_SM"]


@dataclass(frozen=True)
class FixedType:
    """A fixed-point (or integer) type: ``width`` bits, ``integer`` of them above the point."""

    width: int
    integer: int
    signed: bool
    q_mode: str = "TRN"
    o_mode: str = "WRAP"

    @property
    def frac(self) -> int:
        """Bits below the binary point (``width - integer``; may be negative)."""
        return self.width - self.integer

    def spelling(self) -> str:
        """``ap_fixed<16,6>``-style text (``ap_int<8>`` for integers)."""
        if self.integer == self.width and self.q_mode == "TRN" and self.o_mode == "WRAP":
            return f"ap_{'' if self.signed else 'u'}int<{self.width}>"
        modes = "" if (self.q_mode, self.o_mode) == ("TRN", "WRAP") else \
            f",AP_{self.q_mode},AP_{self.o_mode}"
        return f"ap_{'' if self.signed else 'u'}fixed<{self.width},{self.integer}{modes}>"


def _mode(token: str | None, names: list[str], default: str) -> str:
    if token is None:
        return default
    t = token.strip().upper().removeprefix("AP_")
    if t.isdigit():
        i = int(t)
        return names[i] if i < len(names) else default
    return t if t in names else default


_TYPE = re.compile(r"\b(?:ap_|ac_)?(u?)(fixed|int)\s*<\s*([^<>]{0,80}?)\s*>", re.I)


def fixed_type(text: Any) -> FixedType | None:
    """The :class:`FixedType` of a type spelling (C++, hls4ml config or mangled), or None."""
    if not isinstance(text, str) or not text or len(text) > 4000:
        return None
    m = _TYPE.search(text)
    if m:
        uns, kind = m.group(1).lower() == "u", m.group(2).lower()
        args = [a.strip() for a in m.group(3).split(",")]
        return _from_args(kind, not uns, args)
    m = re.search(r"\bap_(u?)(fixed|int)((?:_-?\d+(?![\dA-Za-z]))*)", text)
    if m:
        args = [a for a in m.group(3).split("_") if a]
        return _from_args(m.group(2), m.group(1) != "u", args)
    return None


def _from_args(kind: str, signed: bool, args: list[str]) -> FixedType | None:
    try:
        width = int(args[0])
    except (ValueError, IndexError):
        return None
    if not 0 < width <= 4096:
        return None
    if kind == "int":
        return FixedType(width, width, signed)
    try:
        integer = int(args[1]) if len(args) > 1 else width
    except ValueError:
        return None
    if abs(integer) > 4096:
        return None
    return FixedType(width, integer, signed, _mode(args[2] if len(args) > 2 else None, _Q_MODES,
                                                   "TRN"),
                     _mode(args[3] if len(args) > 3 else None, _O_MODES, "WRAP"))


def parse_fixed_type(text: Any) -> int | None:
    """Total bit width of a type spelling (``ap_fixed<16,6,AP_RND,AP_SAT>`` -> 16), or None."""
    t = fixed_type(text)
    return t.width if t else None


# ---- function names -----------------------------------------------------------------------
_CONFIG = re.compile(r"(?:^|[_<,\s])(?:(?!(?:u?fixed|u?int|array)_)([A-Za-z][A-Za-z0-9]*)_)?"
                     r"config(\d+)((?:_(?:mult|recr|\d+|[a-z]+))*)")


def _split_args(s: str) -> list[str]:
    out, depth, cur = [], 0, []
    for ch in s:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur).strip())
    return [a for a in out if a]


def _object_args(obj: str) -> tuple[str, list[dict[str, Any]]] | None:
    """Base name and template arguments of Vitis' unmangled ``f<T1, T2, configN>`` spelling."""
    if not obj or len(obj) > 2000:
        return None
    m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*<(.*)>(?:\.\d*)*\s*", obj, re.S)
    if not m:
        return None
    args: list[dict[str, Any]] = []
    for a in _split_args(m.group(2)):
        if a == "array":  # Vivado elides repeated template arguments
            args.append({"type": None, "size": None})
            continue
        am = re.fullmatch(r"(?:nnet::)?array\s*<(.*)>", a)
        if am:
            parts = _split_args(am.group(1))
            size = re.fullmatch(r"(\d+)u?", parts[-1]) if len(parts) > 1 else None
            args.append({"type": parts[0], "size": int(size.group(1)) if size else None})
        else:
            args.append({"type": a, "size": None})
    return m.group(1), args


def _mangled_args(rest: str) -> list[dict[str, Any]]:
    """Template arguments (types and stream array sizes) of a mangled name's tail."""
    toks = rest.split("_")
    args: list[dict[str, Any]] = []
    i, in_array = 0, False
    while i < len(toks):
        t = toks[i]
        if t == "array":
            args.append({"type": None, "size": None})
            in_array = True
        elif t == "ap" and i + 1 < len(toks) and toks[i + 1] in ("fixed", "ufixed", "int", "uint"):
            kind = toks[i + 1]
            n = 1 if kind.endswith("int") else 5
            nums = []
            j = i + 2
            while j < len(toks) and len(nums) < n and re.fullmatch(r"-?\d+", toks[j]):
                nums.append(toks[j])
                j += 1
            spelled = f"ap_{kind}<{','.join(nums)}>" if nums else f"ap_{kind}"
            if in_array and args and args[-1]["type"] is None:
                args[-1]["type"] = spelled
            else:
                args.append({"type": spelled, "size": None})
                in_array = False
            i = j
            continue
        elif re.fullmatch(r"\d+u", t) and args:
            if args[-1]["size"] is None:
                args[-1]["size"] = int(t[:-1])
            in_array = False
        elif t.startswith("config") or (i + 1 < len(toks) and toks[i + 1].startswith("config")):
            break
        i += 1
    return args


def parse_function_name(name: str, obj: str | None = None) -> dict[str, Any]:
    """What a synthesized function's name (and Vitis' unmangled spelling ``obj``) states.

    Keys (present when known): ``function``, ``op`` (base name), ``layer_type`` (hls4ml class:
    ``Dense``, ``Conv1D``, ``Conv2D``, ``Activation``, ``Softmax``, ``Pooling2D``...; ``other``
    for non-layer functions; None for a helper whose layer is its config's owner), ``activation``,
    ``implementation`` (softmax), ``strategy``, ``io_type``, ``config_index``, ``config_name``,
    ``sub_config`` (the config is a part of a layer: ``config2_mult``, ``config3_2``),
    ``input_type``/``result_type``, ``input_bits``/``result_bits``, ``in_array``/``out_array``
    (element counts of io_stream arrays) and ``truncated`` (Vivado cut the name).

    E.g. ``dense_latency_ap_fixed_16_6_5_3_0_ap_fixed_16_6_5_3_0_config2_s`` -> Dense, Latency,
    input 16 bits, result 16 bits, config 2.
    """
    name = str(name)
    out: dict[str, Any] = {"function": name, "layer_type": "other"}
    obj_parsed = _object_args(obj) if obj and "<" in obj else None
    op_m = re.match(r"([A-Za-z][A-Za-z0-9]*(?:_(?!ap_(?:u?fixed|u?int)|array|config\d)"
                    r"(?![A-Za-z][A-Za-z0-9]*_config\d)(?!\d+u?(?:_|$))[A-Za-z0-9]+)*)", name)
    op = obj_parsed[0] if obj_parsed else (op_m.group(1) if op_m else name)
    # Vitis names a function's pipelined loop "<function>_Pipeline_<loop>": it is the function's
    if "_Pipeline_" in name and not obj_parsed:
        op = op.split("_Pipeline_")[0]
    out["op"] = op
    ltype, act, strat, io = layer_kind(op)
    out["layer_type"] = ltype
    if act:
        out["activation"] = act
    if ltype == "Softmax":
        impl = op.lower().removeprefix("softmax").strip("_")
        out["implementation"] = impl if impl in SOFTMAX_IMPL else None
    if strat:
        out["strategy"] = strat
    if io:
        out["io_type"] = io
    low = name.lower()
    if ltype in ("Dense", "Conv1D", "Conv2D") and "strategy" not in out:
        if "latency" in low:
            out["strategy"] = "Latency"
        elif "resource" in low:
            out["strategy"] = "Resource"
    if "_array_" in low or low.endswith("_array") or "array<" in (obj or "") \
            or "shift_line_buffer" in low:
        out.setdefault("io_type", "io_stream")
    # the config struct
    cm = None
    for arg in reversed(obj_parsed[1] if obj_parsed else []):
        cm = _CONFIG.search(str(arg.get("type")))
        if cm:
            break
    if cm is None and obj_parsed is None:
        cm = _CONFIG.search(name)
    if cm:
        out["config_index"] = int(cm.group(2))
        suffix = cm.group(3) or ""
        if obj_parsed is None:  # strip Vivado's own suffixes (_s, _1, _0_0 clones)
            suffix = re.sub(r"(?:_s|(?:_0)+|_\d+)$", "", suffix) if suffix.endswith(
                ("_s", "_0")) else suffix
            suffix = re.sub(r"_(?:Pipeline|VITIS)\w*$", "", suffix)
        pre = cm.group(1)
        out["config_name"] = (f"{pre}_" if pre else "") + f"config{cm.group(2)}" + suffix
        out["sub_config"] = bool(re.match(r"_(?:mult|\d+|recr)", suffix))
        if pre and out.get("activation") is None and pre.lower() in ACTIVATIONS:
            out["activation"] = pre.lower()
    # template arguments: input and result types, stream array sizes
    args = obj_parsed[1] if obj_parsed else _mangled_args(name[len(op):])
    types = [a for a in args if a.get("type") is None or re.search(r"(?:fixed|int)\b|<",
                                                                     str(a.get("type")))]
    types = [a for a in types if not re.search(r"config\d", str(a.get("type")))]
    for key, arg in zip(("input", "result"), types[:2]):
        t = fixed_type(arg.get("type"))
        if t is not None:
            out[f"{key}_type"] = t.spelling()
            out[f"{key}_bits"] = t.width
        if arg.get("size"):
            out["in_array" if key == "input" else "out_array"] = arg["size"]
    out["truncated"] = bool(
        (cm is None and ltype != "other")
        or re.search(r"config\d+(?:_mult)?(?:_0)+$", name)
        or re.search(r">\.\d|^\w+\.\d", obj or ""))
    return out
