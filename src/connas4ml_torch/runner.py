"""One search, end to end, from a config: data -> baseline -> search -> derive -> fine-tune -> export.

This is what ``connas4ml search CONFIG.yaml`` and ``make demo`` run. The config is a plain mapping
(YAML on disk); :func:`validate_config` checks it and names the key and the expected type of
anything wrong before any work starts.
"""

from __future__ import annotations

import importlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import Tensor, nn

from connas4ml_torch.errors import ConfigError  # noqa: F401 (re-exported)
from connas4ml_torch.space.supernet import SAMPLING_MODES

# argmax is for evaluating one network, not for a search
SEARCH_SAMPLING = tuple(m for m in SAMPLING_MODES if m != "argmax")

__all__ = ["ConfigError", "validate_config", "load_config", "run", "RunResult", "DEFAULTS",
           "save_derived", "load_derived"]


# key -> (expected type(s), default); nested sections are dicts of the same
SCHEMA: dict[str, Any] = {
    "name": (str, "search"),
    "seed": (int, 0),
    "model": (str, None),                 # "package.module:factory"
    "model_args": (dict, {}),
    "data": {
        "dataset": (str, None),           # bundled: "jets" | "calo"
        "loader": (str, None),            # or "package.module:function" -> dict of splits
        "loader_args": (dict, {}),
        "n_per_class": (int, None),       # jets: None = the shipped sample
        "n_samples": (int, 4000),         # calo
        "task": (str, None),              # classification | regression (set by bundled data)
    },
    "space": {
        "width": (dict, {}),
        "weight_bits": ((list, dict, int), [8]),
        "act_bits": ((list, dict, int), [8]),
        "kernel": (dict, {}),
        "bias_bits": (int, 8),
        "tie": (list, []),
    },
    "hls": (dict, {}),
    "budgets": (dict, {}),
    "tradeoff": (dict, {}),
    "schedule": {
        "epochs": (int, 10),
        "warmup_epochs": (int, 1),
        "batch_size": (int, 256),
        "lr": (float, 3e-3),
        "arch_lr": (float, 3e-2),
        "dual_lr": (float, 0.2),
        "temperature": (list, [1.0, 0.2]),
        "finetune_epochs": (int, 2),
        "baseline_epochs": (int, None),   # None: same as epochs; 0: no baseline
        "baseline_bits": (int, 8),
        "max_steps_per_epoch": (int, None),
        "margin_quantile": (float, None),
        "arch_every": (int, 1),           # architecture update on every k-th step
        "sampling": (str, "auto"),        # auto | softmax | gumbel | gumbel_hard | reinforce
    },
    "export": {
        "enabled": (bool, True),
        "n_verify": (int, 256),
    },
    "output": (str, "runs/search"),
    "progress": (bool, True),
    "config_dir": (str, None),            # set by load_config: entry points may live beside it
    "sweep_value": ((int, float, str), None),  # set by sweep_configs: the swept budget/weight
}
DEFAULTS = SCHEMA


def _type_name(t) -> str:
    if isinstance(t, tuple):
        return " or ".join(x.__name__ for x in t)
    return t.__name__


def _check(section: dict, schema: dict, prefix: str) -> dict:
    if not isinstance(section, dict):
        raise ConfigError(f"config key {prefix.rstrip('.') or '<top>'}: expected a mapping, "
                          f"got {type(section).__name__}")
    unknown = set(section) - set(schema)
    if unknown:
        raise ConfigError(f"config: unknown key(s) {', '.join(prefix + k for k in sorted(unknown))}; "
                          f"allowed under {prefix.rstrip('.') or 'the top level'}: {', '.join(schema)}")
    out = {}
    for key, spec in schema.items():
        if isinstance(spec, dict):
            out[key] = _check(section.get(key) or {}, spec, f"{prefix}{key}.")
            continue
        types, default = spec
        value = section.get(key, default)
        if value is None:
            out[key] = None
            continue
        ok_types = types if isinstance(types, tuple) else (types,)
        if float in ok_types and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in ok_types:
            ok = False
        else:
            ok = isinstance(value, ok_types)
        if not ok:
            raise ConfigError(f"config key {prefix}{key}: expected {_type_name(types)}, got "
                              f"{type(value).__name__} {value!r}")
        out[key] = value
    return out


