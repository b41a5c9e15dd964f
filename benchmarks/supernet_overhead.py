"""Train-step time and peak memory of the supernet against the derived widest Brevitas model
and the plain float PyTorch network of the same widest shape (issue 2).

Supernet: 4 width choices, 4 weight-bit choices, 3 activation-bit choices per layer. Each
(network, variant) is measured in a fresh subprocess so that peak memory is its own: on CPU the
peak resident-set growth during the training steps, on GPU ``torch.cuda.max_memory_allocated``.
Times are medians over repeats, and variants of one network run back to back.

    python benchmarks/supernet_overhead.py [--quick] [--device cuda] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

NETS = {
    # name: (factory, input shape, batch, widths per layer)
    "jet_mlp": ("jet", (16,), 1024),
    "calo_cnn_1.8M": ("calo", (5, 32, 32), 64),
}


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
        space = (cn.SearchSpace(width=widths, weight_bits=[2, 4, 6, 8], act_bits=[4, 6, 8])
                 if variant == "supernet" else cn.SearchSpace(weight_bits=[8], act_bits=[8]))
        sn = cn.searchable(base, space, example_input=x[:8].cpu())
        model = sn if variant == "supernet" else sn.derive()
    model = model.to(device).train()
    loss_fn = nn.functional.cross_entropy if kind == "jet" else (lambda o, t: (o - t).square().mean())
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return step


def measure(net: str, variant: str, device: str, repeats: int, iters: int) -> dict:
    """Runs in a subprocess: median ms per train step and peak memory growth in MiB."""
    import statistics

    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    step = build(net, variant, device)
    step()  # warm-up (lazy init, allocator)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base_mem = torch.cuda.memory_allocated()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            step()
        times.append((time.perf_counter() - t0) / iters * 1e3)
    if device == "cuda":
        peak = (torch.cuda.max_memory_allocated() - base_mem) / 2**20
        peak_total = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
        peak_total = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"ms": statistics.median(times), "peak_mib": peak, "peak_total_mib": peak_total}


def run_sub(net: str, variant: str, device: str, repeats: int, iters: int) -> dict:
    code = (f"import sys, json; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
            f"import supernet_overhead as s; "
            f"print(json.dumps(s.measure({net!r}, {variant!r}, {device!r}, {repeats}, {iters})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from _common import record

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few iterations (CI smoke run)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    repeats, iters = (2, 2) if args.quick else (5, 10)
    figures: dict[str, float] = {}
    rows = ["| network | variant | ms / train step | peak memory growth [MiB] | time ratio vs derived | memory ratio vs derived | time ratio vs float |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for net in NETS:
        res = {v: run_sub(net, v, args.device, repeats, iters) for v in ("float", "derived", "supernet")}
        for v, r in res.items():
            t_ratio = r["ms"] / res["derived"]["ms"]
            m_ratio = r["peak_total_mib"] / res["derived"]["peak_total_mib"]
            f_ratio = r["ms"] / res["float"]["ms"]
            rows.append(f"| {net} | {v} | {r['ms']:.2f} | {r['peak_mib']:.1f} (total {r['peak_total_mib']:.0f}) | "
                        f"{t_ratio:.2f} | {m_ratio:.2f} | {f_ratio:.2f} |")
            figures[f"{net}_{v}_step_ms"] = r["ms"]
            figures[f"{net}_{v}_peak_mib"] = r["peak_total_mib"]
        figures[f"{net}_supernet_vs_derived_time_ratio"] = res["supernet"]["ms"] / res["derived"]["ms"]
        figures[f"{net}_supernet_vs_derived_memory_ratio"] = (res["supernet"]["peak_total_mib"] /
                                                             res["derived"]["peak_total_mib"])
        figures[f"{net}_supernet_vs_float_time_ratio"] = res["supernet"]["ms"] / res["float"]["ms"]
    note = (f"\nDevice: {args.device}. Goal: supernet/derived time ratio <= 1.5 and memory ratio <= 1.3. "
            "Memory is the process's peak (CPU: resident set incl. the Python/torch runtime; GPU: "
            "max allocated), so ratios of totals are conservative for small networks.\n")
    record(__file__, figures, "\n".join(rows) + note, write=not args.no_write)


if __name__ == "__main__":
    main()
