"""The ``connas4ml reports`` / ``connas4ml surrogate`` subcommands on real reports."""

from __future__ import annotations

import pandas as pd

from connas4ml_torch.cli import main

NRP = "nrp-nautilus+6nrp-hls4ml"


def test_reports_scan_writes_csv(reports_dir, tmp_path, capsys) -> None:
    out = tmp_path / "scan.csv"
    assert main(["reports", "scan", str(reports_dir / NRP), "--quiet", "-o", str(out)]) == 0
    df = pd.read_csv(out)
    assert (df["level"] == "model").sum() == 1 and (df["level"] == "layer").sum() == 8
    assert "1 projects, 1 model reports, 8 layer reports, 0 files skipped" in capsys.readouterr().out


def test_surrogate_eval_default(reports_dir, capsys) -> None:
    assert main(["surrogate", "eval", "default", str(reports_dir / NRP)]) == 0
    out = capsys.readouterr().out
    assert "median APE %" in out and "LUT" in out


def test_surrogate_fit_without_configured_layers_is_a_clear_error(reports_dir, tmp_path, capsys) -> None:
    rc = main(["surrogate", "fit", str(reports_dir / "hls4ml/test/pytest/test_report"), "-o",
               str(tmp_path / "m.skops")])
    assert rc == 2
    assert "no layer rows with a full configuration" in capsys.readouterr().err
    assert main(["reports", "scan", str(tmp_path / "missing"), "--quiet"]) == 2
