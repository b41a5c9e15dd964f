"""Train-step time and peak memory of the supernet against the derived widest Brevitas model
and the plain float PyTorch network of the same widest shape (issues 2 and 15).

Supernet: 4 width choices, 4 weight-bit choices, 3 activation-bit choices per layer, under each
sampling mode: ``auto`` (the default: widths sampled one-hot, bits relaxed), ``softmax`` (all
relaxed) and ``argmax`` (one network). Times: every variant of a network is built in ONE
process and timed interleaved (median over repeats of ``iters`` steps), so the ratios are side
by side on a shared machine; the supernets are timed after their activation-calibration window
(closed at once: the steady state of a search). Peak memory: each of float / derived / supernet
in a fresh subprocess (CPU: peak resident-set growth; GPU: ``torch.cuda.max_memory_allocated``).

Search against QAT (jet MLP only; ``--no-search`` skips it): one ``Search`` step
(``arch_step`` on a validation batch + a weight step, as ``Search.fit``) against one QAT step
of the derived widest 8-bit Brevitas model and of the uniform 8-bit single-choice supernet (the
QAT baseline of ``jet_precision_search.py``), on the same batches, in the space and schedule of
that benchmark (``--widths``); plus the one-off set-up of a search (supernet, cost tables).

``--compile`` adds the supernet under ``torch.compile`` and with ``compile_quantizers()``
kernels (and a search step of the compiled supernet), with the wall time of their first two
steps (compilation). ``--clock cpu`` times this process's CPU time instead of wall time (one
thread on a machine shared with others).

    python benchmarks/supernet_overhead.py [--quick] [--device cuda] [--threads N]
           [--clock wall|cpu] [--compile] [--no-search] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

NETS = {
    # name: (factory, input shape, batch)
    "jet_mlp": ("jet", (16,), 1024),
    "calo_cnn_1.8M": ("calo", (5, 32, 32), 64),
}
MODES = ("auto", "softmax", "argmax")  # "supernet" is the default mode, "auto"
VARIANTS = ("float", "derived", "supernet", "supernet_softmax", "supernet_argmax")
# --compile: the supernet (auto) under torch.compile, and with compile_quantizers() kernels
COMPILED = ("supernet_compiled", "supernet_compiled_argmax", "supernet_kernels")


def _mode(variant: str) -> str:
    tail = variant.rsplit("_", 1)[-1]
    return tail if tail in MODES else "auto"


def _set_kernels(on: bool) -> None:
    from connas4ml_torch import quant

    if hasattr(quant, "compile_quantizers"):
        quant.compile_quantizers(on)


def end_calibration(model) -> None:
    """Close the activation-range calibration window (the first 100 steps of a search)."""
    for m in model.modules():
        if hasattr(m, "calibration_left"):
            m.calibration_left.fill_(0)


def build(net: str, variant: str, device: str):
    import torch
    from torch import nn

    import connas4ml_torch as cn
    from connas4ml_torch.models import calo_cnn, jet_mlp

    kind, shape, batch = NETS[net]
    torch.manual_seed(0)
    base = jet_mlp() if kind == "jet" else calo_cnn()
    if kind == "jet":
        widths = {"fc1": [16, 32, 48, 64], "fc2": [8, 16, 24, 32], "fc3": [8, 16, 24, 32]}
    else:
        widths = {"features.conv1": [16, 32, 48, 64], "features.conv2": [32, 64, 96, 128],
                  "features.conv3": [64, 128, 192, 256], "fc1": [88, 176, 264, 352]}
    x = torch.randn(batch, *shape, device=device)
    y = (torch.randint(0, 5, (batch,), device=device) if kind == "jet"
         else torch.rand(batch, device=device))
    if variant == "float":
        model = base
    else:
        supernet = variant.startswith("supernet")
        space = (cn.SearchSpace(width=widths, weight_bits=[2, 4, 6, 8], act_bits=[4, 6, 8])
                 if supernet else cn.SearchSpace(weight_bits=[8], act_bits=[8]))
        sn = cn.searchable(base, space, example_input=x[:8].cpu())
        model = sn if supernet else sn.derive()
        if supernet:
            sn.set_sampling(_mode(variant))
            end_calibration(sn)
    model = model.to(device).train()
    loss_fn = nn.functional.cross_entropy if kind == "jet" else (lambda o, t: (o - t).square().mean())
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    run = torch.compile(model) if variant.startswith("supernet_compiled") else model
    kernels = variant == "supernet_kernels"

    def step():
        _set_kernels(kernels)  # a process-wide switch: on for this variant's steps only
        opt.zero_grad(set_to_none=True)
        loss_fn(run(x), y).backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return step


CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCK["wall"]


def interleaved(steps: dict, repeats: int, iters: int, warmup: int = 2) -> dict[str, float]:
    """Median ms per call of each function, timed in turns (one repeat of each, then again).

    ``clock``: wall time, or with ``--clock cpu`` this process's CPU time (one thread on a
    machine shared with others: the time the step computed, not the time it waited)."""
    for s in steps.values():
        for _ in range(warmup):
            s()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for k, s in steps.items():
            t0 = clock()
            for _ in range(iters):
                s()
            times[k].append((clock() - t0) / iters * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def time_variants(net: str, device: str, repeats: int, iters: int, variants=VARIANTS
                  ) -> tuple[dict[str, float], dict[str, float]]:
    """All variants of ``net`` in this process, timed interleaved: ms per train step; and the
    wall time of the first two steps of the compiled variants (compilation) in seconds."""
    import torch

    steps, first = {}, {}
    if any(v in COMPILED for v in variants):
        torch._dynamo.reset()  # another network compiled before: no shapes carried over
        torch._dynamo.utils.counters.clear()
    for v in variants:
        steps[v] = build(net, v, device)
        if v in COMPILED:
            t0 = time.perf_counter()
            steps[v]()
            steps[v]()
            first[v] = time.perf_counter() - t0
    times = interleaved(steps, repeats, iters)
    if first:  # compiled graphs after all the timed steps: no recompilation from step to step
        first["graphs"] = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    return times, first


def measure_memory(net: str, variant: str, device: str, iters: int) -> dict:
    """Runs in a subprocess: peak memory growth over ``iters`` train steps, in MiB."""
    import torch

    step = build(net, variant, device)
    step()  # warm-up (lazy init, allocator)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base_mem = torch.cuda.memory_allocated()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(iters):
        step()
    if device == "cuda":
        peak = (torch.cuda.max_memory_allocated() - base_mem) / 2**20
        peak_total = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
        peak_total = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"peak_mib": peak, "peak_total_mib": peak_total}


def run_sub(fn: str, *args, threads: int = 0) -> dict:
    call = ", ".join(repr(a) for a in args)
    code = (f"import sys, json; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
            f"import torch; torch.set_num_threads({threads or 'torch.get_num_threads()'}); "
            f"import supernet_overhead as s; print(json.dumps(s.{fn}({call})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- whole search against QAT (jet) -----------------------------------------------------------
def search_vs_qat(device: str, repeats: int, iters: int, modes=("auto", "softmax"),
                  compiled: bool = False) -> dict:
    """Per-step time of a search (``arch_step`` + weight step) against QAT steps; set-up times.

    The space, hls4ml settings, learning rates and batch size are those of
    ``jet_precision_search.py --widths --size small``; the LUT budget halfway between the
    cheapest and the widest network. Batches are random (timing only)."""
    import torch
    from jet_precision_search import SCHEDULE, SIZES, jet_hls, jet_space, load_cost_model

    import connas4ml_torch as cn
    from connas4ml_torch.models import jet_mlp
    from connas4ml_torch.training import loss_fn

    lf = loss_fn("classification")
    batch = SIZES["small"]["batch_size"]
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(batch, 16, generator=g).to(device),
             torch.randint(0, 5, (batch,), generator=g).to(device)) for _ in range(8)]
    example = data[0][0][:256].cpu()
    cost, hls = load_cost_model(), jet_hls()
    out: dict[str, float] = {}

    def cycle(fn):
        it = [0]

        def step():
            fn(*data[it[0] % len(data)], *data[(it[0] + 1) % len(data)])
            it[0] += 1
            if device == "cuda":
                torch.cuda.synchronize()
        return step

    def qat_step_of(model):
        opt = torch.optim.Adam(model.parameters(), SCHEDULE["lr"])

        def f(x, y, _xv, _yv):
            opt.zero_grad()
            lf(model(x), y).backward()
            opt.step()
        return f

    steps = {}
    torch.manual_seed(0)
    t0 = clock()
    q8 = cn.searchable(jet_mlp(), cn.SearchSpace(weight_bits=[8], act_bits=[8]),
                       example_input=example).to(device)
    out["qat_setup_s"] = clock() - t0
    end_calibration(q8)
    steps["qat_brevitas"] = cycle(qat_step_of(q8.derive().to(device).train()))
    steps["qat_supernet"] = cycle(qat_step_of(q8.train()))
    probe = cn.Search(cn.searchable(jet_mlp(), jet_space(True), example_input=example), cost, hls)
    lo, hi = probe.minimum["LUT"], float(probe.reference[probe.resources.index("LUT")])
    for mode in modes + (("auto_compiled",) if compiled else ()):
        torch.manual_seed(0)
        t0 = clock()
        sn = cn.searchable(jet_mlp(), jet_space(True), example_input=example).to(device)
        search = cn.Search(sn, cost, hls, constraints={"LUT": lo + 0.5 * (hi - lo)},
                           arch_lr=SCHEDULE["arch_lr"], dual_lr=SCHEDULE["dual_lr"],
                           temperature=SCHEDULE["temperature"], anneal_steps=1000)
        out[f"search_setup_s_{mode}"] = clock() - t0
        sn.set_sampling(mode.split("_")[0])
        end_calibration(sn)
        sn.train()
        opt = torch.optim.Adam(sn.weight_parameters(), SCHEDULE["lr"])
        if mode.endswith("compiled"):
            torch._dynamo.reset()
        run = torch.compile(sn) if mode.endswith("compiled") else sn

        def search_step(x, y, xv, yv, run=run, search=search, opt=opt):
            search.arch_step(lambda: lf(run(xv), yv))
            opt.zero_grad()
            with search.weight_pass():  # as Search.fit: no gradient for the logits here
                lf(run(x), y).backward()
            opt.step()
        steps[f"search_{mode}"] = cycle(search_step)
        if mode.endswith("compiled"):
            t0 = time.perf_counter()
            steps[f"search_{mode}"]()
            steps[f"search_{mode}"]()
            out[f"search_first_steps_s_{mode}"] = time.perf_counter() - t0
        else:
            steps[f"warmup_{mode}"] = cycle(qat_step_of(sn))  # warm-up epochs: weights only
    out.update({f"{k}_step_ms": v for k, v in interleaved(steps, repeats, iters).items()})
    return out


def main() -> None:
    from _common import record

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few iterations (CI smoke run)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: torch default)")
    ap.add_argument("--clock", choices=list(CLOCK), default="wall",
                    help="wall time, or process CPU time (one thread on a shared machine)")
    ap.add_argument("--no-search", action="store_true", help="skip the search-vs-QAT timing")
    ap.add_argument("--compile", action="store_true",
                    help="also time the supernet under torch.compile and with compiled "
                         "quantizer kernels (compile_quantizers); minutes of compilation")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    global clock
    clock = CLOCK[args.clock]
    if args.clock == "cpu" and args.device != "cpu":
        raise SystemExit("--clock cpu measures CPU work only: use the wall clock on a GPU")
    # memory first, while this process is small: a child's peak resident set starts at its
    # parent's (Linux carries the high-water mark over fork + exec)
    memory = {net: {v: run_sub("measure_memory", net, v, args.device, 2 if args.quick else 5,
                               threads=args.threads) for v in ("float", "derived", "supernet")}
              for net in NETS}
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    repeats = 2 if args.quick else 7
    iters = {"jet_mlp": 2 if args.quick else 20, "calo_cnn_1.8M": 1 if args.quick else 3}
    figures: dict[str, float | str] = {"threads": threads, "clock": args.clock}
    rows = ["| network | variant | sampling | ms / train step | peak memory growth [MiB] | "
            "time ratio vs derived | memory ratio vs derived | time ratio vs float |",
            "|---|---|---|---:|---:|---:|---:|---:|"]
    variants = VARIANTS + (COMPILED if args.compile else ())
    for net in NETS:
        ms, first = time_variants(net, args.device, repeats, iters[net], variants)
        mem = memory[net]
        for v in variants:
            m = mem.get(v)
            t_ratio, f_ratio = ms[v] / ms["derived"], ms[v] / ms["float"]
            mem_txt = (f"{m['peak_mib']:.1f} (total {m['peak_total_mib']:.0f})" if m else "-")
            m_ratio = (f"{m['peak_total_mib'] / mem['derived']['peak_total_mib']:.2f}" if m
                       else "-")
            label = {c: ("supernet, compile_quantizers" if c.endswith("kernels")
                         else "supernet, torch.compile") + f" (first 2 steps {first[c]:.0f} s)"
                     for c in COMPILED if c in first}
            rows.append(f"| {net} | {label.get(v, v.split('_')[0])} | "
                        f"{_mode(v) if 'supernet' in v else '-'} | {ms[v]:.2f} | {mem_txt} | "
                        f"{t_ratio:.2f} | {m_ratio} | {f_ratio:.2f} |")
            figures[f"{net}_{v}_step_ms"] = ms[v]
            if v in first:
                figures[f"{net}_{v}_first_steps_s"] = first[v]
                figures[f"{net}_{v}_vs_float_time_ratio"] = ms[v] / ms["float"]
            if m:
                figures[f"{net}_{v}_peak_mib"] = m["peak_total_mib"]
        for mode in MODES:
            v = "supernet" if mode == "auto" else f"supernet_{mode}"
            key = "supernet" if mode == "auto" else f"supernet_{mode}"
            figures[f"{net}_{key}_vs_derived_time_ratio"] = ms[v] / ms["derived"]
            figures[f"{net}_{key}_vs_float_time_ratio"] = ms[v] / ms["float"]
        figures[f"{net}_supernet_vs_derived_memory_ratio"] = (
            mem["supernet"]["peak_total_mib"] / mem["derived"]["peak_total_mib"])
        if "graphs" in first:
            figures[f"{net}_compiled_graphs"] = first["graphs"]
            rows.append(f"| {net} | (compiled graphs in all, both variants, after all steps: "
                        f"{first['graphs']}) | | | | | | |")
    note = (f"\nDevice: {args.device}, {threads} thread(s), {args.clock} clock. Goals (issue 15): supernet/float time "
            "<= 2 (issue 2: supernet/derived time <= 1.5, memory <= 1.3). Supernet steps are "
            "timed after the activation-calibration window; all variants of a network in one "
            "process, interleaved. Memory is the process's peak (CPU: resident set incl. the "
            "Python/torch runtime; GPU: max allocated), so ratios of totals are conservative for "
            "small networks.\n")
    if not args.no_search:
        s = search_vs_qat(args.device, repeats, 2 if args.quick else 10, compiled=args.compile)
        figures.update({f"jet_{k}": v for k, v in s.items()})
        # jet_precision_search --size small: 15000 training jets, batch 256, 15 epochs of which
        # 2 warm-up (weight steps only)
        per_epoch, epochs, warm = 15000 // 256, 15, 2
        srows = ["\n| jet search (sampling) | ms / search step | vs Brevitas QAT step | "
                 "vs 8-bit supernet QAT step | set-up [s] | whole search / Brevitas QAT (est.) | "
                 "whole search / 8-bit supernet QAT (est.) |",
                 "|---|---:|---:|---:|---:|---:|---:|"]
        qb, qs = s["qat_brevitas_step_ms"], s["qat_supernet_step_ms"]

        def whole(setup, ms_search, ms_warm, qat_setup, ms_qat):
            search_s = setup + per_epoch * ((epochs - warm) * ms_search + warm * ms_warm) / 1e3
            return search_s / (qat_setup + per_epoch * epochs * ms_qat / 1e3)

        for mode in ("auto", "softmax"):
            ms_, mw = s[f"search_{mode}_step_ms"], s[f"warmup_{mode}_step_ms"]
            su = s[f"search_setup_s_{mode}"]
            wb = whole(su, ms_, mw, s["qat_setup_s"], qb)
            ws = whole(su, ms_, mw, s["qat_setup_s"], qs)
            figures[f"jet_search_{mode}_vs_brevitas_qat_step_ratio"] = ms_ / qb
            figures[f"jet_search_{mode}_vs_supernet_qat_step_ratio"] = ms_ / qs
            figures[f"jet_search_{mode}_vs_brevitas_qat_whole_ratio_est"] = wb
            figures[f"jet_search_{mode}_vs_supernet_qat_whole_ratio_est"] = ws
            srows.append(f"| {mode} | {ms_:.2f} | {ms_ / qb:.2f} | {ms_ / qs:.2f} | {su:.1f} | "
                         f"{wb:.2f} | {ws:.2f} |")
        if args.compile:
            ms_ = s["search_auto_compiled_step_ms"]
            figures["jet_search_auto_compiled_vs_brevitas_qat_step_ratio"] = ms_ / qb
            srows.append(f"| auto, torch.compile (first 2 steps "
                         f"{s['search_first_steps_s_auto_compiled']:.0f} s) | {ms_:.2f} | "
                         f"{ms_ / qb:.2f} | {ms_ / qs:.2f} | "
                         f"{s['search_setup_s_auto_compiled']:.1f} | - | - |")
        srows.append(f"| QAT steps: Brevitas {qb:.2f} ms, 8-bit supernet {qs:.2f} ms; QAT set-up "
                     f"{s['qat_setup_s']:.1f} s | | | | | | |")
        note += ("\n".join(srows) + "\n\nSearch steps: `arch_step` on a validation batch + one "
                 "weight step (Adam), space and schedule of `jet_precision_search.py --widths` "
                 "(bits 2..8, widths searched, batch 256, LUT budget halfway); QAT steps: the "
                 "derived widest 8-bit Brevitas model and the uniform 8-bit single-choice "
                 "supernet, same batches, interleaved. Whole-search estimate: set-up + 15 epochs "
                 f"of {per_epoch} steps of the `small` jet set (2 warm-up epochs of weight steps "
                 "only) against set-up + as many QAT steps.\n")
    record(__file__, figures, "\n".join(rows) + note, write=not args.no_write)


if __name__ == "__main__":
    main()
