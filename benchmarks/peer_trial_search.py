"""The AutoQKeras approach (Bayesian optimization over per-layer quantizers, each trial trained
for a few epochs) against our one-shot search, on the same space, cost model and budget, side by
side in one run (issue 6: ours should reach the peer's best quality at least 5x faster).

Task and space as ``jet_precision_search.py``: jet MLP 16-64-32-32-5, weight and activation
bits 2..8 per layer (``--widths`` adds widths), default cost model, hls4ml Vitis xcvu13p
io_parallel Latency RF 1, one LUT budget (``--fraction`` of the way from the cheapest to the
uniform 8-bit network; 0.5 by default, the middle budget of ``jet_precision_search``).

* **Ours**: one search (``Search.fit``, the library's one loop) + derive with repair + the short fine-tune; its
  quality is the fine-tuned test accuracy, its time search + derive + fine-tune.
* **Peer**: Optuna TPE (seeded) proposes per-layer choices; each trial derives the Brevitas
  network with ``Supernet.derive(choices)`` from an untrained supernet, trains it for
  ``trial_epochs`` (AutoQKeras trains ~10 epochs per trial) and is scored by a budget-constrained
  objective: validation accuracy when the predicted LUT fits, ``val_acc - 1 - overshoot``
  otherwise (infeasible trials always rank below feasible ones). The peer runs until
  ``--peer-factor`` x our time (or ``max_trials``).

Time for the peer to reach our quality: the first moment its incumbent (best score so far, so
feasible) has a test accuracy >= ours. Also reported: the first feasible trial at or above our
accuracy whatever the incumbent (a lenient reading), and the peer's best quality with the time
it found it.

    python benchmarks/peer_trial_search.py --size tiny|small|full [--device cpu|cuda] [--no-write]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jet_precision_search import (  # noqa: E402
    SCHEDULE,
    bits_of,
    jet_hls,
    jet_space,
    load_cost_model,
    load_jet_splits,
    pick_device,
    predicted,
    quiet_domain_warnings,
    search_run,
    seed_all,
    space_ends,
    sync,
    timed_train,
)

SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"n_per_class": 100, "epochs": 1, "warmup_epochs": 0, "finetune_epochs": 1,
             "batch_size": 64, "trial_epochs": 1, "max_trials": 3},
    "small": {"n_per_class": None, "epochs": 15, "warmup_epochs": 2, "finetune_epochs": 3,
              "batch_size": 256, "trial_epochs": 10, "max_trials": 200},
    "full": {"n_per_class": 20_000, "epochs": 30, "warmup_epochs": 3, "finetune_epochs": 5,
             "batch_size": 1024, "trial_epochs": 10, "max_trials": 200},
}


def main() -> None:
    from _common import record

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=list(SIZES), default="small")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--widths", action="store_true", help="search widths too")
    ap.add_argument("--fraction", type=float, default=0.5,
                    help="LUT budget between the cheapest (0) and uniform 8-bit (1) network")
    ap.add_argument("--peer-factor", type=float, default=8.0,
                    help="peer wall-time limit as a multiple of our search + fine-tune time")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1, help="processes generating jets (full size)")
    ap.add_argument("--threads", type=int, default=1, help="CPU intra-op threads (0: torch default)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    ood = quiet_domain_warnings()

    import optuna

    import connas4ml_torch as cn
    from connas4ml_torch.models import jet_mlp
    from connas4ml_torch.training import evaluate

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    size = SIZES[args.size]
    device = pick_device(args.device, args.threads)
    ep, wu, ft, bs, tep = (size[k] for k in ("epochs", "warmup_epochs", "finetune_epochs",
                                             "batch_size", "trial_epochs"))
    lr = SCHEDULE["lr"]
    splits = load_jet_splits(size["n_per_class"], args.seed, args.jobs).to(device)
    cost = load_cost_model()
    hls = jet_hls()
    space = jet_space(args.widths)
    example = splits.train[0][:256].cpu()
    cheapest, u8 = space_ends(space, cost, hls, example)
    budget = cheapest["LUT"] + args.fraction * (u8["LUT"] - cheapest["LUT"])
    print(f"budget LUT {budget:,.0f} (cheapest {cheapest['LUT']:,.0f}, 8-bit {u8['LUT']:,.0f})",
          flush=True)

    # ---- ours ------------------------------------------------------------------------------
    sync(device)
    t0 = time.perf_counter()
    res = search_run(jet_mlp, splits, space, cost, hls, budgets={"LUT": budget}, epochs=ep,
                     warmup_epochs=wu, batch=bs, seed=args.seed, device=device)
    model, search, sel = res["model"], res["search"], res["selection"]
    acc_ours_noft = evaluate(model, *splits.test, "classification")
    ft_s = timed_train(model, splits, ft, lr / 3, bs, args.seed + 7, device, desc="fine-tune")
    sync(device)
    t_ours = time.perf_counter() - t0
    acc_ours = evaluate(model, *splits.test, "classification")
    ours_lut = sel.resources["LUT"]
    ours_bits = bits_of(sel.choices, args.widths)
    print(f"ours: accuracy {acc_ours:.4f} (no fine-tune {acc_ours_noft:.4f}), LUT {ours_lut:,.0f},"
          f" {t_ours:.1f} s ({res['search_s']:.1f} search + {ft_s:.1f} fine-tune)", flush=True)
    del model, search, res

    # ---- peer: TPE trials ------------------------------------------------------------------
    probe_sn = cn.searchable(jet_mlp(), space, example_input=example)
    tables = cn.Search(probe_sn, cost, hls).tables
    variables = [(var.owners[0], var.values) for var in tables.variables if len(var.values) > 1]
    limit_s = args.peer_factor * t_ours
    trials: list[dict[str, Any]] = []
    t_peer0 = time.perf_counter()

    def objective(trial: optuna.Trial) -> float:
        choices: dict[str, dict[str, int]] = {}
        for (layer, kind), values in variables:
            choices.setdefault(layer, {})[kind] = trial.suggest_categorical(f"{layer}.{kind}",
                                                                            list(values))
        lut = predicted(tables, choices)["LUT"]
        seed_all(args.seed + trial.number)
        sn = cn.searchable(jet_mlp(), space, example_input=example)
        net = sn.derive(choices).to(device)
        timed_train(net, splits, tep, lr, bs, args.seed + trial.number, device, desc="trial")
        val = evaluate(net, *splits.val, "classification")
        test = evaluate(net, *splits.test, "classification")
        feasible = lut <= budget
        score = val if feasible else val - 1.0 - (lut - budget) / budget
        sync(device)
        trials.append({"n": trial.number, "t": time.perf_counter() - t_peer0, "val": val,
                       "test": test, "lut": lut, "feasible": feasible, "score": score})
        return score

    sampler = optuna.samplers.TPESampler(seed=args.seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=size["max_trials"], timeout=limit_s)
    peer_s = time.perf_counter() - t_peer0

    # incumbent over time
    best = None
    t_reach = t_reach_any = None
    for tr in trials:
        if best is None or tr["score"] > best["score"]:
            best = tr
        if t_reach is None and best["feasible"] and best["test"] >= acc_ours:
            t_reach = tr["t"]
        if t_reach_any is None and tr["feasible"] and tr["test"] >= acc_ours:
            t_reach_any = tr["t"]
    feasible = [t for t in trials if t["feasible"]]
    inc = best if best is not None and best["feasible"] else None
    peer_best = inc["test"] if inc else float("nan")
    t_peer_best = inc["t"] if inc else float("nan")
    ours_reaches_peer = inc is not None and acc_ours >= peer_best
    speed_reach = (t_reach / t_ours) if t_reach is not None else None
    speed_best = t_peer_best / t_ours if inc else float("nan")
    goal = ours_reaches_peer and speed_best >= 5.0
    figures: dict[str, Any] = {
        "size": args.size, "device": str(device), "search_widths": args.widths,
        "lut_budget": budget, "budget_fraction": args.fraction, "epochs": ep,
        "finetune_epochs": ft, "trial_epochs": tep,
        "ours_accuracy": acc_ours, "ours_accuracy_no_finetune": acc_ours_noft,
        "ours_lut": ours_lut, "ours_s": t_ours, "ours_chosen": ours_bits,
        "peer_trials": len(trials), "peer_feasible_trials": len(feasible), "peer_s": peer_s,
        "peer_time_limit_s": limit_s, "peer_best_accuracy": peer_best,
        "peer_best_found_s": t_peer_best, "peer_best_lut": inc["lut"] if inc else float("nan"),
        "peer_reach_ours_s": t_reach if t_reach is not None else -1.0,
        "peer_reach_ours_any_trial_s": t_reach_any if t_reach_any is not None else -1.0,
        "peer_reach_over_ours_ratio": speed_reach if speed_reach is not None else -1.0,
        "peer_best_over_ours_time_ratio": speed_best,
        "ours_reaches_peer_best": ours_reaches_peer, "goal_5x_met": goal,
        "out_of_domain_warnings": len(ood),
    }

    def fmt_t(t):
        return f"{t:.0f} s ({t / t_ours:.1f}x ours)" if t is not None else \
            f"not within {peer_s:.0f} s (> {peer_s / t_ours:.1f}x ours)"

    rows = [
        "| method | test accuracy | predicted LUT (budget " + f"{budget:,.0f}) | wall time [s] | "
        "trials | time to reach our accuracy |",
        "|---|---:|---:|---:|---:|---|",
        f"| ours: one search + fine-tune ({ours_bits}) | {acc_ours:.4f} (no fine-tune "
        f"{acc_ours_noft:.4f}) | {ours_lut:,.0f} | {t_ours:.1f} | 1 | - |",
        f"| peer: TPE, {tep} epochs per trial, best by validation | {peer_best:.4f} | "
        f"{figures['peer_best_lut']:,.0f} | {peer_s:.1f} (best found at {t_peer_best:.0f}) | "
        f"{len(trials)} ({len(feasible)} feasible) | incumbent: {fmt_t(t_reach)}; any trial: "
        f"{fmt_t(t_reach_any)} |",
    ]
    note = (
        f"\nJet MLP, size `{args.size}` ({len(splits.train[1])} train / {len(splits.test[1])} test "
        f"jets), device {device}; space: bits 2..8 per layer{' and widths' if args.widths else ''}"
        f"; one LUT budget ({args.fraction:g} of the way from the cheapest {cheapest['LUT']:,.0f} "
        f"to the uniform 8-bit {u8['LUT']:,.0f}). Ours: {ep} search epochs ({wu} warm-up) + {ft} "
        f"fine-tune epochs. Peer: Optuna TPE (seed {args.seed}), each trial a derived Brevitas "
        f"network trained {tep} epochs from scratch, score = validation accuracy if the predicted "
        f"LUT fits, else val - 1 - overshoot; stopped at {args.peer_factor:g}x our time. Goal: "
        f"ours reaches the peer's best quality at least 5x faster: "
        f"{'met' if goal else 'NOT met'} (ours {'>=' if ours_reaches_peer else '<'} peer's best "
        f"accuracy; the peer found its best after {speed_best:.1f}x our time).\n")
    record(__file__, figures, "\n".join(rows) + "\n" + note, write=not args.no_write)


if __name__ == "__main__":
    main()
