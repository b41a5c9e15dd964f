"""``connas4ml export``: a saved network to a bit-exact hls4ml project.

    connas4ml export runs/jet_demo/model.pt --example x.npy --out prj/   # a `connas4ml search` result
    connas4ml export runs/my_task/model.pt --factory my_task:build --example x.npy --out prj/
    connas4ml export nets.py:build --weights model.pt --example x.npy --out prj/ [--config hls.yaml]
    connas4ml export whole_model.pt --unsafe-pickle --example x.npy --out prj/

MODEL is one of:

* the ``model.pt`` that ``connas4ml search`` writes (config + choices + weights, read with
  ``weights_only=True``): it is rebuilt with a model factory, and a file may not choose the code
  that runs, so the factory is either one of this library's reference models named in the file
  or the one you give with ``--factory package.module:name`` (or ``file.py:name``);
* a factory ``file.py:name`` or ``package.module:name`` that returns the ``nn.Module`` (weights
  from ``--weights``, a ``state_dict`` read with ``weights_only=True``);
* a whole module saved with ``torch.save(model, path)``: unpickling it runs arbitrary code, so it
  is refused unless you pass ``--unsafe-pickle`` for a file you created yourself. (Brevitas
  models usually cannot be pickled whole anyway: use the factory + state_dict form.)

A factory runs code when imported: name only files you trust. ``--example`` is a ``.npy`` array
(no pickle) or a ``.pt`` tensor of inputs (batch first; a few hundred rows make a meaningful
bit-exact check). ``--config`` is a YAML mapping of
:class:`~connas4ml_torch.hardware.config.HLSConfig` fields (hls4ml spellings accepted); single
fields can be overridden on the command line.

Exit codes: 0 bit-exact (or not verified), 1 not bit-exact, 2 refused / bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register", "run", "load_model", "load_example"]


def register(subparsers: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """Add the ``export`` subcommand to the ``connas4ml`` parser."""
    p = subparsers.add_parser(name, help=help_text, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a `connas4ml search` model.pt, file.py:factory or "
                   "package.module:factory (with --weights), or a whole-module .pt "
                   "(--unsafe-pickle)")
    p.add_argument("--weights", type=Path, help="state_dict .pt for a factory-built model")
    p.add_argument("--factory", help="the model factory that rebuilds a search result "
                   "(package.module:name or file.py:name); needed unless the result names one "
                   "of connas4ml_torch.models")
    p.add_argument("--unsafe-pickle", action="store_true",
                   help="allow unpickling a whole-module .pt (runs arbitrary code from the file: "
                        "only for files you created)")
    p.add_argument("--example", type=Path, required=True, help="example inputs, .npy or .pt")
    p.add_argument("--out", type=Path, required=True, help="output directory of the hls4ml project")
    p.add_argument("--config", type=Path, help="HLSConfig as YAML")
    p.add_argument("--backend", choices=["Vitis", "Vivado"])
    p.add_argument("--part")
    p.add_argument("--clock-period", type=float)
    p.add_argument("--io-type", choices=["io_parallel", "io_stream"])
    p.add_argument("--strategy", choices=["Latency", "Resource"])
    p.add_argument("--reuse-factor", type=int)
    p.add_argument("--rows", type=int, default=None, help="use only the first N example rows")
    p.add_argument("--no-verify", action="store_true", help="write (and compile) only")
    p.add_argument("--no-compile", action="store_true", help="write only (implies --no-verify)")
    p.add_argument("--build", action="store_true", help="run vendor C synthesis if on PATH")
    p.add_argument("--strict", action="store_true", help="fail (exit 1) unless bit-exact")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing, non-empty --out folder (refused otherwise)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)
    return p


def _factory(spec: str) -> Any:
    import importlib
    import importlib.util

    where, _, attr = spec.rpartition(":")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise FileNotFoundError(f"model factory file {path} does not exist")
        mod_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    if not hasattr(module, attr):
        raise ValueError(f"{where} has no attribute {attr!r} (MODEL is file.py:name or module:name)")
    return getattr(module, attr)


def load_model(spec: str, weights: Path | None = None, factory: str | None = None,
               unsafe_pickle: bool = False) -> Any:
    """The model named by ``spec``: a search result (rebuilt with a trusted factory), a factory
    ``file.py:name`` / ``module:name`` + optional ``weights`` state_dict, or (only with
    ``unsafe_pickle``) a whole pickled module file."""
    import warnings

    import torch

    from connas4ml_torch.errors import UnsafeFileError

    if ":" in spec and not Path(spec).is_file():
        model = _factory(spec)()
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"{spec} returned a {type(model).__name__}, not an nn.Module")
        if weights is not None:
            if not weights.is_file():
                raise FileNotFoundError(f"weights file {weights} does not exist")
            state = torch.load(weights, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        return model
    path = Path(spec)
    if weights is not None:
        raise ValueError("--weights goes with a factory MODEL (file.py:name), not a whole-module file")
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    if _search_result(path) is not None:
        from connas4ml_torch.run import load_derived

        return load_derived(path, _factory(factory) if factory else None)[0]
    if not unsafe_pickle:
        raise UnsafeFileError(
            f"{path} is not a connas4ml search result; loading it as a whole pickled module would "
            "run any code the file contains. Safe alternatives: save a state_dict and pass a "
            "factory (`connas4ml export nets.py:build --weights state.pt ...`), or export from "
            "Python with connas4ml_torch.export_to_hls(model, ...). If you created the file "
            "yourself, pass --unsafe-pickle.")
    warnings.warn(f"--unsafe-pickle: unpickling {path} runs any code it contains", stacklevel=2)
    model = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(model, torch.nn.Module):
        raise ValueError(
            f"{path} holds a {type(model).__name__}, not an nn.Module: save the whole model with "
            "torch.save(model, path), or pass a factory MODEL (file.py:name) with --weights"
        )
    return model


def _search_result(path: Path) -> dict | None:
    """The config stored in a ``connas4ml search`` model.pt, or None for any other file."""
    import pickle

    import torch

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError):
        return None
    if isinstance(blob, dict) and blob.get("format") == "connas4ml-derived-v1":
        return blob["config"]
    return None


def load_example(path: Path, rows: int | None = None) -> Any:
    """Example inputs from ``.npy`` (numpy.load, no pickle) or ``.pt`` (a tensor; weights_only)."""
    import numpy as np
    import torch

    if not path.is_file():
        raise FileNotFoundError(f"example input file {path} does not exist")
    if path.suffix == ".npy":
        x = torch.from_numpy(np.load(path, allow_pickle=False)).float()
    elif path.suffix in (".pt", ".pth"):
        x = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{path} must hold one tensor, got {type(x).__name__}")
        x = x.float()
    else:
        raise ValueError(f"example input {path}: use a .npy array or a .pt tensor")
    return x[:rows] if rows else x


def _config(args: argparse.Namespace) -> Any:
    from connas4ml_torch import schema
    from connas4ml_torch.hardware.config import HLSConfig

    d: dict[str, Any] = {}
    stored = _search_result(Path(args.model)) if Path(args.model).is_file() else None
    if stored is not None:
        d = dict(stored.get("hls") or {})
    if args.config is not None:
        d = schema.read_yaml(args.config) or {}
        if not isinstance(d, dict):
            raise ValueError(f"{args.config}: expected a mapping of HLSConfig fields")
    for key in ("backend", "part", "clock_period", "io_type", "strategy", "reuse_factor"):
        v = getattr(args, key)
        if v is not None:
            d[key] = v
    return HLSConfig.from_dict(d)


def run(args: argparse.Namespace) -> int:
    """Run the export; returns the exit code."""
    from connas4ml_torch.export import export_to_hls

    cfg = _config(args)
    model = load_model(args.model, args.weights, args.factory, args.unsafe_pickle)
    x = load_example(args.example, args.rows)
    compile_ = not args.no_compile
    prj = export_to_hls(model, cfg, args.out, x, verify=compile_ and not args.no_verify,
                        compile=compile_, build=args.build, progress=not args.quiet,
                        strict=args.strict, overwrite=args.overwrite)
    print(prj.summary())
    if prj.verification is not None and not prj.verification.bit_exact:
        return 1
    return 0
