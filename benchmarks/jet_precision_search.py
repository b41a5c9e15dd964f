"""Precision (bit-width) search of hls4ml's jet-tagging MLP 16-64-32-32-5 under LUT budgets
(issues 5 and 6): accuracy against the float and the uniform 8-bit QAT baselines, without and
with a short fine-tune; predicted resources against each budget; search wall time against one
QAT training of the baseline for the same epochs.

Search space: weight bits 2..8 of every Linear and activation bits 2..8 of the input quantizer
and every ReLU (``--widths`` adds the widths fc1 {16,32,48,64}, fc2/fc3 {8,16,24,32}). Cost
model: ``ResourceModel.default()``; hls4ml: Vitis, xcvu13p, io_parallel, Latency, reuse factor 1.
Budgets: LUT = cheapest + f * (uniform 8-bit - cheapest), f in ``--fractions`` (0.2, 0.5, 0.8),
both ends predicted by the cost model for this space.

Timing on a shared machine: the baseline QAT is run again right before each budget's search
(same seed, same epochs) and each search is divided by its neighbour; the median ratio is
reported.

The search loop is the library's one loop, ``Search.fit`` (same ``Search`` arguments, same
bi-level schedule) written out here because ``run()`` has no device argument; the helpers below
are shared with ``calo_filter_search.py`` and ``peer_trial_search.py``.

    python benchmarks/jet_precision_search.py --size tiny|small|full [--device cpu|cuda]
           [--widths] [--no-write]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# size -> data and schedule. tiny: CI smoke; small: the shipped sample on CPU; full: GPU.
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"n_per_class": 100, "epochs": 1, "warmup_epochs": 0, "finetune_epochs": 1,
             "batch_size": 64},
    "small": {"n_per_class": None, "epochs": 15, "warmup_epochs": 2, "finetune_epochs": 3,
              "batch_size": 256},
    "full": {"n_per_class": 50_000, "epochs": 30, "warmup_epochs": 3, "finetune_epochs": 5,
             "batch_size": 1024},
}
# as the jet demo config (src/connas4ml_torch/configs/jet_demo.yaml)
SCHEDULE = {"lr": 3e-3, "arch_lr": 3e-2, "dual_lr": 0.2, "temperature": (1.0, 0.2)}
BITS = list(range(2, 9))
SANDWICH = {"auto": None, "on": True, "off": False}  # --sandwich -> Search(sandwich=...)
WIDTHS = {"fc1": [16, 32, 48, 64], "fc2": [8, 16, 24, 32], "fc3": [8, 16, 24, 32]}
WEIGHT_LAYERS = ("fc1", "fc2", "fc3", "out")
ACT_LAYERS = ("input", "relu1", "relu2", "relu3")
RES = ("LUT", "FF", "BRAM_18K", "DSP", "latency")


# ---- helpers shared by the benchmark scripts ------------------------------------------------
def pick_device(name: str, cpu_threads: int | None = None):
    """The torch device; on the CPU optionally pin the intra-op threads (tiny networks run as
    fast on one thread, and busy-waiting threads on an oversubscribed machine swing timings)."""
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device on this machine")
    if name == "cpu" and cpu_threads:
        torch.set_num_threads(cpu_threads)
    return torch.device(name)


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def seed_all(seed: int) -> None:
    import numpy as np
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)


def load_cost_model():
    """The default surrogate (imported from its module: the package's lazy export may lag)."""
    from connas4ml_torch.hardware.model import ResourceModel

    return ResourceModel.default()


def batches(split, batch: int, seed: int, limit: int | None = None):
    """The library's reproducible loader over a (x, y) split (as the run pipeline makes it)."""
    import torch

    from connas4ml_torch.training import TensorBatches

    return TensorBatches(*split, batch, torch.Generator().manual_seed(seed), limit)


def timed_train(model, splits, epochs: int, lr: float, batch: int, seed: int, device,
                limit: int | None = None, desc: str = "train") -> float:
    """``training.train`` (the pipeline's baseline/fine-tune loop), timed with device syncs."""
    from connas4ml_torch.training import loss_fn, train

    sync(device)
    t0 = time.perf_counter()
    train(model, batches(splits.train, batch, seed, limit), loss_fn(splits.task), epochs, lr,
          desc, progress=False)
    sync(device)
    return time.perf_counter() - t0


def qat_baseline(factory, splits, epochs: int, batch: int, seed: int, device, bits: int = 8,
                 bias_bits: int = 8, limit: int | None = None, lr: float = SCHEDULE["lr"]):
    """Uniform-precision QAT of the original widths, as the run pipeline's baseline.

    Returns ``(derived Brevitas model, supernet, seconds)``; the time covers building the
    quantized network and training it."""
    import connas4ml_torch as cn

    sync(device)
    t0 = time.perf_counter()
    seed_all(seed)
    space = cn.SearchSpace(weight_bits=[bits], act_bits=[bits], bias_bits=bias_bits)
    sn = cn.searchable(factory(), space, example_input=splits.train[0][:256].cpu()).to(device)
    timed_train(sn, splits, epochs, lr, batch, seed, device, limit, f"baseline {bits}-bit")
    sync(device)
    seconds = time.perf_counter() - t0
    return sn.derive().to(device), sn, seconds


def brevitas_qat_s(factory, splits, epochs: int, batch: int, seed: int, device, bits: int = 8,
                   limit: int | None = None, lr: float = SCHEDULE["lr"]) -> float:
    """Seconds of the same uniform QAT with Brevitas' own layers (the derived network of an
    untrained uniform supernet): issue 15's reference, 'whole search <= 1.5x one Brevitas QAT'."""
    import connas4ml_torch as cn

    seed_all(seed)
    space = cn.SearchSpace(weight_bits=[bits], act_bits=[bits])
    net = cn.searchable(factory(), space, example_input=splits.train[0][:256].cpu()).derive()
    return timed_train(net.to(device), splits, epochs, lr, batch, seed, device, limit,
                       f"Brevitas {bits}-bit")


def search_run(factory, splits, space, cost, hls, *, budgets=None, tradeoff=None, epochs: int,
               warmup_epochs: int, batch: int, seed: int, device, limit: int | None = None,
               lr: float = SCHEDULE["lr"], arch_lr: float = SCHEDULE["arch_lr"],
               dual_lr: float = SCHEDULE["dual_lr"], temperature=SCHEDULE["temperature"],
               margin_quantile: float | None = None, arch_every: int = 1,
               sampling: str = "softmax", sandwich: bool | None = None,
               settle_epochs: int = 0, lr_schedule: str = "constant") -> dict[str, Any]:
    """One search as the run pipeline's (``Search.fit``, the library's one loop), on
    ``device``; then ``derive()``.

    Returns ``{"model", "search", "selection", "search_s", "sandwich"}``; ``search_s`` covers building the
    supernet and its cost tables and the bi-level training (not the derivation)."""
    import torch

    import connas4ml_torch as cn
    from connas4ml_torch.run.config import Schedule
    from connas4ml_torch.training import loss_fn

    lf = loss_fn(splits.task)
    sync(device)
    t0 = time.perf_counter()
    seed_all(seed)
    sn = cn.searchable(factory(), space, example_input=splits.train[0][:256].cpu()).to(device)
    train_b = batches(splits.train, batch, seed, limit)
    val_b = batches(splits.val, batch, seed + 1)
    # epochs -> steps (warm-up, annealing, settle phase) exactly as a run config's schedule
    schedule = Schedule(epochs=epochs, warmup_epochs=warmup_epochs, arch_lr=arch_lr,
                        dual_lr=dual_lr, temperature=list(temperature),
                        margin_quantile=margin_quantile, arch_every=arch_every, sampling=sampling,
                        sandwich=sandwich, settle_epochs=settle_epochs, lr_schedule=lr_schedule)
    search = cn.Search(sn, cost, hls, constraints=budgets or {}, weights=tradeoff or {},
                       settings=schedule.search_settings(len(train_b)))
    opt = torch.optim.Adam(sn.weight_parameters(), lr)
    search.fit(train_b, val_b, lf, opt, epochs, progress=False,
               scheduler=schedule.lr_scheduler(opt, epochs * len(train_b)))
    sync(device)
    search_s = time.perf_counter() - t0
    # as the run pipeline: the repaired argmax and the networks grown to fill the budget,
    # compared on held-out validation batches with the shared weights
    sel = search.selection(search.validation_score(batches(splits.val, batch, seed + 3, 16), lf))
    model = search.derive(sel).to(device)
    return {"model": model, "search": search, "selection": sel, "search_s": search_s,
            "sandwich": search.sandwich}


def choice_index(tables, choices: dict[str, dict[str, int]]) -> dict[int, int]:
    """``{layer: {kind: value}}`` -> the cost tables' variable indices (for ``cost_at``)."""
    out = {}
    for v, var in enumerate(tables.variables):
        layer, kind = var.owners[0]
        value = choices.get(layer, {}).get(kind)
        out[v] = var.values.index(value) if value is not None else len(var.values) - 1
    return out


def predicted(tables, choices: dict[str, dict[str, int]]) -> dict[str, float]:
    c = tables.cost_at(choice_index(tables, choices))
    return dict(zip(tables.resources, (float(x) for x in c)))


def quiet_domain_warnings() -> list[str]:
    """Show each out-of-domain warning of the cost model once; return the list to report."""
    seen: list[str] = []
    show = warnings.showwarning

    def once(message, category, filename, lineno, file=None, line=None):
        text = str(message)
        if text not in seen:
            seen.append(text)
            show(message, category, filename, lineno, file, line)

    warnings.showwarning = once
    warnings.simplefilter("always")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    return seen


# ---- jets --------------------------------------------------------------------------------
def load_jet_splits(n_per_class: int | None, seed: int = 0, jobs: int = 1):
    """As ``run.load_data`` for ``dataset: jets``, with parallel generation for big sets."""
    import numpy as np
    import torch

    from connas4ml_torch.datasets import jets
    from connas4ml_torch.run import Splits

    data = jets.load_jets(n_per_class=n_per_class, seed=seed, n_jobs=jobs, progress=True)
    tr, va, te = jets.train_val_test_split(data, seed=seed)
    (xtr, xva, xte), _, _ = jets.standardize(tr.X, va.X, te.X)

    def conv(x, y):
        return (torch.as_tensor(np.asarray(x, np.float32)), torch.as_tensor(np.asarray(y)).long())

    return Splits(conv(xtr, tr.y), conv(xva, va.y), conv(xte, te.y), "classification",
                  {"classes": list(data.class_names)})


def jet_space(widths: bool):
    import connas4ml_torch as cn

    return cn.SearchSpace(width=dict(WIDTHS) if widths else {}, weight_bits=BITS, act_bits=BITS)


def jet_hls():
    import connas4ml_torch as cn

    return cn.HLSConfig(backend="Vitis", part="xcvu13p-flga2577-2-e", clock_period=5,
                        io_type="io_parallel", strategy="Latency", reuse_factor=1)


def space_ends(space, cost, hls, example) -> tuple[dict[str, float], dict[str, float]]:
    """Predicted resources of the cheapest network of the space and of the uniform 8-bit one
    (widest widths, 8 bits everywhere)."""
    import connas4ml_torch as cn
    from connas4ml_torch.models import jet_mlp

    sn = cn.searchable(jet_mlp(), space, example_input=example)
    s = cn.Search(sn, cost, hls)
    u8 = {"input": {"bits": 8}}
    for layer in WEIGHT_LAYERS:
        u8[layer] = {"weight_bits": 8}
    for layer in ACT_LAYERS[1:]:
        u8[layer] = {"bits": 8}
    return dict(s.minimum), predicted(s.tables, u8)


def fixed_space(choices: dict[str, dict[str, int]], bias_bits: int = 8):
    """The search space that holds exactly one network (``choices``)."""
    import connas4ml_torch as cn

    width = {n: [c["width"]] for n, c in choices.items() if "width" in c}
    wbits = {n: [c["weight_bits"]] for n, c in choices.items() if "weight_bits" in c}
    abits = {n: [c["bits"]] for n, c in choices.items() if "bits" in c}
    return cn.SearchSpace(width=width, weight_bits=wbits, act_bits=abits, bias_bits=bias_bits)


def train_fixed(factory, choices, splits, epochs: int, finetune: int, batch: int, seed: int,
                device, lr: float = SCHEDULE["lr"], limit: int | None = None):
    """A fixed network (one point of the space) trained like the searched one: quantization-
    aware training for the search's epochs, then the same short fine-tune. Returns the model."""
    import connas4ml_torch as cn

    seed_all(seed)
    sn = cn.searchable(factory(), fixed_space(choices),
                       example_input=splits.train[0][:256].cpu()).to(device)
    timed_train(sn, splits, epochs, lr, batch, seed, device, limit, desc="fixed")
    model = sn.derive().to(device)
    timed_train(model, splits, finetune, lr / 3, batch, seed + 7, device, limit, desc="fine-tune")
    return model


def fixed_baselines(tables, budgets: dict[str, float], n_random: int, seed: int
                    ) -> dict[str, dict[str, dict[str, int]]]:
    """The networks a search must beat at a budget: the largest UNIFORM one that fits (one
    bit width for every layer and the same width index for every searched width, the widest
    first) and ``n_random`` random points of the space that fit. ``{name: choices}``."""
    import random

    def fits(choice: dict[int, int]) -> bool:
        cost = tables.cost_at(choice)
        return all(float(cost[tables.resources.index(r)]) <= b for r, b in budgets.items())

    out: dict[str, dict[str, dict[str, int]]] = {}
    variables = tables.variables
    bits_vals = sorted({v for var in variables for v in var.values if var.owners[0][1] != "width"})
    n_width = max((len(var.values) for var in variables if var.owners[0][1] == "width"), default=1)
    uniform = []
    for j in range(n_width - 1, -1, -1):      # width index from the widest
        for b in reversed(bits_vals):          # bits from the most precise
            choice = {}
            for v, var in enumerate(variables):
                if var.owners[0][1] == "width":
                    choice[v] = min(j, len(var.values) - 1)
                else:
                    choice[v] = var.values.index(b) if b in var.values else len(var.values) - 1
            uniform.append(choice)
    best = max((c for c in uniform if fits(c)), default=None,
               key=lambda c: float(tables.cost_at(c)[tables.resources.index(next(iter(budgets)))]))
    if best is not None:
        out["uniform"] = tables.choice_to_layers(best)
    rng = random.Random(seed)
    for k in range(n_random):
        for _ in range(10_000):
            choice = {v: rng.randrange(len(var.values)) for v, var in enumerate(variables)}
            if fits(choice):
                out[f"random{k + 1}"] = tables.choice_to_layers(choice)
                break
    return out


def bits_of(chosen: dict[str, dict[str, int]], widths: bool) -> str:
    w = "/".join(str(chosen[n]["weight_bits"]) for n in WEIGHT_LAYERS)
    a = "/".join(str(chosen[n]["bits"]) for n in ACT_LAYERS)
    out = f"w {w}, a {a}"
    if widths:
        out += ", n " + "/".join(str(chosen[n]["width"]) for n in WIDTHS)
    return out


def main() -> None:
    from _common import record

    from connas4ml_torch.run.config import LR_SCHEDULES
    from connas4ml_torch.search import SEARCH_SAMPLING

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=list(SIZES), default="small")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--widths", action="store_true", help="search widths too")
    ap.add_argument("--fractions", default="0.2,0.5,0.8",
                    help="LUT budgets between the cheapest (0) and uniform 8-bit (1) network")
    ap.add_argument("--seed", type=int, default=0, help="training seed (initialisation, batches)")
    ap.add_argument("--data-seed", type=int, default=0,
                    help="jet generation and split seed (a new one generates and caches new jets)")
    ap.add_argument("--arch-every", type=int, default=1,
                    help="architecture update on every k-th step (Search(arch_every=k))")
    ap.add_argument("--sampling", choices=SEARCH_SAMPLING,
                    default="softmax", help="how the supernet weighs its choices in the search")
    ap.add_argument("--sandwich", choices=["auto", "on", "off"], default="auto",
                    help="train the widest network on every search step beside the sampled one "
                         "(SearchSettings.sandwich, BigNAS' sandwich rule; auto: where the "
                         "weight step samples one network)")
    ap.add_argument("--settle-epochs", type=int, default=0,
                    help="last search epochs that train the selected network alone "
                         "(Search(settle_steps=...)); within --size's epochs")
    ap.add_argument("--lr-schedule", choices=list(LR_SCHEDULES), default="constant",
                    help="the search's weight learning rate per step: constant, or cosine to 0 (as the "
                         "QAT baseline's)")
    ap.add_argument("--jobs", type=int, default=1, help="processes generating jets (full size)")
    ap.add_argument("--threads", type=int, default=1, help="CPU intra-op threads (0: torch default)")
    ap.add_argument("--no-baselines", action="store_true",
                    help="skip training the uniform and random networks that fit each budget")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    ood = quiet_domain_warnings()


    from connas4ml_torch.models import jet_mlp
    from connas4ml_torch.training import evaluate, n_weights

    size = SIZES[args.size]
    device = pick_device(args.device, args.threads)
    fractions = [float(f) for f in args.fractions.split(",")]
    t_all = time.perf_counter()
    splits = load_jet_splits(size["n_per_class"], args.data_seed, args.jobs).to(device)
    n_test = len(splits.test[1])
    cost = load_cost_model()
    hls = jet_hls()
    space = jet_space(args.widths)
    seed_all(args.seed)  # the weight-aware budgets below price a freshly initialised network
    cheapest, u8 = space_ends(space, cost, hls, splits.train[0][:256].cpu())
    budgets = [cheapest["LUT"] + f * (u8["LUT"] - cheapest["LUT"]) for f in fractions]
    ep, wu, ft, bs = (size[k] for k in ("epochs", "warmup_epochs", "finetune_epochs", "batch_size"))
    lr = SCHEDULE["lr"]
    print(f"jets: {len(splits.train[1])} train / {len(splits.val[1])} val / {n_test} test, "
          f"{ep} epochs, device {device}; predicted LUT cheapest {cheapest['LUT']:,.0f}, "
          f"uniform 8-bit {u8['LUT']:,.0f}; budgets {[round(b) for b in budgets]}", flush=True)

    # float baseline
    seed_all(args.seed)
    fnet = jet_mlp().to(device)
    float_s = timed_train(fnet, splits, ep, lr, bs, args.seed, device, desc="float")
    acc_float = evaluate(fnet, *splits.test, "classification")
    print(f"float: accuracy {acc_float:.4f} ({float_s:.1f} s)", flush=True)

    rows, figures = [], {}
    qat_times, ratios, brev_ratios = [], [], []
    acc_q8 = None
    for i, (frac, budget) in enumerate(zip(fractions, budgets)):
        base, _, qat_s = qat_baseline(jet_mlp, splits, ep, bs, args.seed, device)
        qat_times.append(qat_s)
        brev_s = brevitas_qat_s(jet_mlp, splits, ep, bs, args.seed, device)
        if acc_q8 is None:
            acc_q8 = evaluate(base, *splits.test, "classification")
            q8_params = n_weights(base)
            print(f"uniform 8-bit QAT: accuracy {acc_q8:.4f} ({qat_s:.1f} s)", flush=True)
        res = search_run(jet_mlp, splits, space, cost, hls, budgets={"LUT": budget}, epochs=ep,
                         warmup_epochs=wu, batch=bs, seed=args.seed, device=device,
                         arch_every=args.arch_every, sampling=args.sampling,
                         sandwich=SANDWICH[args.sandwich], settle_epochs=args.settle_epochs,
                         lr_schedule=args.lr_schedule)
        sandwiched = res["sandwich"]
        model, search, sel = res["model"], res["search"], res["selection"]
        acc = evaluate(model, *splits.test, "classification")
        pred = dict(sel.resources)
        ft_s = timed_train(model, splits, ft, lr / 3, bs, args.seed + 7, device, desc="fine-tune")
        acc_ft = evaluate(model, *splits.test, "classification")
        ratio = res["search_s"] / qat_s
        ratios.append(ratio)
        brev_ratios.append(res["search_s"] / brev_s)
        met = all(pred[r] <= b for r, b in search.budgets.items())
        k = f"b{i}"
        # the baselines that matter: fixed networks that fit the same budget, trained as long
        fixed, same = {}, []
        if not args.no_baselines:
            for name, choices in fixed_baselines(search.tables, search.budgets, 2,
                                                 args.seed + i).items():
                net = train_fixed(jet_mlp, choices, splits, ep, ft, bs, args.seed, device)
                fixed[name] = evaluate(net, *splits.test, "classification")
                if choices == sel.choices:
                    same.append(name)
                figures[f"{k}_{name}_accuracy_finetuned"] = fixed[name]
                figures[f"{k}_{name}_chosen"] = bits_of(choices, args.widths)
                print(f"  {name}: {bits_of(choices, args.widths)}: {fixed[name]:.4f}", flush=True)
        # a search that returns one of the fixed networks matches it, it does not beat it
        beats = (all(acc_ft > a for a in fixed.values()) and not same) if fixed else None
        figures[f"{k}_same_as_fixed"] = ",".join(same)
        figures[f"{k}_beats_fixed_baselines"] = beats
        figures[f"{k}_budget_used_fraction"] = sel.budget_used
        figures[f"{k}_selection_note"] = sel.note
        figures[f"{k}_selected_candidate"] = sel.candidate
        if sel.note:
            print(f"  selection: {sel.note}", flush=True)
        figures.update({f"{k}_fraction": frac, f"{k}_lut_budget": budget,
                        f"{k}_budget_met": met, f"{k}_accuracy": acc,
                        f"{k}_accuracy_finetuned": acc_ft,
                        f"{k}_delta_vs_8bit_pp": 100 * (acc - acc_q8),
                        f"{k}_delta_vs_8bit_finetuned_pp": 100 * (acc_ft - acc_q8),
                        f"{k}_search_s": res["search_s"], f"{k}_finetune_s": ft_s,
                        f"{k}_qat_baseline_s": qat_s, f"{k}_search_vs_qat_ratio": ratio,
                        f"{k}_brevitas_qat_s": brev_s,
                        f"{k}_repairs": len(sel.repairs), f"{k}_parameters": n_weights(model),
                        f"{k}_chosen": bits_of(sel.choices, args.widths)})
        figures.update({f"{k}_predicted_{r}": pred[r] for r in RES})
        rows.append(f"| {frac:.2f} | {budget:,.0f} | {pred['LUT']:,.0f} | {'yes' if met else 'NO'} "
                    f"| {pred['FF']:,.0f} | {pred['DSP']:,.0f} | {pred['BRAM_18K']:,.1f} "
                    f"| {acc:.4f} ({100 * (acc - acc_q8):+.2f}) | {acc_ft:.4f} "
                    f"({100 * (acc_ft - acc_q8):+.2f}) | {bits_of(sel.choices, args.widths)} "
                    f"| {100 * (sel.budget_used or 0):.0f}% | "
                    + (" / ".join(f"{n} {a:.4f}" for n, a in fixed.items()) or "-")
                    + f" | {len(sel.repairs)} | {res['search_s']:.1f} | {qat_s:.1f} "
                    f"| {ratio:.2f} | {brev_s:.1f} | {brev_ratios[-1]:.2f} |")
        print(rows[-1], flush=True)
        del model, search, res

    se = 100 * math.sqrt(max(acc_q8 * (1 - acc_q8), 1e-12) / n_test)
    loose = len(fractions) - 1
    d_loose = figures[f"b{loose}_delta_vs_8bit_pp"]
    all_met = all(figures[f"b{i}_budget_met"] for i in range(len(fractions)))
    med_ratio = statistics.median(ratios)
    med_brev = statistics.median(brev_ratios)
    deltas = [figures[f"b{i}_delta_vs_8bit_pp"] for i in range(len(fractions))]
    beats = [figures[f"b{i}_beats_fixed_baselines"] for i in range(len(fractions))]
    figures.update({
        "min_budget_used_fraction": min(figures[f"b{i}_budget_used_fraction"] or 0.0
                                        for i in range(len(fractions))),
        "max_abs_delta_no_finetune_pp": max(abs(d) for d in deltas),
        "beats_uniform_baselines": all(beats) if None not in beats else False,
    })
    figures.update({
        "size": args.size, "device": str(device), "search_widths": args.widths,
        "sandwich": sandwiched, "settle_epochs": args.settle_epochs, "lr_schedule": args.lr_schedule,
        "train_jets": len(splits.train[1]), "test_jets": n_test, "epochs": ep,
        "finetune_epochs": ft, "batch_size": bs, "accuracy_float": acc_float,
        "accuracy_8bit_qat": acc_q8, "parameters_8bit": q8_params,
        "accuracy_standard_error_pp": se, "float_train_s": float_s,
        "qat_baseline_median_s": statistics.median(qat_times),
        "search_vs_qat_median_ratio": med_ratio, "search_vs_brevitas_qat_median_ratio": med_brev,
        "lut_cheapest": cheapest["LUT"],
        "lut_uniform_8bit": u8["LUT"], "ff_uniform_8bit": u8["FF"], "dsp_uniform_8bit": u8["DSP"],
        "all_budgets_met": all_met, "loosest_delta_vs_8bit_pp": d_loose,
        "goal_issue5_within_0p37pp": d_loose >= -0.37, "goal_issue6_within_0p2pp": d_loose >= -0.2,
        "goal_time_ratio_le_1p5": med_brev <= 1.5, "total_wall_s": time.perf_counter() - t_all,
        "out_of_domain_warnings": len(ood),
    })
    head = ("| LUT budget fraction | LUT budget | predicted LUT | met | predicted FF | predicted DSP "
            "| predicted BRAM_18K | accuracy, no fine-tune (pp vs 8-bit) | accuracy, fine-tuned "
            "(pp vs 8-bit) | chosen bits (weights fc1/fc2/fc3/out, acts in/r1/r2/r3) | budget "
            "used | fixed networks that fit, fine-tuned alike | repairs "
            "| search [s] | 8-bit QAT [s] | search / QAT | Brevitas 8-bit QAT [s] | search / "
            "Brevitas QAT |\n"
            "|---:|---:|---:|---|---:|---:|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---:|"
            "---:|")
    ok = lambda b: "met" if b else "NOT met"  # noqa: E731
    threads = f" ({args.threads} thread)" if device.type == "cpu" and args.threads else ""
    note = (
        f"\nJet MLP 16-64-32-32-5, size `{args.size}` ({len(splits.train[1])} train / "
        f"{n_test} test jets), device {device}{threads}, {ep} epochs (search: {wu} warm-up) + {ft} "
        f"fine-tune epochs, batch {bs}, architecture update every {args.arch_every} step(s), "
        f"sampling {args.sampling}"
        f"{', sandwich rule (widest network trained every step)' if sandwiched else ''}"
        f"{f', the last {args.settle_epochs} search epochs train the selected network alone (settle phase)' if args.settle_epochs else ''}, search learning rate {args.lr_schedule}. "
        f"Space: weight and activation bits 2..8 per layer"
        f"{' and widths' if args.widths else ''}; hls4ml Vitis xcvu13p io_parallel Latency RF 1; "
        f"default cost model. Baselines: float {acc_float:.4f}; uniform 8-bit QAT {acc_q8:.4f} "
        f"(predicted LUT {u8['LUT']:,.0f}, FF {u8['FF']:,.0f}, DSP {u8['DSP']:,.0f}); "
        f"cheapest network of the space: LUT {cheapest['LUT']:,.0f}. Budgets: LUT = cheapest + "
        f"f x (8-bit - cheapest). Accuracy standard error on this test set: {se:.2f} pp.\n\n"
        f"Goals: every budget met (predicted): {ok(all_met)}. Loosest budget, no fine-tune: "
        f"{d_loose:+.2f} pp vs 8-bit: within 0.37 pp (issue 5) {ok(d_loose >= -0.37)}, within "
        f"0.2 pp (issue 6) {ok(d_loose >= -0.2)}. Search wall time / one 8-bit QAT training of "
        f"the same epochs (median of {len(ratios)}, each against the QAT run just before it): "
        f"{med_ratio:.2f}; against the same QAT with Brevitas' layers (issue 15's reference): "
        f"{med_brev:.2f} (goal <= 1.5: {ok(med_brev <= 1.5)}). 8-bit QAT here is this library's "
        f"fused fixed-point path (the baseline trained above). Worst budget without "
        f"fine-tune: {figures['max_abs_delta_no_finetune_pp']:.2f} pp (goal <= 0.2). Smallest "
        f"share of the budget used: {100 * figures['min_budget_used_fraction']:.0f}% (goal >= "
        f"90%). Fixed networks that fit each budget (the largest uniform one, two random "
        f"ones; same epochs and fine-tune): beaten at every budget: "
        f"{figures['beats_uniform_baselines']}. {len(ood)} distinct out-of-domain warnings of "
        f"the cost model.\n")
    record(__file__, figures, head + "\n" + "\n".join(rows) + "\n" + note, write=not args.no_write)


if __name__ == "__main__":
    main()
