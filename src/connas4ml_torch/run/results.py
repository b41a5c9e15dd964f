"""What a run leaves behind: :class:`RunResult` (the printed table) and the derived network's file.

``model.pt`` holds the config, the choices and the weights as tensors and plain data: it is read
with ``weights_only=True`` and rebuilt from a model factory. A result file may not choose code to
run: the factory is the one the caller names (command line, own config) or one of this library's
own reference models (``connas4ml_torch.models``); a file naming anything else is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from connas4ml_torch.errors import UnsafeFileError
from connas4ml_torch.run.config import RunConfig

__all__ = ["RunResult", "save_derived", "load_derived", "DERIVED_FORMAT", "json_default"]

DERIVED_FORMAT = "connas4ml-derived-v1"
_LIBRARY_MODELS = "connas4ml_torch.models:"


@dataclass
class RunResult:
    config: RunConfig
    rows: dict[str, dict[str, Any]]
    budgets: dict[str, float]
    chosen: dict[str, dict[str, int]]
    repairs: list[str]
    files: dict[str, str]
    bit_exact: bool | None
    wall_s: dict[str, float]
    model: nn.Module | None = None
    budget_used: float | None = None   # share of the binding budget the chosen network uses
    note: str = ""                     # why a smaller network than the budget allows was kept

    def table(self) -> str:
        """The printed summary: budgets against predictions, quality, parameters, time, files."""
        base, ours = self.rows.get("baseline", {}), self.rows["searched"]
        qname = "accuracy" if "accuracy" in ours else "rel_mae"
        lines = [f"{'':<24}{'baseline':>14}{'searched':>14}{'budget':>14}"]
        for r in ("LUT", "FF", "BRAM_18K", "DSP", "latency"):
            b = self.budgets.get(r)
            verdict = ("   ok" if ours[r] <= b else "   OVER") if b is not None else ""
            lines.append(f"{'predicted ' + r:<24}{base.get(r, float('nan')):>14,.0f}"
                         f"{ours[r]:>14,.0f}{(f'{b:,.0f}' if b is not None else '-'):>14}{verdict}")
        for key, label in ((qname, qname + " (no fine-tune)"),
                           (qname + "_finetuned", qname + " (fine-tuned)")):
            if key in ours:
                lines.append(f"{label:<24}{base.get(qname, float('nan')):>14.4f}{ours[key]:>14.4f}")
        lines.append(f"{'parameters':<24}{base.get('parameters', 0):>14,}{ours['parameters']:>14,}")
        lines.append(f"{'wall time [s]':<24}{base.get('wall_s', 0):>14.1f}{ours['wall_s']:>14.1f}")
        if self.bit_exact is not None:
            lines.append(f"{'hls4ml bit-exact':<24}{'':>14}{str(self.bit_exact):>14}")
        lines.append("chosen: " + "; ".join(f"{k}: " + ",".join(f"{a}={b}" for a, b in v.items())
                                            for k, v in self.chosen.items()))
        if self.budget_used is not None:
            lines.append(f"binding budget used: {100 * self.budget_used:.0f}%"
                         + (f" ({self.note})" if self.note else ""))
        for rep in self.repairs:
            lines.append(f"repair: {rep}")
        for what, path in self.files.items():
            lines.append(f"{what:<24}{path}")
        return "\n".join(lines)


def json_default(o: Any) -> Any:
    if isinstance(o, float) and math.isnan(o):
        return None
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def save_derived(path: str | Path, model: nn.Module, cfg: RunConfig,
                 choices: dict[str, dict[str, int]], example_input: Tensor) -> Path:
    """Save a derived network as config + choices + weights (Brevitas modules do not pickle),
    atomically (a kill never leaves a half-written file)."""
    from connas4ml_torch.search.loop import atomic_save

    return atomic_save({"format": DERIVED_FORMAT, "config": cfg.to_dict(), "choices": choices,
                        "input_shape": list(example_input.shape[1:]),
                        "state_dict": model.state_dict()}, path)


def _plain(v: Any) -> bool:
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    if isinstance(v, (list, tuple)):
        return all(_plain(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _plain(x) for k, x in v.items())
    return False


def load_derived(path: str | Path, model: str | Callable[..., nn.Module] | None = None,
                 config_dir: str | None = None) -> tuple[nn.Module, RunConfig, Tensor]:
    """Rebuild a network saved by :func:`save_derived`: ``(model, config, example_input)``.

    Only tensors and plain data are unpickled (``weights_only=True``). ``model`` is the factory
    to rebuild it with (an entry point ``package.module:factory`` looked up beside
    ``config_dir`` too, or a callable) — the caller's choice, never the file's: without it, only
    this library's own reference models (``connas4ml_torch.models``) named in the file are used,
    and a file naming any other code raises :class:`UnsafeFileError`.
    """
    import connas4ml_torch as cn
    from connas4ml_torch.run.data import entry_point

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UnsafeFileError(f"{path}: not a connas4ml model file that loads without running "
                              f"code ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(blob, dict) or blob.get("format") != DERIVED_FORMAT:
        raise ValueError(f"{path} is not a network saved by connas4ml (search output model.pt)")
    raw = blob.get("config")
    if not isinstance(raw, dict) or not _plain(raw):
        raise UnsafeFileError(f"{path}: its config is not plain data")
    named = str(raw.get("model", ""))
    if model is None:
        if not named.startswith(_LIBRARY_MODELS) or not _is_library_model(named):
            raise UnsafeFileError(
                f"{path} names the model factory {named!r}; a result file may not choose the code "
                f"that runs. Name the factory yourself if you trust it: `connas4ml export {path} "
                f"--factory {named} ...` or load_derived(path, model={named!r})")
        factory = entry_point(named, "model")
    elif callable(model):
        factory = model
    else:
        factory = entry_point(str(model), "model", config_dir)
    cfg = RunConfig.from_dict({**raw, "config_dir": config_dir,
                               "model": named if ":" in named else "unknown:factory"})
    example = torch.zeros(2, *[int(n) for n in blob["input_shape"]])
    sn = cn.searchable(factory(**cfg.model_args), cfg.space, example_input=example)
    net = sn.derive(blob["choices"])
    net.load_state_dict(blob["state_dict"])
    return net.eval(), cfg, example


def _is_library_model(spec: str) -> bool:
    from connas4ml_torch import models

    return spec[len(_LIBRARY_MODELS):] in getattr(models, "__all__", ())
