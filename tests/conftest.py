"""Shared test fixtures: the read-only ``../shared`` corpus, skipped cleanly when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
REPORTS_DIR = SHARED_DATA / "hls4ml-reports"


@pytest.fixture(scope="session")
def reports_dir() -> Path:
    """The real hls4ml report corpus (read in place, never copied)."""
    if not REPORTS_DIR.is_dir():
        pytest.skip("../shared/data/hls4ml-reports is absent")
    return REPORTS_DIR
