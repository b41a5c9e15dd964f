"""Each search benchmark runs end to end at ``--size tiny --no-write`` (CI smoke; ~20-60 s each
on 2 cores). The scripts print their markdown table; nothing is written to benchmarks/results."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"

CASES = {
    # script: text its table must contain
    "jet_precision_search.py": "| LUT budget fraction |",
    "calo_filter_search.py": "| baseline (8-bit QAT) |",
    "peer_trial_search.py": "| peer: TPE",
}


def _run(script: str, tmp_path: Path, *extra: str) -> str:
    env = dict(os.environ, CONNAS4ML_CACHE=str(tmp_path / "cache"), PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--size", "tiny", "--no-write", *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)  # a hang guard: ~60 s alone, 300+ on a shared, busy machine
@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_runs_tiny(script: str, tmp_path: Path) -> None:
    out = _run(script, tmp_path)
    assert CASES[script] in out
    assert "Goal" in out or "goal" in out


def test_gpu_script_names_every_benchmark() -> None:
    text = (BENCH / "gpu_full.sh").read_text()
    for script in CASES:
        if script != "peer_trial_search.py":
            assert script in text
    assert "--size full" in text and "--device cuda" in text
