"""One config idiom: dataclass sections, validated by one small validator used everywhere.

Every configuration the library takes (the search run, HLS settings, search settings, synthesis
sweeps) is a ``@dataclass`` whose fields carry their type and, in ``field(metadata=...)``, their
bounds and hls4ml-style aliases. The same dataclass is built three ways that share one check:

* Python: ``HLSConfig(part="xcvu9p", reuse_factor=4)`` -> ``__post_init__`` calls :func:`check`;
* YAML / JSON / CLI: :func:`from_dict` maps aliases (``IOType`` -> ``io_type``), refuses unknown
  keys naming the closest valid one, recurses into nested sections, then constructs the class;
* files: :func:`load_yaml` adds the file name to every error.

Why not pydantic: the rules needed here are few (types, bounds, choices, closest-key hints,
hls4ml spellings) and every message must name the file, the dotted key and the fix, which a
hundred lines do more plainly than adapting another library's error objects.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from connas4ml_torch.errors import ConfigError

__all__ = ["check", "from_dict", "to_dict", "load_yaml", "read_yaml", "closest", "setting"]

T = TypeVar("T")


def setting(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
            ge: float | None = None, gt: float | None = None, le: float | None = None,
            aliases: tuple[str, ...] = (), finite: bool = True, doc: str = "") -> Any:
    """A dataclass field with validation metadata: bounds, aliases, finiteness, a description."""
    meta = {"ge": ge, "gt": gt, "le": le, "aliases": tuple(aliases), "finite": finite, "doc": doc}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def closest(key: str, valid: list[str]) -> str:
    """``" (did you mean 'x'?)"`` for the nearest valid key, or ``""``."""
    hit = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
    if not hit:
        low = {v.lower(): v for v in valid}
        hit = difflib.get_close_matches(str(key).lower(), list(low), n=1, cutoff=0.6)
        hit = [low[h] for h in hit]
    return f" (did you mean {hit[0]!r}?)" if hit else ""


def _type_words(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is type(None):
        return "null"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_words(a) for a in get_args(tp))
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(tp))
    if origin in (list, tuple):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        inner = _type_words(args[0]) if args else "values"
        return f"a list of {inner}" if origin is list else f"[{', '.join(map(_type_words, args))}]"
    if origin in (dict, Mapping):
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if tp is Any:
        return "anything"
    return getattr(tp, "__name__", str(tp))


def _matches(value: Any, tp: Any) -> bool:
    """Whether ``value`` is of the annotated type (bool is not an int; an int is a float)."""
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in get_args(tp))
    if origin is Literal:
        return value in get_args(tp)
    if origin is list:
        (inner,) = get_args(tp) or (Any,)
        return isinstance(value, (list, tuple)) and all(_matches(v, inner) for v in value)
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
    if origin in (dict, Mapping):
        args = get_args(tp) or (Any, Any)
        return isinstance(value, Mapping) and all(
            _matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
    if dataclasses.is_dataclass(tp):
        return isinstance(value, tp)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def _numbers(value: Any, key: str) -> list[tuple[str, float]]:
    """Every number inside ``value`` with its dotted key (``budgets.LUT``)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [(key, float(value))]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _numbers(v, key)]
    if isinstance(value, Mapping):
        return [x for k, v in value.items() for x in _numbers(v, f"{key}.{k}")]
    return []


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check(obj: Any, where: str = "") -> None:
    """Validate a dataclass instance's fields against their types and bounds (in place).

    Raises :class:`ConfigError` naming ``where.field``, the expected type or range and the value.
    Ints given for float fields are converted to floats.
    """
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        if f.name.startswith("_"):
            continue
        key = f"{where}.{f.name}" if where else f.name
        value = getattr(obj, f.name)
        tp = hints.get(f.name, Any)
        if not _matches(value, tp):
            raise ConfigError(f"{key}: expected {_type_words(tp)}, got "
                              f"{type(value).__name__} {value!r}")
        if tp is float and isinstance(value, int):
            object.__setattr__(obj, f.name, float(value))
        meta = f.metadata
        for sub, x in _numbers(value, key):
            shown = value if sub == key else x
            if meta.get("finite", True) and not math.isfinite(x):
                raise ConfigError(f"{sub}: expected a finite number, got {shown!r}")
            for bound, ok, words in (("ge", lambda a, b: a >= b, ">="), ("gt", lambda a, b: a > b, ">"),
                                     ("le", lambda a, b: a <= b, "<=")):
                b = meta.get(bound)
                if b is not None and not ok(x, b):
                    raise ConfigError(f"{sub}: expected a value {words} {b:g}, got {shown!r}")


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping: aliases, unknown keys, nested sections, checks.

    Unknown keys raise :class:`ConfigError` naming the dotted key and the closest valid key.
    Nested dataclass fields are built from nested mappings the same way. Errors raised by the
    class's own ``__post_init__`` are re-raised as :class:`ConfigError` prefixed with ``where``.
    """
    label = where or cls.__name__
    if isinstance(data, cls):
        return data
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{label}: expected a mapping, got {type(data).__name__} {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    alias_of = {a: name for name, f in fields.items() for a in f.metadata.get("aliases", ())}
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = key if key in fields else alias_of.get(key)
        if name is None:
            valid = [k for k in fields if not k.startswith("_")]
            dotted = f"{where}.{key}" if where else str(key)
            raise ConfigError(f"unknown key {dotted}{closest(str(key), valid + list(alias_of))}; "
                              f"valid keys{' under ' + where if where else ''}: {', '.join(valid)}")
        if name in kwargs:
            raise ConfigError(f"{where + '.' if where else ''}{key}: given twice "
                              f"(as {name} and as an alias)")
        sub = f"{where}.{name}" if where else name
        tp = hints.get(name, Any)
        nested = _dataclass_of(tp)
        if nested is not None and isinstance(value, Mapping):
            value = from_dict(nested, value, sub)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        msg = str(exc)
        if where and msg.startswith(cls.__name__):  # "HLSConfig.x: ..." -> "hls.x: ..."
            msg = where + msg[len(cls.__name__):]
        elif where and not msg.startswith(where):
            msg = f"{where}: {msg}"
        raise ConfigError(msg) from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{label}: {exc}") from None


def _dataclass_of(tp: Any) -> type | None:
    if dataclasses.is_dataclass(tp):
        return tp
    if get_origin(tp) in (Union, types.UnionType):
        for a in get_args(tp):
            if dataclasses.is_dataclass(a):
                return a
    return None


def to_dict(obj: Any) -> Any:
    """Plain data (dicts, lists, numbers, strings) of a dataclass tree, for YAML/JSON."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not f.name.startswith("_")}
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content; a missing file or bad YAML is a :class:`ConfigError` naming it."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None


def load_yaml(cls: type[T], path: str | Path, **extra: Any) -> T:
    """Build ``cls`` from a YAML file; every error names the file. ``extra`` keys are added
    (when the file does not set them) before validation."""
    raw = read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    raw = {**extra, **raw}
    try:
        return from_dict(cls, raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
