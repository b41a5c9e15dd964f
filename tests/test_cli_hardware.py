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


def test_surrogate_conformalize_sets_network_intervals_from_held_out_projects(reports_dir, tmp_path,
                                                                              capsys) -> None:
    """Seven complete projects the shipped default was not fitted on: their residuals become its
    network intervals (one source: the top-level folder); a tree with one project is refused."""
    from connas4ml_torch.hardware.model import ResourceModel

    out = tmp_path / "conf.skops"
    assert main(["surrogate", "conformalize", "default", str(reports_dir / "Lrozzy+hls4ml_OpenML"),
                 "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "90% network interval" in text and "wrote" in text
    m, d = ResourceModel.load(out), ResourceModel.default()
    assert m.conformal_counts_["LUT"] == 7
    assert m.interval_counts_["model"]["LUT"] == 7 != d.interval_counts_["model"]["LUT"]
    assert not (m.intervals_["model"]["LUT"] == d.intervals_["model"]["LUT"]).all()
    bad = tmp_path / "one.skops"
    assert main(["surrogate", "conformalize", "default", str(reports_dir / NRP), "-o", str(bad)]) == 2
    assert "needs at least 5" in capsys.readouterr().err and not bad.exists()
