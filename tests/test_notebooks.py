"""The example notebooks run top to bottom (small settings) in a fresh kernel of this interpreter."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
KERNEL = "connas4ml-test-python"

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
kernelspec = pytest.importorskip("ipykernel.kernelspec")


@pytest.fixture(scope="module")
def jupyter_path(tmp_path_factory) -> Path:
    """A kernelspec pointing at this interpreter, in a temporary Jupyter data dir (not $HOME)."""
    prefix = tmp_path_factory.mktemp("jupyter")
    kernelspec.install(kernel_name=KERNEL, display_name="connas4ml tests", prefix=str(prefix))
    data_dir = prefix / "share" / "jupyter"
    spec = (data_dir / "kernels" / KERNEL / "kernel.json").read_text()
    assert sys.executable in spec.replace("\\\\", "\\")
    return data_dir


def run_notebook(name: str, cwd: Path, jupyter_path: Path, monkeypatch) -> tuple[str, float]:
    """Execute a notebook in ``cwd``; return all stream/text output and the wall time."""
    monkeypatch.setenv("CONNAS4ML_NB_SMALL", "1")
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        f"{name} is stored with outputs; clear them before committing"
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=600,
                                     resources={"metadata": {"path": str(cwd)}})
    t0 = time.perf_counter()
    client.execute()
    wall = time.perf_counter() - t0
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error", (
                f"{name}: {out.get('ename')}: {out.get('evalue')}\n" + "\n".join(out.get("traceback", [])))
            if out.output_type == "stream":
                texts.append(out.text)
            elif "text/plain" in out.get("data", {}):
                texts.append(out["data"]["text/plain"])
    return "\n".join(texts), wall


def test_notebooks_are_clean_nbformat4():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.nbformat == 4
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} has outputs"


@pytest.mark.slow
@pytest.mark.hls
def test_quickstart_notebook(tmp_path, jupyter_path, monkeypatch):
    text, wall = run_notebook("01_quickstart_jet_precision_search.ipynb", tmp_path, jupyter_path,
                              monkeypatch)
    print(f"01 quickstart: {wall:.1f} s")
    assert "bit-exact: True" in text
    assert "within budget: True" in text
    assert "256/256 rows bit-exact" in text
    out = tmp_path / "quickstart_out"
    assert (out / "hls4ml_prj").is_dir()
    for png in ("resources_per_layer.png", "choice_probabilities.png"):
        assert (out / png).stat().st_size > 1000
    assert (out / "search_state.pt").is_file()
    assert not (REPO / "notebooks" / "quickstart_out").exists()


@pytest.mark.slow
def test_calorimeter_notebook(tmp_path, jupyter_path, monkeypatch):
    text, wall = run_notebook("02_calorimeter_filter_search.ipynb", tmp_path, jupyter_path,
                              monkeypatch)
    print(f"02 calorimeter: {wall:.1f} s")
    assert "within budget: True" in text
    for row in ("reference", "trade-off", "budget"):
        assert row in text
    assert "MAE" in text
