#!/usr/bin/env bash
# Full-size runs of the search benchmarks on a CUDA GPU, with the GPU minutes each one took.
#
#   bash benchmarks/gpu_full.sh [--with-peer] [--no-write]
#
# 1. generates (on the CPU, all cores) and caches the full data sets: 50k jets per class (50k test jets)
#    (pythia8 + fastjet) and 50k calorimeter showers; this is not counted as GPU time;
# 2. runs, one after another on the GPU:
#      calo_filter_search.py --size full --device cuda
#      jet_precision_search.py --size full --device cuda --settle-epochs 3 --lr-schedule cosine
#      peer_trial_search.py  --size full --device cuda   (only with --with-peer: 10+ minutes)
#    each writes its own benchmarks/results/<script>.json and RESULTS.md section;
# 3. records the wall time of each run (GPU held for the whole run) in
#    benchmarks/results/gpu_full.json and a RESULTS.md section.
# Without a CUDA device it says so and exits 0.
#
# Install on the GPU machine: a CUDA build of torch first (the Makefile pins the CPU wheel), e.g.
#   python -m venv .venv && .venv/bin/pip install torch && .venv/bin/pip install -e ".[dev]"
# Measured on one H200 (2026-12-04, RESULTS.md): calo_filter_search.py --size medium --variants
# budget took 7.4 min (baseline QAT 43 s, search 169 s, three fixed networks most of the rest);
# --size full has ~1.6x the steps at 4x the batch: plan 15-25 min for calo, more with --with-peer.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
WITH_PEER=0
WRITE=()
for arg in "$@"; do
  case "$arg" in
    --with-peer) WITH_PEER=1 ;;
    --no-write) WRITE=(--no-write) ;;
    *) echo "unknown argument $arg (use --with-peer, --no-write)" >&2; exit 2 ;;
  esac
done
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_full.sh: torch sees no CUDA device; nothing run"
  exit 0
fi
JOBS=$(nproc)
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore}

t0=$(date +%s.%N)
"$PY" - "$JOBS" <<'PY'
import sys
from connas4ml_torch.datasets.calo import load_calo
from connas4ml_torch.datasets.jets import load_jets
load_jets(n_per_class=50_000, seed=0, n_jobs=int(sys.argv[1]), progress=True)
load_calo(50_000, seed=0, progress=True)
PY
data_s=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { print a - b }')

TIMES=()
run() {
  local script=$1; shift
  local s; s=$(date +%s.%N)
  "$PY" "benchmarks/$script" --size full --device cuda "${WRITE[@]}" "$@"
  TIMES+=("$script=$(awk -v a="$(date +%s.%N)" -v b="$s" 'BEGIN { print a - b }')")
}
run calo_filter_search.py
run jet_precision_search.py --jobs "$JOBS" --settle-epochs 3 --lr-schedule cosine  # the recorded CPU setup
if [ "$WITH_PEER" = 1 ]; then run peer_trial_search.py --jobs "$JOBS"; fi

"$PY" - "$data_s" "${#WRITE[@]}" "${TIMES[@]}" <<'PY'
import sys
sys.path.insert(0, "benchmarks")
from _common import machine, record
data_s, no_write, runs = float(sys.argv[1]), sys.argv[2] != "0", sys.argv[3:]
fig = {"data_generation_cpu_s": data_s}
rows = ["| benchmark (--size full --device cuda) | GPU minutes (wall, process) |", "|---|---:|"]
total = 0.0
for item in runs:
    name, secs = item.split("=")
    secs = float(secs)
    total += secs
    fig[name.removesuffix(".py") + "_gpu_min"] = secs / 60
    rows.append(f"| {name} | {secs / 60:.2f} |")
fig["total_gpu_min"] = total / 60
rows.append(f"| total | {total / 60:.2f} |")
note = (f"\n\nMachine: {machine()}. GPU minutes = wall time of each benchmark process on the GPU "
        f"machine (imports, cost tables, evaluation included; each script's own JSON has the "
        f"search time alone). Data generated beforehand on the CPU in {data_s / 60:.1f} min "
        f"(not counted). Run with `bash benchmarks/gpu_full.sh`.\n")
record("gpu_full.sh", fig, "\n".join(rows) + note, write=not no_write)
PY
