"""Synthesis sweeps: sampling, tool discovery, atomic store, retries, resume, executors.

Vivado/Vitis are absent on CI machines, so the sweeps here run ``tests/standin_synth.py``, a
STAND-IN for the vendor synthesis command that copies REAL report files from
``../shared/data/hls4ml-reports`` into each project at run time. Everything around it is the
real code path: one-layer Brevitas network -> ``connas4ml_torch.export.convert`` -> hls4ml
project, subprocess with timeout, log capture, ``read_project``, atomic rows, retries, resume,
on a real Dask ``LocalCluster`` (and the local process pool). The real vendor flow is tested
where the tools exist (``test_real_vendor_flow``) and skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from connas4ml_torch.hardware.config import HLSConfig
from connas4ml_torch.synth.sampling import config_hash, sample_specs
from connas4ml_torch.synth.store import SweepStore
from connas4ml_torch.synth.sweep import SweepConfig, load_config, plan_sweep, run_sweep
from connas4ml_torch.synth.tools import ToolNotFoundError, vendor_tool

HERE = Path(__file__).resolve().parent
STANDIN = HERE / "standin_synth.py"
PART = "xcu250-figd2104-2L-e"


def _markers(d: Path) -> dict[str, int]:
    """Stand-in invocations per job hash (one marker file per invocation)."""
    counts: dict[str, int] = {}
    for p in d.glob("*.*.*"):
        counts[p.name.split(".")[0]] = counts.get(p.name.split(".")[0], 0) + 1
    return counts


def _gone(pid: int, wait_s: float = 5.0) -> bool:
    """True once ``pid`` no longer runs (exited, or a zombie waiting to be reaped)."""
    deadline = time.time() + wait_s
    while time.time() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def _cfg(out: Path, markers: Path, *standin_args: str, n_in=(8, 16), n_out=(4,), retries=1,
         timeout_s=60.0, executor=None, reports_dir: Path | None = None) -> dict:
    """A sweep config dict whose synthesis command is the stand-in."""
    cmd = ["{python}", str(STANDIN), "{project_dir}", "--project-name", "{project_name}",
           "--markers", str(markers), *standin_args]
    if reports_dir is not None:
        cmd += ["--reports-dir", str(reports_dir)]
    return {
        "output_dir": str(out),
        "hls": {"backend": "Vitis", "part": PART, "clock_period": 5},
        "space": {"layer_type": ["Dense"], "n_in": list(n_in), "n_out": list(n_out),
                  "weight_bits": [4], "input_bits": [6]},
        "synthesis": {"command": cmd, "retries": retries, "timeout_s": timeout_s},
        "executor": executor or {"kind": "local", "workers": 1},
    }


@pytest.fixture(scope="module")
def dask_client():
    """One real Dask LocalCluster (2 worker processes, 1 thread each) for the module."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)

    def warm() -> None:  # import the export stack once per worker, outside the timed tests
        import connas4ml_torch.export  # noqa: F401
        import connas4ml_torch.synth.jobs  # noqa: F401

    client.run(warm)
    yield client
    client.close()
    cluster.close()


@pytest.fixture
def dask_executor(dask_client):
    from connas4ml_torch.synth.executors import DaskExecutor

    return DaskExecutor(client=dask_client)


# ---- sampling and de-duplication ---------------------------------------------------------------
def test_grid_dedupes_by_content_hash(tmp_path):
    space = {"layer_type": ["Dense", "Conv1D"], "n_in": [4, 8], "n_out": [4],
             "kernel": [1, 3], "out_size": [8], "weight_bits": [4, 8]}
    cfg = SweepConfig.from_dict({
        "output_dir": str(tmp_path / "o"), "hls": {"part": PART}, "space": space,
        "synthesis": {"command": ["{python}", str(STANDIN), "{project_dir}"]}})
    specs = sample_specs(space, HLSConfig(part=PART))
    assert len(specs) == 2 * 2 * 2 * 2  # raw grid: Dense repeats for each kernel choice
    jobs = plan_sweep(cfg)
    # Dense ignores kernel: 2 (n_in) x 2 (bits) Dense + 2 x 2 x 2 Conv1D
    assert len(jobs) == 4 + 8
    assert len({j.hash for j in jobs}) == len(jobs)
    assert {j.spec.part for j in jobs} == {PART}
    # the hash is the content: stable, and it changes with tool version, part and seed
    s = jobs[0].spec
    h = config_hash(s, "vitis_hls", "2023.1", {"seed": 0})
    assert h == config_hash(s, "vitis_hls", "2023.1", {"seed": 0})
    others = {config_hash(s, "vitis_hls", "2024.1", {"seed": 0}),
              config_hash(s, "vivado_hls", "2023.1", {"seed": 0}),
              config_hash(s, "vitis_hls", "2023.1", {"seed": 1}),
              config_hash(s.with_hls(HLSConfig(part="xc7z020clg400-1")), "vitis_hls", "2023.1",
                          {"seed": 0})}
    assert h not in others and len(others) == 4


