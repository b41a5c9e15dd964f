"""Files that try to run code: a result ``model.pt`` naming a callable, a whole-module pickle.

Each crafted payload would leave a marker file if its code ran; none may.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from connas4ml_torch.cli import main as cli_main
from connas4ml_torch.errors import UnsafeFileError
from connas4ml_torch.run import load_derived


def _crafted_result(path: Path, marker: Path, model: str) -> Path:
    """A `connas4ml search` model.pt whose config names ``model`` with a shell command argument."""
    blob = {"format": "connas4ml-derived-v1",
            "config": {"model": model, "model_args": {"command": f"touch {marker}"},
                       "data": {"dataset": "jets"}},
            "choices": {}, "input_shape": [16], "state_dict": {}}
    torch.save(blob, path)
    return path


@pytest.mark.parametrize("entry", ["os:system", "subprocess:getoutput", "builtins:exec"])
def test_result_file_cannot_choose_the_code_that_runs(tmp_path, entry, capsys):
    marker = tmp_path / "ran"
    path = _crafted_result(tmp_path / "model.pt", marker, entry)
    with pytest.raises(UnsafeFileError, match=r"may not choose the code that runs.*--factory"):
        load_derived(path)
    rc = cli_main(["export", str(path), "--example", str(_example(tmp_path)), "--out",
                   str(tmp_path / "prj"), "--quiet"])
    assert rc == 2 and "may not choose the code" in capsys.readouterr().err
    assert not marker.exists()
    assert not (tmp_path / "prj").exists()


def _example(tmp_path: Path) -> Path:
    import numpy as np

    p = tmp_path / "x.npy"
    np.save(p, np.zeros((4, 16), np.float32))
    return p


class _Payload:
    """Unpickling this runs ``os.system``: the classic pickle exploit."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_whole_module_pickle_is_refused_unless_asked_for(tmp_path, capsys):
    marker = tmp_path / "ran"
    path = tmp_path / "whole.pt"
    with open(path, "wb") as f:
        pickle.dump(_Payload(marker), f)
    rc = cli_main(["export", str(path), "--example", str(_example(tmp_path)), "--out",
                   str(tmp_path / "prj"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "--unsafe-pickle" in err and "state_dict" in err
    assert not marker.exists()


def test_a_crafted_result_is_not_even_unpickled_beyond_tensors(tmp_path):
    """torch.load(weights_only=True) refuses the payload before any of it runs."""
    marker = tmp_path / "ran"
    path = tmp_path / "model.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": "connas4ml-derived-v1", "config": _Payload(marker)}, f)
    with pytest.raises(UnsafeFileError, match="loads without running code"):
        load_derived(path)
    assert not marker.exists()