def validate_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """Defaults filled in and types checked; semantic checks that need no heavy work too."""
    out = _check(dict(cfg), SCHEMA, "")
    if not out["model"]:
        raise ConfigError("config key model: expected str 'package.module:factory', got nothing")
    if ":" not in out["model"]:
        raise ConfigError(f"config key model: expected 'package.module:factory', got {out['model']!r}")
    data = out["data"]
    if bool(data["dataset"]) == bool(data["loader"]):
        raise ConfigError("config key data: give exactly one of data.dataset (jets | calo) and "
                          "data.loader ('package.module:function')")
    if data["dataset"] and data["dataset"] not in ("jets", "calo"):
        raise ConfigError(f"config key data.dataset: expected 'jets' or 'calo', got {data['dataset']!r}")
    if data["task"] not in (None, "classification", "regression"):
        raise ConfigError("config key data.task: expected 'classification' or 'regression', got "
                          f"{data['task']!r}")
    if out["schedule"]["sampling"] not in SEARCH_SAMPLING:
        raise ConfigError("config key schedule.sampling: expected one of "
                          f"{', '.join(SEARCH_SAMPLING)}, got {out['schedule']['sampling']!r}")
    t = out["schedule"]["temperature"]
    if len(t) != 2 or not all(isinstance(v, (int, float)) and v > 0 for v in t):
        raise ConfigError(f"config key schedule.temperature: expected [start, end] > 0, got {t!r}")
    for key in ("epochs", "batch_size"):
        if out["schedule"][key] < 1:
            raise ConfigError(f"config key schedule.{key}: expected a positive int")
    from connas4ml_torch.hardware.config import HLSConfig
    from connas4ml_torch.search.cost import canonical_resource
    from connas4ml_torch.space.spec import SearchSpace

    try:
        HLSConfig.from_dict(out["hls"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config key hls: {exc}") from exc
    try:
        SearchSpace(**out["space"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config key space: {exc}") from exc
    for section in ("budgets", "tradeoff"):
        for k, v in out[section].items():
            try:
                canonical_resource(k)
            except ValueError as exc:
                raise ConfigError(f"config key {section}.{k}: {exc}") from exc
            if section == "tradeoff" and not isinstance(v, (int, float)):
                raise ConfigError(f"config key tradeoff.{k}: expected a number, got {v!r}")
            if section == "budgets" and not isinstance(v, (int, float, str)):
                raise ConfigError(f"config key budgets.{k}: expected a number or 'N%', got {v!r}")
    return out


def read_yaml(path: str | Path, error: type[Exception] = ConfigError) -> Any:
    """A YAML file's content; a missing file or bad YAML is an error that names the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({exc})") from None


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and validate a YAML config file."""
    path = Path(path)
    raw = read_yaml(path, ConfigError)
    if isinstance(raw, dict):
        raw.setdefault("config_dir", str(path.resolve().parent))
    try:
        return validate_config(raw or {})
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def entry_point(spec: str, what: str, config_dir: str | None = None) -> Callable:
    """Import ``package.module:attr`` with an error that says which config key was wrong.

    A module that is not importable is looked for beside the config file too, so a config can
    name ``my_task:load`` for a ``my_task.py`` in its own folder.
    """
    import sys

    module, _, attr = spec.partition(":")
    try:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not config_dir or exc.name != module.split(".")[0]:
                raise
            sys.path.insert(0, config_dir)
            try:
                mod = importlib.import_module(module)
            finally:
                sys.path.remove(config_dir)
        obj = getattr(mod, attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"config key {what}: cannot import {spec!r} ({exc})") from exc
    if not callable(obj):
        raise ConfigError(f"config key {what}: {spec!r} is not callable")
    return obj


# ---- data ------------------------------------------------------------------------------------
@dataclass
class Splits:
    train: tuple[Tensor, Tensor]
    val: tuple[Tensor, Tensor]
    test: tuple[Tensor, Tensor]
    task: str
    meta: dict[str, Any] = field(default_factory=dict)


def load_data(cfg: dict[str, Any]) -> Splits:
    """The train/val/test tensors the config asks for (bundled dataset or user loader)."""
    d = cfg["data"]
    seed = cfg["seed"]
    if d["loader"]:
        raw = entry_point(d["loader"], "data.loader", cfg["config_dir"])(**d["loader_args"])
        try:
            parts = {k: tuple(torch.as_tensor(np.asarray(a)) for a in raw[k]) for k in ("train", "val", "test")}
        except (KeyError, TypeError) as exc:
            raise ConfigError("data.loader must return {'train': (x, y), 'val': (x, y), "
                              f"'test': (x, y)}} ({exc})") from exc
        task = d["task"] or ("classification" if not parts["train"][1].is_floating_point() else "regression")
        return Splits(parts["train"], parts["val"], parts["test"], task)
    if d["dataset"] == "jets":
        from connas4ml_torch.datasets import jets

        data = jets.load_jets(n_per_class=d["n_per_class"], seed=seed, progress=cfg["progress"])
        tr, va, te = jets.train_val_test_split(data, seed=seed)
        (xtr, xva, xte), _, _ = jets.standardize(tr.X, va.X, te.X)
        conv = lambda x, y: (torch.as_tensor(np.asarray(x, np.float32)), torch.as_tensor(np.asarray(y)).long())  # noqa: E731
        return Splits(conv(xtr, tr.y), conv(xva, va.y), conv(xte, te.y), "classification",
                      {"classes": list(data.class_names)})
    from connas4ml_torch.datasets import calo

    data = calo.load_calo(d["n_samples"], seed=seed, progress=cfg["progress"])
    x = torch.as_tensor(np.asarray(data.X, np.float32))
    y = torch.as_tensor(np.asarray(data.y, np.float32))
    x = torch.log1p(x.clamp_min(0))  # energies span decades: log scale keeps the grid useful
    y_scale = float(y.mean())
    y = y / y_scale
    n = len(x)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    a, b = int(0.6 * n), int(0.8 * n)
    idx = (perm[:a], perm[a:b], perm[b:])
    return Splits(*((x[i], y[i]) for i in idx), "regression", {"y_scale": y_scale})


# ---- training helpers ---------------------------------------------------------------------------
def loss_fn(task: str) -> Callable[[Tensor, Tensor], Tensor]:
    return F.cross_entropy if task == "classification" else (lambda out, y: F.mse_loss(out.reshape(y.shape), y))


@torch.no_grad()
def per_sample_scores(model: nn.Module, x: Tensor, y: Tensor, task: str,
                      batch: int = 4096) -> Tensor:
    """Per sample: 1.0/0.0 correct (classification) or |pred - y| / |y| (regression)."""
    was = model.training
    model.eval()
    outs = torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
    model.train(was)
    if task == "classification":
        return (outs.argmax(1) == y).float()
    return (outs.reshape(y.shape) - y).abs() / y.abs().clamp_min(1e-6)


def evaluate(model: nn.Module, x: Tensor, y: Tensor, task: str, batch: int = 4096) -> float:
    """Accuracy (classification) or mean absolute relative error (regression)."""
    return float(per_sample_scores(model, x, y, task, batch).mean())


def batches(x: Tensor, y: Tensor, size: int, gen: torch.Generator, limit: int | None = None):
    perm = torch.randperm(len(x), generator=gen)
    starts = range(0, len(x) - size + 1, size)
    for i in starts[:limit] if limit is not None else starts:
        idx = perm[i:i + size]
        yield x[idx], y[idx]


def train(model: nn.Module, splits: Splits, epochs: int, lr: float, batch: int, seed: int,
          limit: int | None = None, desc: str = "train", progress: bool = True,
          params=None) -> nn.Module:
    """Plain training loop (used for the baseline QAT and the short fine-tune)."""
    from tqdm.auto import tqdm

    lf = loss_fn(splits.task)
    opt = torch.optim.Adam(params if params is not None else model.parameters(), lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, epochs))
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for ep in range(epochs):
        for xb, yb in tqdm(list(batches(*splits.train, batch, gen, limit)),
                           desc=f"{desc} {ep + 1}/{epochs}", disable=not progress, leave=False):
            weight_step(model, opt, lf, xb, yb, f"{desc} epoch {ep + 1}")
        sched.step()
    return model


def weight_step(model: nn.Module, opt: torch.optim.Optimizer, lf: Callable, x: Tensor, y: Tensor,
                where: str) -> float:
    """One optimizer step on a training batch; a non-finite loss stops with a clear error."""
    opt.zero_grad()
    loss = lf(model(x), y)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{where}: training loss is {float(loss.detach())}; lower the "
                                 "learning rate or check the data")
    loss.backward()
    opt.step()
    return float(loss.detach())


def n_weights(model: nn.Module) -> int:
    """Weights and biases (quantizer thresholds excluded), as a parameter count is usually meant."""
    return sum(p.numel() for n, p in model.named_parameters() if n.endswith(("weight", "bias")))


# ---- the run ---------------------------------------------------------------------------------
@dataclass
class RunResult:
    config: dict[str, Any]
    rows: dict[str, dict[str, Any]]
    budgets: dict[str, float]
    chosen: dict[str, dict[str, int]]
    repairs: list[str]
    files: dict[str, str]
    bit_exact: bool | None
    wall_s: dict[str, float]
    model: nn.Module | None = None

    def table(self) -> str:
        """The printed summary: budgets against predictions, quality, parameters, time, files."""
        base, ours = self.rows.get("baseline", {}), self.rows["searched"]
        qname = "accuracy" if "accuracy" in ours else "rel_mae"
        lines = [f"{'':<24}{'baseline':>14}{'searched':>14}{'budget':>14}"]
        for r in ("LUT", "FF", "BRAM_18K", "DSP", "latency"):
            b = self.budgets.get(r)
            lines.append(f"{'predicted ' + r:<24}{base.get(r, float('nan')):>14,.0f}"
                         f"{ours[r]:>14,.0f}{(f'{b:,.0f}' if b is not None else '-'):>14}"
                         + ("   ok" if b is not None and ours[r] <= b else ("   OVER" if b is not None else "")))
        for key, label in ((qname, qname + " (no fine-tune)"), (qname + "_finetuned", qname + " (fine-tuned)")):
            if key in ours:
                lines.append(f"{label:<24}{base.get(qname, float('nan')):>14.4f}{ours[key]:>14.4f}")
        lines.append(f"{'parameters':<24}{base.get('parameters', 0):>14,}{ours['parameters']:>14,}")
        lines.append(f"{'wall time [s]':<24}{base.get('wall_s', 0):>14.1f}{ours['wall_s']:>14.1f}")
        if self.bit_exact is not None:
            lines.append(f"{'hls4ml bit-exact':<24}{'':>14}{str(self.bit_exact):>14}")
        lines.append("chosen: " + "; ".join(f"{k}: " + ",".join(f"{a}={b}" for a, b in v.items())
                                            for k, v in self.chosen.items()))
        for rep in self.repairs:
            lines.append(f"repair: {rep}")
        for what, path in self.files.items():
            lines.append(f"{what:<24}{path}")
        return "\n".join(lines)


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def run(cfg: dict[str, Any], splits: Splits | None = None, cost_model=None) -> RunResult:
    """Run the config (already validated, or raw: validated here)."""
    from tqdm.auto import tqdm

    import connas4ml_torch as cn
    from connas4ml_torch.plots import plot_breakdown, plot_probabilities

    cfg = validate_config(cfg)  # idempotent: a validated config passes unchanged
    out = Path(cfg["output"])
    out.mkdir(parents=True, exist_ok=True)
    sch = cfg["schedule"]
    progress = cfg["progress"]
    seed = cfg["seed"]
    t_all = time.perf_counter()
    factory = entry_point(cfg["model"], "model", cfg["config_dir"])  # fail before loading data
    _seed_all(seed)
    splits = splits or load_data(cfg)
    hls = cn.HLSConfig.from_dict(cfg["hls"])
    cost = cost_model or cn.ResourceModel.default()
    lf = loss_fn(splits.task)
    qname = "accuracy" if splits.task == "classification" else "rel_mae"
    example = splits.train[0][:256]
    rows: dict[str, dict[str, Any]] = {}
    wall: dict[str, float] = {}

    # 1. the uniform-precision baseline (quantization-aware training of the original widths)
    base_epochs = sch["baseline_epochs"] if sch["baseline_epochs"] is not None else sch["epochs"]
    if base_epochs:
        t0 = time.perf_counter()
        _seed_all(seed)
        bits = sch["baseline_bits"]
        base_space = cn.SearchSpace(weight_bits=[bits], act_bits=[bits], bias_bits=cfg["space"]["bias_bits"])
        base_sn = cn.searchable(factory(**cfg["model_args"]), base_space, example_input=example)
        train(base_sn, splits, base_epochs, sch["lr"], sch["batch_size"], seed,
              sch["max_steps_per_epoch"], f"baseline {bits}-bit", progress)
        base_search = cn.Search(base_sn, cost, hls)
        base_model = base_sn.derive()
        rows["baseline"] = {qname: evaluate(base_model, *splits.test, splits.task),
                            "parameters": n_weights(base_model), **base_search.argmax_resources(),
                            "wall_s": time.perf_counter() - t0}
        wall["baseline_s"] = rows["baseline"]["wall_s"]

    # 2. the search
    t0 = time.perf_counter()
    _seed_all(seed)
    sn = cn.searchable(factory(**cfg["model_args"]), cn.SearchSpace(**cfg["space"]), example_input=example)
    steps_per_epoch = len(splits.train[0]) // sch["batch_size"]
    if sch["max_steps_per_epoch"]:
        steps_per_epoch = min(steps_per_epoch, sch["max_steps_per_epoch"])
    search = cn.Search(sn, cost, hls, constraints=cfg["budgets"], weights=cfg["tradeoff"],
                       arch_lr=sch["arch_lr"], dual_lr=sch["dual_lr"],
                       warmup_steps=sch["warmup_epochs"] * steps_per_epoch,
                       temperature=tuple(sch["temperature"]),
                       anneal_steps=max(1, (sch["epochs"] - sch["warmup_epochs"]) * steps_per_epoch
                                        // sch["arch_every"]),
                       margin_quantile=sch["margin_quantile"], arch_every=sch["arch_every"])
    sn.set_sampling(sch["sampling"])
    opt = torch.optim.Adam(sn.weight_parameters(), sch["lr"])
    gen = torch.Generator().manual_seed(seed)
    vgen = torch.Generator().manual_seed(seed + 1)

    def val_stream():
        while True:
            yield from batches(*splits.val, sch["batch_size"], vgen)

    val = val_stream()
    for ep in range(sch["epochs"]):
        bar = tqdm(list(batches(*splits.train, sch["batch_size"], gen, sch["max_steps_per_epoch"])),
                   desc=f"search {ep + 1}/{sch['epochs']}", disable=not progress, leave=False)
        for xb, yb in bar:
            xv, yv = next(val)
            search.arch_step(lambda xv=xv, yv=yv: lf(sn(xv), yv))
            weight_step(sn, opt, lf, xb, yb, f"search epoch {ep + 1}")
    wall["search_s"] = time.perf_counter() - t0
    model = search.derive()
    searched = {qname: evaluate(model, *splits.test, splits.task), "parameters": n_weights(model),
                **search.chosen_resources}
    if sch["finetune_epochs"]:
        t1 = time.perf_counter()
        train(model, splits, sch["finetune_epochs"], sch["lr"] / 3, sch["batch_size"], seed + 7,
              sch["max_steps_per_epoch"], "fine-tune", progress)
        searched[qname + "_finetuned"] = evaluate(model, *splits.test, splits.task)
        wall["finetune_s"] = time.perf_counter() - t1
    searched["wall_s"] = wall["search_s"] + wall.get("finetune_s", 0.0)
    rows["searched"] = searched
    torch.save(search.state_dict(), out / "search_state.pt")
    save_derived(out / "model.pt", model, cfg, search.chosen, example)
    files = {"model": str(out / "model.pt"), "search checkpoint": str(out / "search_state.pt")}

    # 3. plots
    files["plot: resources"] = str(plot_breakdown(search.chosen_breakdown(), search.budgets,
                                                  out / "resources_per_layer.png"))
    if search.prob_history:
        files["plot: probabilities"] = str(plot_probabilities(search.prob_history,
                                                              search.choice_values(),
                                                              out / "choice_probabilities.png"))

    # 4. export with the bit-exact check
    bit_exact = None
    if cfg["export"]["enabled"]:
        t1 = time.perf_counter()
        prj = cn.export_to_hls(model.eval(), hls, out / "hls4ml_prj",
                               example_input=splits.test[0][:cfg["export"]["n_verify"]],
                               resource_model=cost, progress=progress)
        wall["export_s"] = time.perf_counter() - t1
        bit_exact = bool(prj.verification.bit_exact)
        searched["bit_exact_fraction"] = prj.verification.bit_exact_fraction
        files["hls4ml project"] = str(prj.output_dir)
    wall["total_s"] = time.perf_counter() - t_all
    result = RunResult(cfg, rows, dict(search.budgets), search.chosen, [str(r) for r in search.repairs],
                       files, bit_exact, wall, model)
    summary = {"rows": rows, "budgets": result.budgets, "chosen": result.chosen,
               "repairs": result.repairs, "bit_exact": bit_exact, "wall_s": wall, "files": files}
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=_json_default))
    files["results"] = str(out / "results.json")
    return result


def save_derived(path: str | Path, model: nn.Module, cfg: dict[str, Any],
                 choices: dict[str, dict[str, int]], example_input: Tensor) -> Path:
    """Save a derived network as config + choices + weights (Brevitas modules do not pickle)."""
    path = Path(path)
    torch.save({"format": "connas4ml-derived-v1", "config": cfg, "choices": choices,
                "input_shape": list(example_input.shape[1:]), "state_dict": model.state_dict()}, path)
    return path


def load_derived(path: str | Path) -> tuple[nn.Module, dict[str, Any], Tensor]:
    """Rebuild a network saved by :func:`save_derived`: ``(model, config, example_input)``.

    Only tensors and plain containers are unpickled (``weights_only=True``); the model is rebuilt
    from the config's ``model`` entry point, so the module named there must be importable.
    """
    import connas4ml_torch as cn

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    blob = torch.load(path, weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != "connas4ml-derived-v1":
        raise ValueError(f"{path} is not a network saved by connas4ml (search output model.pt)")
    cfg = blob["config"]
    example = torch.zeros(2, *blob["input_shape"])
    factory = entry_point(cfg["model"], "model", cfg.get("config_dir"))
    sn = cn.searchable(factory(**cfg["model_args"]), cn.SearchSpace(**cfg["space"]), example_input=example)
    model = sn.derive(blob["choices"])
    model.load_state_dict(blob["state_dict"])
    return model.eval(), cfg, example


def _json_default(o):
    if isinstance(o, float) and math.isnan(o):
        return None
    if hasattr(o, "item"):
        return o.item()
    return str(o)


# ---- Pareto sweeps over budgets / trade-off weights ----------------------------------------------
def sweep_job(cfg: dict[str, Any]) -> dict[str, Any]:
    """One search of a sweep (runs in a worker): the flat figures of the searched network."""
    cfg = validate_config(cfg)
    torch.set_num_threads(1)  # one search per worker; the workers share the cores
    result = run(cfg)
    ours = result.rows["searched"]
    quality = "accuracy" if "accuracy" in ours else "rel_mae"
    out = {k: ours[k] for k in ("LUT", "FF", "BRAM_18K", "DSP", "latency", "parameters") if k in ours}
    out[quality] = ours.get(quality + "_finetuned", ours[quality])
    out["search_s"] = result.wall_s["search_s"]
    out["sweep_value"] = cfg["sweep_value"]
    out["output"] = cfg["output"]
    return out


def sweep_configs(cfg: dict[str, Any], budgets: dict[str, list[Any]] | None = None,
                  tradeoff: dict[str, list[float]] | None = None) -> list[dict[str, Any]]:
    """One config per budget (or trade-off weight) value, each with its own output folder."""
    if bool(budgets) == bool(tradeoff):
        raise ValueError("a sweep varies either budgets or trade-off weights (give one of them)")
    axis, values = ("budgets", budgets) if budgets else ("tradeoff", tradeoff)
    if len(values) != 1:
        raise ValueError(f"a sweep varies one resource at a time, got {sorted(values)}")
    ((resource, choices),) = values.items()
    out = []
    for v in choices:
        c = json.loads(json.dumps(cfg))  # deep copy of plain data
        c[axis] = {**c.get(axis, {}), resource: v}
        c["output"] = str(Path(cfg["output"]) / f"{axis}_{resource}_{v}".replace("%", "pct"))
        c["progress"] = False
        c["sweep_value"] = v
        out.append(c)
    return out