@pytest.mark.parametrize("method", ["lhs", "sobol"])
def test_space_filling_designs(method):
    space = {"n_in": [4, 8, 16, 32, 64], "n_out": [4, 8, 16, 32, 64],
             "weight_bits": [2, 3, 4, 5, 6, 7, 8, 9, 10, 12], "reuse_factor": [1, 2, 4, 8, 16]}
    hls = HLSConfig(part=PART)
    a = sample_specs(space, hls, method, n=10, seed=3)
    assert len(a) == 10 and len({tuple(sorted(s.to_dict().items())) for s in a}) == 10
    assert a == sample_specs(space, hls, method, n=10, seed=3)       # reproducible
    assert a != sample_specs(space, hls, method, n=10, seed=4)
    for s in a:
        assert s.n_in in space["n_in"] and s.reuse_factor in space["reuse_factor"]
    if method == "lhs":  # stratified: each of the 5 levels of an axis exactly twice in 10 points
        for axis in ("n_in", "n_out", "reuse_factor"):
            counts = [sum(getattr(s, axis) == v for s in a) for v in space[axis]]
            assert counts == [2] * 5, (axis, counts)
    # asking for more points than the grid has: every configuration once
    small = {"n_in": [4, 8], "weight_bits": [2, 4, 8]}
    assert len(sample_specs(small, hls, method, n=50)) == 6


@pytest.mark.parametrize("bad, words", [
    ({"sampling": {"method": "halton"}}, ["sampling.method", "grid|lhs|sobol|random"]),
    ({"synthesis": {"retries": "3"}}, ["synthesis.retries", "int", "'3'"]),
    ({"synthesis": {"timeout": 5}}, ["unknown key synthesis.timeout", "did you mean 'timeout_s'"]),
    ({"synthesis": {"timeout_s": float("nan")}}, ["synthesis.timeout_s", "finite"]),
    ({"synthesis": {"timeout_s": float("inf")}}, ["synthesis.timeout_s", "finite"]),
    ({"space": {"n_in": [8, -1]}}, ["space.n_in", "-1", "positive int"]),
    ({"space": {"width": [8]}}, ["space.width", "unknown axis"]),
    ({"hls": {"backend": "Quartus"}}, ["hls", "backend", "Vitis"]),
    ({"executor": {"kind": "k8s"}}, ["executor.kind", "slurm"]),
    ({"outptu_dir": "x"}, ["unknown key outptu_dir", "did you mean 'output_dir'"]),
])
def test_config_errors_name_key_and_type(tmp_path, bad, words):
    d = {"output_dir": str(tmp_path), **bad}
    with pytest.raises(ValueError) as e:
        SweepConfig.from_dict(d)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


