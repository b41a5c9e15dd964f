"""`connas4ml search` on every example config, the demo path, and the documented config errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from connas4ml_torch.cli import main as cli_main
from connas4ml_torch.errors import ConfigError
from connas4ml_torch.run import RunConfig, load_config

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SEARCH_CONFIGS = sorted(p for p in EXAMPLES.glob("*.yaml") if not p.name.startswith("sweep"))


def test_every_subcommand_has_consistent_help():
    out = subprocess.run([sys.executable, "-m", "connas4ml_torch.cli", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for cmd in ("search", "export", "reports", "surrogate", "sweep"):
        assert cmd in out
        sub = subprocess.run([sys.executable, "-m", "connas4ml_torch.cli", cmd, "--help"],
                             capture_output=True, text=True)
        assert sub.returncode == 0 and sub.stdout.startswith(f"usage: connas4ml {cmd}"), cmd


@pytest.mark.parametrize("config", SEARCH_CONFIGS, ids=[p.stem for p in SEARCH_CONFIGS])
def test_example_configs_validate(config):
    cfg = load_config(config)
    assert cfg.model and cfg.output


@pytest.mark.slow
@pytest.mark.parametrize("config", SEARCH_CONFIGS, ids=[p.stem for p in SEARCH_CONFIGS])
def test_search_runs_each_example_config(config, tmp_path, capsys):
    rc = cli_main(["search", str(config), "--output", str(tmp_path), "--epochs", "2",
                   "--max-steps", "6", "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "predicted LUT" in printed and "chosen:" in printed
    res = json.loads((tmp_path / "results.json").read_text())
    budgets = res["budgets"]
    for r, b in budgets.items():
        assert res["rows"]["searched"][r] <= b
    if load_config(config).export.enabled:
        assert res["bit_exact"] is True
        assert (tmp_path / "hls4ml_prj").is_dir()


def _bad(**changes):
    cfg = {"model": "connas4ml_torch.models:jet_mlp", "data": {"dataset": "jets"}}
    for key, value in changes.items():
        section, _, sub = key.partition("__")
        if sub:
            cfg.setdefault(section, {})[sub] = value
        else:
            cfg[section] = value
    return cfg


@pytest.mark.parametrize("cfg,message", [
    (_bad(schedule__epochs="ten"), r"schedule\.epochs: expected int, got str 'ten'"),
    (_bad(schedule__lr=True), r"schedule\.lr: expected float, got bool"),
    (_bad(schedul={"epochs": 1}), r"unknown key schedul \(did you mean 'schedule'\?\)"),
    (_bad(space__widths={"fc1": [8]}), r"unknown key space\.widths \(did you mean 'width'\?\)"),
    (_bad(model="connas4ml_torch.models.jet_mlp"), r"model: expected 'package\.module:factory'"),
    (_bad(data={"dataset": "mnist"}), r"data\.dataset: expected 'jets' or 'calo'"),
    (_bad(data={"dataset": "jets", "loader": "x:y"}), r"exactly one of data\.dataset"),
    (_bad(hls={"io_type": "io_serial"}), r"hls: io_type='io_serial' is not one of .*io_stream"),
    (_bad(hls={"IOtype": "io_stream"}), r"unknown key hls\.IOtype \(did you mean 'IOType'\?\)"),
    (_bad(budgets={"LUTS": 10}), r"budgets\.LUTS: unknown resource"),
    (_bad(budgets={"LUT": "150%"}), r"budgets\.LUT: .*a share must be in \(0%, 100%\]"),
    (_bad(budgets={"LUT": float("inf")}), r"budgets\.LUT: expected a finite number"),
    (_bad(budgets={"LUT": -5}), r"budgets\.LUT: .*must be finite and >= 0"),
    (_bad(budgets={"lut": 10, "LUT": 20}), r"given twice"),
    (_bad(tradeoff={"LUT": float("nan")}), r"tradeoff\.LUT: expected a finite number"),
    (_bad(space__weight_bits=[1, 4]), r"space: .*bit width 1 outside"),
    (_bad(schedule__temperature=[1.0]), r"schedule\.temperature: expected \[start, end\]"),
    (_bad(schedule__sampling="hard"), r"schedule\.sampling: expected one of softmax, gumbel"),
    (_bad(schedule__lr_schedule="cosin"), r"schedule\.lr_schedule: expected one of constant, cosine, "
                                          r"got 'cosin' \(did you mean 'cosine'\?\)"),
    (_bad(schedule__dual_lr=-0.1), r"schedule\.dual_lr: expected a value >= 0, got -0\.1"),
    (_bad(schedule__lr=float("nan")), r"schedule\.lr: expected a finite number, got nan"),
    (_bad(schedule__warmup_epochs=-1), r"schedule\.warmup_epochs: expected a value >= 0"),
    (_bad(schedule__settle_epochs=9), r"schedule\.settle_epochs: 9 settle \+ 1 warm-up epochs leave "
                                      r"none of the 10 epochs"),
    (_bad(export={"n_verify": -3}), r"export\.n_verify: expected a value >= 1, got -3"),
    (_bad(device="gpu0"), r"device: expected a torch device such as 'cpu', 'cuda'"),
])
def test_invalid_configs_give_documented_errors(cfg, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict(cfg)


def test_lr_schedule_gives_the_search_its_scheduler():
    """schedule.lr_schedule: the run's Search.fit gets a per-step cosine to 0 (the QAT baseline's
    schedule) or nothing (constant, the default)."""
    from connas4ml_torch.run.config import Schedule

    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], 1e-3)
    assert Schedule().lr_scheduler(opt, 100) is None
    sched = Schedule(lr_schedule="cosine").lr_scheduler(opt, 100)
    for _ in range(100):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_config_file_errors_name_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model": "connas4ml_torch.models:jet_mlp",
                                    "data": {"dataset": "jets"}, "schedule": {"epoch": 3}}))
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown key schedule\.epoch \(did you mean "
                                          r"'epochs'\?\)"):
        load_config(path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_a_device_this_machine_lacks_is_refused_before_any_work(tmp_path, capsys):
    cfg = _bad(device="cuda", output=str(tmp_path / "out"))
    assert RunConfig.from_dict(cfg).device == "cuda"  # a saved config loads on any machine
    path = tmp_path / "gpu.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert cli_main(["search", str(path), "--quiet", "--no-export"]) == 2
    assert "device: 'cuda' is not available on this machine" in capsys.readouterr().err
    path.write_text(yaml.safe_dump(_bad(output=str(tmp_path / "out"))))  # --device overrides
    assert cli_main(["search", str(path), "--quiet", "--no-export", "--device", "cuda:1"]) == 2
    assert "device: 'cuda:1' is not available" in capsys.readouterr().err
    assert not (tmp_path / "out" / "baseline.json").exists()


def test_bad_entry_point_and_cli_exit_code(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"model": "no_such_module:factory", "data": {"dataset": "jets"},
                                    "output": str(tmp_path / "out")}))
    rc = cli_main(["search", str(path), "--quiet", "--no-export"])
    err = capsys.readouterr().err
    assert rc == 2 and "config key model: cannot import 'no_such_module:factory'" in err
    path.write_text("model: [unclosed")
    assert cli_main(["search", str(path)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_path_with_reduced_steps(tmp_path):
    from connas4ml_torch.demo import main

    result = main(["--quick", "--output", str(tmp_path / "demo")])
    table = result.table()
    for needle in ("predicted LUT", "predicted DSP", "accuracy (no fine-tune)", "accuracy (fine-tuned)",
                   "parameters", "wall time", "hls4ml bit-exact", "hls4ml project"):
        assert needle in table, needle
    assert result.bit_exact is True
    for r, b in result.budgets.items():
        assert result.rows["searched"][r] <= b, r
    for name in ("results.json", "model.pt", "resources_per_layer.png", "choice_probabilities.png"):
        assert (tmp_path / "demo" / name).is_file(), name
    assert (tmp_path / "demo" / "hls4ml_prj" / "firmware").is_dir()
    # the saved network rebuilds (a library model: no --factory needed) and computes the same
    import torch

    from connas4ml_torch.run import load_derived

    net, cfg, _ = load_derived(tmp_path / "demo" / "model.pt")
    x = torch.randn(32, 16)
    assert torch.equal(net(x), result.model.eval()(x)) and cfg.name == "jet_demo"


@pytest.mark.slow
def test_pareto_sweep_of_budgets_on_a_dask_cluster(tmp_path, capsys):
    rc = cli_main(["search", str(EXAMPLES / "custom_task.yaml"), "--output", str(tmp_path),
                   "--epochs", "2", "--max-steps", "8", "--no-export", "--quiet",
                   "--sweep", "LUT=40000,80000,1000", "--executor", "dask", "--workers", "2"])
    out = capsys.readouterr().out
    import pandas as pd

    df = pd.read_csv(tmp_path / "pareto.csv")
    assert len(df) == 3
    ok = df[df["error"].isna()]
    assert len(ok) == 2 and (ok["LUT"] <= ok["sweep_value"]).all()
    failed = df[df["error"].notna()]
    assert "InfeasibleBudgetError" in failed["error"].iloc[0]  # the 1000-LUT budget cannot be met
    assert rc == 1 and (tmp_path / "pareto_front.png").is_file() and "front:" in out
    assert ok["pareto"].any()


def test_check_resolves_the_space_against_the_model_before_any_training(tmp_path, capsys):
    path = tmp_path / "typo.yaml"
    cfg = {"model": "connas4ml_torch.models:jet_mlp", "data": {"dataset": "jets"},
           "space": {"width": {"fc9": [8, 16]}}, "output": str(tmp_path / "out")}
    path.write_text(yaml.safe_dump(cfg))
    assert cli_main(["search", str(path), "--check"]) == 2
    assert "width['fc9'] matches no searchable module" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written
    cfg["space"] = {"width": {"fc1": [8, 16]}}
    path.write_text(yaml.safe_dump(cfg))
    assert cli_main(["search", str(path), "--check"]) == 0
    assert "valid (" in capsys.readouterr().out


def test_search_keyword_arguments_are_validated_like_yaml():
    from test_search import HLS, SPACE, mlp, task

    import connas4ml_torch as cn

    x, _ = task()
    sn = cn.searchable(mlp(), cn.SearchSpace(**SPACE), example_input=x[:8])
    cost = cn.ResourceModel.default()
    for kw, msg in ((dict(dual_lr=-1.0), r"dual_lr: expected a value >= 0"),
                    (dict(arch_lr=float("nan")), r"arch_lr: expected a finite number"),
                    (dict(warmup_steps=-2), r"warmup_steps: expected a value >= 0"),
                    (dict(weights={"LUT": float("inf")}), r"trade-off weight LUT=inf"),
                    (dict(constraints={"LUT": "150%"}), r"a share must be in"),
                    (dict(constraints={"lut": 1e5, "LUT": 2e5}), r"given as 'lut'")):
        with pytest.raises(ConfigError if "constraints" not in kw else ValueError, match=msg):
            cn.Search(sn, cost, HLS, **kw)
