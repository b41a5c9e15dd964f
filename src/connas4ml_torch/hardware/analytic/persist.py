"""Saving and loading ``ResourceModel`` with skops, trusting exactly the types the library writes.

A ``.skops`` file names the type of every object it holds; ``skops.io.load`` constructs them.
Trusting whole namespaces (``builtins.``, ``numpy.``) would let a crafted file name
``builtins.exec``, ``builtins.eval``, ``builtins.getattr`` or ``os.system`` and run code on load.
So the trusted list is the exact set of types :func:`save_model` writes (``TRUSTED_TYPES``; a test
derives it from a freshly saved model), the file is checked before anything is constructed,
and arrays are read without pickle (``numpy.load(allow_pickle=False)`` inside skops), so object
arrays are refused too.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from connas4ml_torch.errors import UnsafeFileError
from connas4ml_torch.hardware.analytic.layers import COMPONENTS

__all__ = ["DEFAULT_MODEL_PATH", "TRUSTED_TYPES", "TRUSTED_LOADERS", "save_model", "load_model",
           "plain", "schema_types"]

DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[1] / "default_model" / "resource_model.skops"
# every type a saved ResourceModel holds (the estimator, containers, numbers, float arrays)
TRUSTED_TYPES = (
    "builtins.dict",
    "builtins.list",
    "builtins.str",
    "connas4ml_torch.hardware.model.ResourceModel",
    "numpy.ndarray",
)
# the skops node kinds those types are written with (TypeNode: the key type of a dict; no
# functions, methods, reduce or operator nodes)
TRUSTED_LOADERS = ("ObjectNode", "DictNode", "ListNode", "JsonNode", "NdArrayNode", "TypeNode")
_ALLOWED_DTYPES = ("f", "i", "u", "b")


def plain(obj: Any) -> Any:
    """``obj`` as builtins and float/int arrays only (numpy scalars become Python numbers), so a
    saved model holds nothing outside ``TRUSTED_TYPES``."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _ALLOWED_DTYPES:
            raise TypeError(f"refusing to save an array of dtype {obj.dtype}")
        return np.ascontiguousarray(obj)
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj)
    if obj is None or isinstance(obj, str):
        return obj
    raise TypeError(f"refusing to save a {type(obj).__name__} in a ResourceModel file")


def save_model(model: Any, path: str | Path) -> Path:
    """Write ``model`` (its fitted attributes made :func:`plain`) with ``skops.io.dump``."""
    import copy

    import skops.io as sio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = copy.copy(model)
    for k, v in vars(model).items():
        if k.endswith("_") and not k.startswith("_"):
            setattr(clean, k, plain(v))
    sio.dump(clean, path, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    return path


def _arrays_ok(obj: Any) -> bool:
    if isinstance(obj, dict):
        return all(_arrays_ok(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(_arrays_ok(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return obj.dtype.kind in _ALLOWED_DTYPES
    return True


def schema_types(path: str | Path) -> tuple[set[str], set[str], bool]:
    """(type names, node loaders, whether any array is an object array) of every node in a
    ``.skops`` file's schema, read as JSON without constructing anything."""
    import json

    types: set[str] = set()
    loaders: set[str] = set()
    obj_arrays = False

    def walk(node: Any) -> None:
        nonlocal obj_arrays
        if isinstance(node, dict):
            if "__class__" in node or "__module__" in node:
                types.add(f"{node.get('__module__', '')}.{node.get('__class__', '')}")
            if "__loader__" in node:
                loaders.add(str(node["__loader__"]))
                if node["__loader__"] == "NdArrayNode" and node.get("type") != "numpy":
                    obj_arrays = True
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    with zipfile.ZipFile(path) as z:
        walk(json.loads(z.read("schema.json")))
    return types, loaders, obj_arrays


def load_model(cls: type, path: str | Path) -> Any:
    """Read a model written by :func:`save_model`; :class:`UnsafeFileError` for any file that
    names a type outside ``TRUSTED_TYPES`` (checked before anything is constructed)."""
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ResourceModel file {path} does not exist")
    try:
        types, loaders, obj_arrays = schema_types(path)
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # zipfile/json errors on foreign files
        raise UnsafeFileError(f"{path}: not a skops ResourceModel file ({exc})") from exc
    bad = sorted(t for t in set(types) | set(untrusted) if t not in TRUSTED_TYPES)
    if bad:
        raise UnsafeFileError(f"{path}: refuses to load types outside the trusted list "
                              f"{list(TRUSTED_TYPES)}: {bad}")
    if not loaders <= set(TRUSTED_LOADERS) or obj_arrays:
        raise UnsafeFileError(f"{path}: refuses skops nodes the library never writes "
                              f"({sorted(loaders - set(TRUSTED_LOADERS)) or 'object arrays'})")
    try:
        obj = sio.load(path, trusted=[t for t in untrusted if t in TRUSTED_TYPES])
    except Exception as exc:
        raise UnsafeFileError(f"{path}: could not be read as a ResourceModel ({exc})") from exc
    if type(obj) is not cls:
        raise UnsafeFileError(f"{path}: holds a {type(obj).__name__}, not a {cls.__name__}")
    if not _arrays_ok(vars(obj)):
        raise UnsafeFileError(f"{path}: holds arrays of a type the library never writes")
    if not hasattr(obj, "params_"):
        raise UnsafeFileError(f"{path}: not a fitted ResourceModel of this version (refit it with "
                              "`python -m connas4ml_torch.hardware.fit_default` or "
                              "`connas4ml surrogate fit`)")
    stale = [t for t, comps in COMPONENTS.items()
             if len(np.asarray(obj.params_.get(f"{t}.u", ()))) != len(comps)]
    if stale:
        raise UnsafeFileError(f"{path}: fitted by an older version of the hardware model (its {stale} "
                              "corrections have a different number of components); refit it on your "
                              "reports with `connas4ml surrogate fit` or `ResourceModel().fit(...)`")
    return obj
