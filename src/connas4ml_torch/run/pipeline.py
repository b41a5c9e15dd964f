"""One search, end to end, from a config: data -> baseline -> search -> derive -> fine-tune ->
export. This is what ``connas4ml search CONFIG.yaml`` and ``make demo`` run.

The search stage is :meth:`connas4ml_torch.Search.fit` (the one loop users call too), with a
checkpoint written atomically every epoch (and every ``schedule.checkpoint_every`` steps):
``run(cfg, resume=True)`` after an interruption skips the finished baseline and continues the
search exactly where it stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from connas4ml_torch.errors import ConfigError
from connas4ml_torch.run.config import RunConfig
from connas4ml_torch.run.data import Splits, entry_point, load_data
from connas4ml_torch.run.results import RunResult, json_default, save_derived
from connas4ml_torch.search.loop import atomic_save
from connas4ml_torch.training import TensorBatches, evaluate, loss_fn, n_weights, train

__all__ = ["run", "run_device", "CHECKPOINT", "BASELINE"]

CHECKPOINT = "checkpoint.pt"     # the search's periodic checkpoint (resume from it)
BASELINE = "baseline.json"       # the finished baseline's figures (skipped on resume)


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def _batches(split: tuple, size: int, seed: int, limit: int | None) -> TensorBatches:
    return TensorBatches(*split, size, torch.Generator().manual_seed(seed), limit)


def _baseline(cfg: RunConfig, splits: Splits, factory, cost, hls, qname: str, example,
              dev: torch.device) -> dict[str, Any]:
    """Uniform-precision quantization-aware training of the original widths."""
    import connas4ml_torch as cn

    sch = cfg.schedule
    epochs = sch.baseline_epochs if sch.baseline_epochs is not None else sch.epochs
    t0 = time.perf_counter()
    _seed_all(cfg.seed)
    bits = sch.baseline_bits
    space = cn.SearchSpace(weight_bits=[bits], act_bits=[bits], bias_bits=cfg.space.bias_bits)
    sn = cn.searchable(factory(**cfg.model_args), space, example_input=example).to(dev)
    train(sn, _batches(splits.train, sch.batch_size, cfg.seed, sch.max_steps_per_epoch),
          loss_fn(splits.task), epochs, sch.lr, f"baseline {bits}-bit", cfg.progress)
    model = sn.derive()
    return {qname: evaluate(model, *splits.test, splits.task), "parameters": n_weights(model),
            **cn.Search(sn, cost, hls).argmax_resources(), "wall_s": time.perf_counter() - t0}


SMALL_NETWORK = 1_000_000  # weights: below this, one intra-op thread (RunConfig.threads)


def run(cfg: RunConfig | dict[str, Any], splits: Splits | None = None, cost_model=None,
        resume: bool = False) -> RunResult:
    """Run the config; ``resume=True`` continues an interrupted run in the same output folder."""
    if not isinstance(cfg, RunConfig):
        cfg = RunConfig.from_dict(cfg)
    before = torch.get_num_threads()
    try:
        return _run(cfg, splits, cost_model, resume)
    finally:
        torch.set_num_threads(before)


def _threads(cfg: RunConfig, model: torch.nn.Module) -> int:
    if cfg.threads is not None:
        return cfg.threads
    small = sum(p.numel() for p in model.parameters()) < SMALL_NETWORK
    return 1 if small else torch.get_num_threads()


def run_device(cfg: RunConfig) -> torch.device:
    """``cfg.device``, refused with what to do when this machine does not have it."""
    dev = torch.device(cfg.device)
    have = {"cpu": lambda: True, "cuda": torch.cuda.is_available,
            "mps": lambda: torch.backends.mps.is_available()}.get(dev.type, lambda: True)
    if not have() or (dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count()):
        raise ConfigError(f"device: {cfg.device!r} is not available on this machine (torch "
                          f"{torch.__version__}); set device: cpu, or install a torch build "
                          "for that device")
    return dev


def _run(cfg: RunConfig, splits: Splits | None, cost_model, resume: bool) -> RunResult:
    import connas4ml_torch as cn
    from connas4ml_torch.plots import plot_breakdown, plot_probabilities

    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    sch = cfg.schedule
    t_all = time.perf_counter()
    factory = entry_point(cfg.model, "model", cfg.config_dir)  # fail before loading data
    dev = run_device(cfg)
    torch.set_num_threads(_threads(cfg, factory(**cfg.model_args)))
    _seed_all(cfg.seed)
    splits = splits or load_data(cfg)
    example = splits.train[0][:256].cpu()  # the modules are traced on the CPU, then moved
    splits = splits.to(dev)
    hls = cfg.hls
    cost = cost_model or cn.ResourceModel.default()
    lf = loss_fn(splits.task)
    qname = "accuracy" if splits.task == "classification" else "rel_mae"
    rows: dict[str, dict[str, Any]] = {}
    wall: dict[str, float] = {}

    # 1. the uniform-precision baseline (skipped when a resumed run finished it already)
    base_epochs = sch.baseline_epochs if sch.baseline_epochs is not None else sch.epochs
    if base_epochs:
        done = out / BASELINE
        if resume and done.is_file():
            rows["baseline"] = json.loads(done.read_text())
        else:
            rows["baseline"] = _baseline(cfg, splits, factory, cost, hls, qname, example, dev)
            done.write_text(json.dumps(rows["baseline"], default=json_default))
        wall["baseline_s"] = rows["baseline"]["wall_s"]

    # 2. the search: the one public loop, checkpointed
    t0 = time.perf_counter()
    _seed_all(cfg.seed)
    sn = cn.searchable(factory(**cfg.model_args), cfg.space, example_input=example).to(dev)
    train_b = _batches(splits.train, sch.batch_size, cfg.seed, sch.max_steps_per_epoch)
    val_b = _batches(splits.val, sch.batch_size, cfg.seed + 1, None)
    search = cn.Search(sn, cost, hls, constraints=cfg.budgets, weights=cfg.tradeoff,
                       settings=sch.search_settings(len(train_b)))
    opt = torch.optim.Adam(sn.weight_parameters(), sch.lr)
    ckpt = out / CHECKPOINT
    search.fit(train_b, val_b, lf, opt, sch.epochs, progress=cfg.progress, checkpoint=ckpt,
               checkpoint_every=sch.checkpoint_every, resume=resume and ckpt.is_file(),
               scheduler=sch.lr_scheduler(opt, sch.epochs * len(train_b)))
    wall["search_s"] = time.perf_counter() - t0
    # budget-targeted selection: the repaired argmax and the networks grown to fill the budgets,
    # compared on held-out validation batches with the shared weights
    score_on = _batches(splits.val, sch.batch_size, cfg.seed + 3, 16)
    sel = search.selection(search.validation_score(score_on, lf))
    if sel.note and cfg.progress:
        print(f"connas4ml: {sel.note}")
    model = search.derive(sel)
    searched = {qname: evaluate(model, *splits.test, splits.task), "parameters": n_weights(model),
                **sel.resources}
    if sch.finetune_epochs:
        t1 = time.perf_counter()
        train(model, _batches(splits.train, sch.batch_size, cfg.seed + 7, sch.max_steps_per_epoch),
              lf, sch.finetune_epochs, sch.lr / 3, "fine-tune", cfg.progress)
        searched[qname + "_finetuned"] = evaluate(model, *splits.test, splits.task)
        wall["finetune_s"] = time.perf_counter() - t1
    searched["wall_s"] = wall["search_s"] + wall.get("finetune_s", 0.0)
    rows["searched"] = searched
    atomic_save(search.state_dict(), out / "search_state.pt")
    save_derived(out / "model.pt", model, cfg, sel.choices, example)
    files = {"model": str(out / "model.pt"), "search checkpoint": str(out / "search_state.pt")}

    # 3. plots
    files["plot: resources"] = str(plot_breakdown(sel.breakdown, search.budgets,
                                                  out / "resources_per_layer.png"))
    if search.prob_history:
        files["plot: probabilities"] = str(plot_probabilities(search.prob_history,
                                                              search.choice_values(),
                                                              out / "choice_probabilities.png"))

    # 4. export with the bit-exact check
    bit_exact = None
    if cfg.export.enabled:
        t1 = time.perf_counter()
        prj = cn.export_to_hls(model.eval(), hls, out / "hls4ml_prj",
                               example_input=splits.test[0][:cfg.export.n_verify],
                               resource_model=cost, progress=cfg.progress, overwrite=True)
        wall["export_s"] = time.perf_counter() - t1
        bit_exact = bool(prj.verification.bit_exact)
        searched["bit_exact_fraction"] = prj.verification.bit_exact_fraction
        files["hls4ml project"] = str(prj.output_dir)
    wall["total_s"] = time.perf_counter() - t_all
    result = RunResult(cfg, rows, dict(search.budgets), sel.choices,
                       [str(r) for r in sel.repairs], files, bit_exact, wall, model,
                       sel.budget_used, sel.note)
    summary = {"rows": rows, "budgets": result.budgets, "chosen": result.chosen,
               "repairs": result.repairs, "budget_used": sel.budget_used, "note": sel.note,
               "candidates": sel.scores, "bit_exact": bit_exact, "wall_s": wall, "files": files}
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=json_default))
    files["results"] = str(out / "results.json")
    return result