# ---- tool discovery ----------------------------------------------------------------------------
def test_missing_vendor_tools_fail_before_any_project(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    out = tmp_path / "out"
    cfg = SweepConfig.from_dict({"output_dir": str(out), "hls": {"backend": "Vitis"},
                                 "space": {"n_in": [8]}})
    with pytest.raises(ToolNotFoundError, match=r"vitis_hls.*settings64\.sh.*synthesis\.tools"):
        run_sweep(cfg, progress=False)
    assert not out.exists()  # nothing written
    with pytest.raises(ToolNotFoundError, match="vivado_hls"):
        vendor_tool("Vivado")
    with pytest.raises(ToolNotFoundError, match="configured path '/opt/nowhere'"):
        vendor_tool("Vivado", configured={"vivado_hls": "/opt/nowhere"})
    # a tool found (an executable named vitis_hls under a versioned install folder) is used and
    # its version read from the path; vsynth then needs vivado too
    inst = tmp_path / "Vitis_HLS" / "2023.1" / "bin"
    inst.mkdir(parents=True)
    exe = inst / "vitis_hls"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    tool = vendor_tool("Vitis", configured={"vitis_hls": str(inst.parent)})
    assert tool.name == "vitis_hls" and tool.version == "2023.1" and tool.writes_build_opt
    assert tool.command("/p", "myproject")[0] == str(exe)
    with pytest.raises(ToolNotFoundError, match=r"`vivado`.*vsynth"):
        vendor_tool("Vitis", vsynth=True, configured={"vitis_hls": str(exe)})
    # the CLI turns it into a one-line error and exit code 2
    from connas4ml_torch.cli import main

    y = tmp_path / "s.yaml"
    y.write_text(f"output_dir: {out}\nhls: {{backend: Vivado}}\n")
    assert main(["sweep", str(y), "--no-progress"]) == 2
    assert not out.exists()


@pytest.mark.slow
def test_real_vendor_flow(tmp_path):
    """The real C synthesis of one small Dense layer, where the vendor tools exist."""
    backend = next((b for b, t in (("Vitis", "vitis_hls"), ("Vitis", "vitis-run"),
                                   ("Vivado", "vivado_hls")) if shutil.which(t)), None)
    if backend is None:
        pytest.skip("no vendor HLS tool (vitis_hls / vitis-run / vivado_hls) on PATH")
    cfg = SweepConfig.from_dict({
        "output_dir": str(tmp_path / "o"), "hls": {"backend": backend, "part": PART},
        "space": {"n_in": [4], "n_out": [4], "weight_bits": [4], "input_bits": [4]},
        "synthesis": {"timeout_s": 3600, "retries": 0}})
    res = run_sweep(cfg, progress=False)
    row = res.frame().iloc[0]
    assert res.done == 1, row["log_tail"]
    assert row["LUT"] > 0 and row["lat_worst"] >= 0


# ---- the store ---------------------------------------------------------------------------------
_WRITER = textwrap.dedent("""
    # Writes complete rows, then stops INSIDE the next write at the point named by argv[2] and
    # tells the parent, which kills it there: a synchronised kill, not a timed one.
    import hashlib, os, sys
    from connas4ml_torch.synth import store as store_mod
    from connas4ml_torch.synth.store import SweepStore
    store = SweepStore(sys.argv[1]); store.create()
    where = sys.argv[2]                     # "partial": half the bytes written; "unrenamed":
    real_fdopen, real_replace = os.fdopen, os.replace   # all written, fsynced, not renamed yet

    def row(i):
        body = "x" * (1 << 16) + str(i)
        return {"hash": f"job{i}", "i": i, "body": body,
                "sha": hashlib.sha256(body.encode()).hexdigest()}

    for i in range(3):
        store.write_row(row(i))

    class Half:
        def __init__(self, f): self.f = f
        def __enter__(self): return self
        def __exit__(self, *a): return self.f.__exit__(*a)
        def write(self, data):
            self.f.write(data[: len(data) // 2]); self.f.flush()
            print("stopped", flush=True); sys.stdin.readline()   # killed while waiting here
        def __getattr__(self, k): return getattr(self.f, k)

    def stop_before_replace(src, dst):
        print("stopped", flush=True); sys.stdin.readline()
        real_replace(src, dst)

    if where == "partial":
        store_mod.os.fdopen = lambda fd, mode: Half(real_fdopen(fd, mode))
    else:
        store_mod.os.replace = stop_before_replace
    store.write_row(row(0))  # overwrites job0: a kill must leave the old complete row
""")


@pytest.mark.parametrize("where", ["partial", "unrenamed"])
def test_killed_writer_leaves_no_corrupt_row(tmp_path, where):
    """SIGKILL a writer in the middle of a row (half written / written but not renamed): the
    readers see only complete rows, the old row survives, the next sweep removes the leftover."""
    import hashlib

    store = SweepStore(tmp_path / "s")
    p = subprocess.Popen([sys.executable, "-c", _WRITER, str(store.root), where],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "stopped"  # the writer is inside write_row now
        leftovers = list(store.rows_dir.glob(".*.tmp"))
        assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0
    finally:
        p.kill()
        p.wait()
    rows = store.load_rows()
    assert sorted(rows) == ["job0", "job1", "job2"]
    for h, r in rows.items():
        assert r["hash"] == h and r["i"] == int(h[-1])  # job0 is still the first, complete row
        assert hashlib.sha256(r["body"].encode()).hexdigest() == r["sha"]
    store.create()  # the next sweep removes the temporary files of killed writers
    assert not list(store.rows_dir.glob(".*.tmp"))


# ---- jobs: timeout, crash, killed worker ---------------------------------------------------------
def test_timeout_kills_the_tool_and_crash_is_recorded(tmp_path, reports_dir):
    from connas4ml_torch.synth.jobs import run_job

    markers = tmp_path / "m"
    cfg = SweepConfig.from_dict(_cfg(tmp_path / "o", markers, "--hang", n_in=(8,), retries=0,
                                     timeout_s=1.5, reports_dir=reports_dir))
    (job,) = plan_sweep(cfg)
    t0 = time.perf_counter()
    row = run_job(job)
    assert time.perf_counter() - t0 < 15
    assert row["status"] == "failed" and row["final"] and "timed out after 1.5 s" in row["error"]
    assert "hanging (pid" in row["log_tail"]  # the tool's own output reached the log tail
    pids = [int(x) for x in (markers / f"pids.{job.hash}").read_text().split()]
    for pid in pids:  # the tool AND its child are gone (whole process group killed)
        assert _gone(pid), f"process {pid} survived the timeout"
    stored = SweepStore(cfg.output_dir).load_rows()[job.hash]
    assert stored["status"] == "failed" and stored["error"] == row["error"]

    cfg2 = SweepConfig.from_dict(_cfg(tmp_path / "o2", markers, "--crash", n_in=(8,), retries=0,
                                      reports_dir=reports_dir))
    row = run_job(plan_sweep(cfg2)[0])
    assert row["status"] == "failed" and "SIGABRT" in row["error"]


def test_killed_worker_is_retried_on_local_pool(tmp_path, reports_dir):
    """The stand-in SIGKILLs the pool worker on its first call: the job is retried and succeeds."""
    markers = tmp_path / "m"
    cfg = SweepConfig.from_dict(_cfg(tmp_path / "o", markers, "--kill-parent-first", "1",
                                     n_in=(8,), retries=1, reports_dir=reports_dir,
                                     executor={"kind": "local", "workers": 1}))
    with pytest.warns(UserWarning, match="worker lost"):
        res = run_sweep(cfg, progress=False)
    assert (res.done, res.failed, res.retried) == (1, 0, 1)
    (row,) = SweepStore(cfg.output_dir).load_rows().values()
    assert row["status"] == "ok" and row["attempts"] == 2
    assert list(_markers(markers).values()) == [2]


# ---- sweeps on a real Dask LocalCluster ----------------------------------------------------------
def test_dask_sweep_retry_then_success_and_reports_readable(tmp_path, reports_dir, dask_executor):
    from connas4ml_torch.hardware.reports import read_reports

    markers = tmp_path / "m"
    cfg = SweepConfig.from_dict(_cfg(tmp_path / "o", markers, "--fail-first", "1",
                                     n_in=(8, 16, 32), retries=1, reports_dir=reports_dir))
    res = run_sweep(cfg, executor=dask_executor, progress=False)
    assert (res.planned, res.done, res.failed, res.retried, res.remaining) == (3, 3, 0, 3, 0)
    rows = SweepStore(cfg.output_dir).load_rows()
    assert len(rows) == 3 and all(r["status"] == "ok" and r["attempts"] == 2 for r in rows.values())
    assert _markers(markers) == dict.fromkeys(rows, 2)
    r = next(iter(rows.values()))
    assert r["LUT"] == 116694 and r["DSP"] == 2557  # the copied real report's numbers
    assert r["n_layer_reports"] == 1 and r["t_write_s"] > 0 and r["project_name"] == "myproject"
    assert {r["n_in"] for r in rows.values()} == {8, 16, 32}
    # the output folder is a tree of hls4ml projects that read_reports (surrogate fit) reads
    df = read_reports(cfg.output_dir, progress=False)
    assert df.attrs["scan"]["projects"] == 3 and df.attrs["scan"]["skipped"] == 0
    assert set(df["level"]) == {"model", "layer"}
    assert (cfg.output_dir / "sweep.csv").is_file()


def test_dask_sweep_failure_recorded_with_log_tail_and_not_redone(tmp_path, reports_dir,
                                                                  dask_executor):
    markers = tmp_path / "m"
    cfg = SweepConfig.from_dict(_cfg(tmp_path / "o", markers, "--fail-always", n_in=(8, 16),
                                     retries=2, reports_dir=reports_dir))
    res = run_sweep(cfg, executor=dask_executor, progress=False)
    assert (res.done, res.failed, res.retried) == (0, 2, 4)
    rows = SweepStore(cfg.output_dir).load_rows()
    for r in rows.values():
        assert r["status"] == "failed" and r["attempts"] == 3
        assert "exited with code 1" in r["error"]
        assert "stand-in simulated synthesis failure (invocation 3)" in r["log_tail"]
    assert _markers(markers) == dict.fromkeys(rows, 3)  # bounded: 1 + 2 retries
    again = run_sweep(cfg, executor=dask_executor, progress=False)
    assert (again.skipped, again.done, again.failed) == (2, 0, 0)
    assert _markers(markers) == dict.fromkeys(rows, 3)  # failed rows are finished: not redone


def test_interrupted_sweep_resumes_without_redoing_or_losing_jobs(tmp_path, reports_dir,
                                                                  dask_client, dask_executor):
    """Ctrl-C a running `connas4ml sweep` (a real SIGINT to its process group) mid-way, rerun.

    The stand-ins after the first two wait at a gate, so the interrupt lands while two jobs
    are done, up to two are running and the rest are queued, however slow the machine is."""
    markers, gate = tmp_path / "m", tmp_path / "gate"
    address = dask_client.scheduler.address
    d = _cfg(tmp_path / "o", markers, "--hold-after", "2", "--gate", str(gate),
             n_in=(4, 8, 16), n_out=(4, 8), retries=0, reports_dir=reports_dir,
             executor={"kind": "dask", "address": address})
    y = tmp_path / "sweep.yaml"
    y.write_text(json.dumps(d))  # JSON is YAML
    store = SweepStore(d["output_dir"])
    p = subprocess.Popen([sys.executable, "-m", "connas4ml_torch.cli", "sweep", str(y),
                          "--no-progress"], start_new_session=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and (len(list(store.rows_dir.glob("*.json"))) < 2
                                           or len(_markers(markers)) < 3):
            assert p.poll() is None, p.communicate()
            time.sleep(0.05)
        os.killpg(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        gate.touch()  # the held stand-ins go on (and a failed test leaves no job waiting)
    assert p.returncode == 130, (out, err)
    assert "INTERRUPTED" in err and "rerun" in err
    # jobs already running on the cluster's workers (threads cannot be stopped) finish and store
    # their rows: wait until every stand-in that started has its row (fails if a job is lost)
    deadline = time.time() + 60
    while time.time() < deadline and set(_markers(markers)) != set(store.load_rows()):
        time.sleep(0.1)
    first = set(store.load_rows())
    assert 3 <= len(first) <= 4, first  # the two before the gate and the one or two held there
    assert set(_markers(markers)) == first  # no stand-in ran without leaving its row

    cfg = load_config(y)
    res = run_sweep(cfg, executor=dask_executor, progress=False)
    assert (res.planned, res.skipped, res.done, res.failed) == (6, len(first), 6 - len(first), 0)
    rows = store.load_rows()
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows.values())  # none lost
    assert _markers(markers) == dict.fromkeys(rows, 1)  # none redone


def test_sigterm_to_the_driver_ends_the_tools_it_started(tmp_path, reports_dir):
    """`kill <driver>` (SIGTERM, not a terminal's Ctrl-C to the whole group) ends the hanging
    synthesis tool and its child, and the driver exits as interrupted."""
    markers = tmp_path / "m"
    d = _cfg(tmp_path / "o", markers, "--hang", n_in=(8,), retries=0, timeout_s=600,
             reports_dir=reports_dir)
    y = tmp_path / "sweep.yaml"
    y.write_text(json.dumps(d))
    p = subprocess.Popen([sys.executable, "-m", "connas4ml_torch.cli", "sweep", str(y),
                          "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list(markers.glob("pids.*")):  # the tool is up
            assert p.poll() is None, p.communicate()
            time.sleep(0.05)
        pids = [int(x) for x in next(markers.glob("pids.*")).read_text().split()]
        p.send_signal(signal.SIGTERM)  # the driver only
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, (out, err)
    assert "INTERRUPTED" in err
    for pid in pids:
        assert _gone(pid), f"tool process {pid} outlived the terminated driver"


# ---- batch systems: the YAML -> dask-jobqueue mapping (nothing is submitted) ---------------------
def test_jobqueue_settings_map_to_cluster_objects():
    pytest.importorskip("dask_jobqueue")
    from connas4ml_torch.synth.executors import jobqueue_cluster_kwargs

    settings = {"kind": "slurm", "jobs": 4, "cores": 8, "memory": "32GB", "queue": "short",
                "account": "hep", "walltime": "04:00:00", "processes": 2,
                "job_script_prologue": ["source /opt/Xilinx/Vitis/2023.1/settings64.sh"]}
    cls, kw = jobqueue_cluster_kwargs("slurm", settings)
    assert cls.__name__ == "SLURMCluster" and "jobs" not in kw and "kind" not in kw
    cluster = cls(**kw, dashboard_address=None)  # builds the job script; submits nothing
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p short", "#SBATCH -A hep", "#SBATCH -t 04:00:00",
                 "#SBATCH --cpus-per-task=8", "source /opt/Xilinx/Vitis/2023.1/settings64.sh",
                 "--nworkers 2"):
        assert line in script, (line, script)
    cls, kw = jobqueue_cluster_kwargs("pbs", {"cores": 4, "memory": "8GB", "resource_spec":
                                              "select=1:ncpus=4", "queue": "batch"})
    assert cls.__name__ == "PBSCluster" and kw["resource_spec"] == "select=1:ncpus=4"
    cls, kw = jobqueue_cluster_kwargs("htcondor", {"cores": 1, "memory": "4GB", "disk": "2GB"})
    assert cls.__name__ == "HTCondorCluster"
    with pytest.raises(ValueError, match=r"unknown keys \['partition'\].*queue"):
        jobqueue_cluster_kwargs("slurm", {"cores": 1, "memory": "1GB", "partition": "x"})
    with pytest.raises(ValueError, match=r"executor.memory: required for slurm"):
        jobqueue_cluster_kwargs("slurm", {"cores": 1})


# ---- CLI ---------------------------------------------------------------------------------------
def test_cli_dry_run_writes_nothing(tmp_path, capsys):
    from connas4ml_torch.cli import main

    out = tmp_path / "o"
    y = tmp_path / "s.yaml"
    y.write_text(json.dumps({**_cfg(out, tmp_path / "m", n_in=(4, 8, 16)),
                             "sampling": {"method": "lhs", "n": 2, "seed": 1}}))
    assert main(["sweep", str(y), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "2 unique configurations, 0 already finished" in text and "custom:standin_synth.py" in text
    assert not out.exists()


def test_rows_with_impossible_measurements_are_left_out_and_redone(tmp_path):
    store = SweepStore(tmp_path / "s").create()
    store.write_row({"hash": "good", "status": "ok", "LUT": 120, "FF": 80.0, "lat_worst": 3})
    store.write_row({"hash": "forged", "status": "ok", "LUT": -99999, "FF": "garbage"})
    store.write_row({"hash": "overflow", "status": "ok", "LUT": float("inf")})
    with pytest.warns(UserWarning, match=r"forged\.json has impossible measurements "
                                         r"\(LUT=-99999, FF='garbage'\)"):
        rows = store.load_rows()
    assert sorted(rows) == ["good"]
    assert store.finished() == {"good"}  # the others are planned again
    with pytest.warns(UserWarning):
        df = store.to_frame()
    assert list(df["hash"]) == ["good"]
