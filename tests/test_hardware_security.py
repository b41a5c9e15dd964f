"""Model files: the trusted type list is exact, and crafted skops payloads never run."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from connas4ml_torch.errors import UnsafeFileError
from connas4ml_torch.hardware.analytic import persist
from connas4ml_torch.hardware.layerspec import LayerSpec
from connas4ml_torch.hardware.model import ResourceModel


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Path:
    """A freshly fitted (and calibrated) model, saved."""
    specs = [LayerSpec("Dense", i, 8, weight_bits=b, input_bits=b, part="xcvu13p-flga2577-2-e")
             for i in (4, 8, 16, 32) for b in (4, 8, 16)]
    y = {"LUT": [100.0 * s.n_in for s in specs], "latency": [2.0] * len(specs)}
    m = ResourceModel(intervals=False).fit(specs, y, groups=["a", "b"] * 6)
    m.calibration_info_ = {"n_reports": 1, "note": None, "flag": True, "factor": {"LUT": 1.5}}
    return m.save(tmp_path_factory.mktemp("m") / "model.skops")


def test_trusted_list_is_exactly_what_the_library_writes(fitted) -> None:
    types, loaders, obj = persist.schema_types(fitted)
    assert types == set(persist.TRUSTED_TYPES)
    assert loaders <= set(persist.TRUSTED_LOADERS) and not obj
    assert ResourceModel.load(fitted).calibration_info_["factor"] == {"LUT": 1.5}


def _with_payload(base: Path, out: Path, payload: dict, extra: dict[str, bytes] | None = None) -> Path:
    """``base`` with one attribute of the model replaced by ``payload`` (a schema node)."""
    with zipfile.ZipFile(base) as z:
        files = {n: z.read(n) for n in z.namelist()}
    schema = json.loads(files["schema.json"])
    schema["content"]["content"]["calibration_info_"] = payload
    files["schema.json"] = json.dumps(schema).encode()
    files.update(extra or {})
    with zipfile.ZipFile(out, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    return out


class _Boom:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _payloads(marker: Path) -> dict[str, tuple[dict, dict[str, bytes] | None]]:
    cmd = f"open({str(marker)!r}, 'w').write('x')"
    arg = {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode", "content": json.dumps(cmd),
           "is_json": True, "__id__": 1}
    shell = {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode",
             "content": json.dumps(f"touch {marker}"), "is_json": True, "__id__": 2}
    buf = io.BytesIO()
    np.save(buf, np.array([_Boom(str(marker))], dtype=object), allow_pickle=True)
    return {
        "exec": ({"__class__": "exec", "__module__": "builtins", "__loader__": "FunctionNode",
                  "content": {"args": [arg]}, "__id__": 3}, None),
        "eval": ({"__class__": "eval", "__module__": "builtins", "__loader__": "ObjectNode",
                  "content": arg, "__id__": 4}, None),
        "os.system": ({"__class__": "system", "__module__": "os", "__loader__": "FunctionNode",
                       "content": shell, "__id__": 5}, None),
        "posix.system": ({"__class__": "system", "__module__": "posix", "__loader__": "ReduceNode",
                          "content": {"args": [shell]}, "__id__": 6}, None),
        "getattr chain": ({"__class__": "getattr", "__module__": "builtins", "__loader__": "FunctionNode",
                           "content": {"args": [{"__class__": "__import__", "__module__": "builtins",
                                                 "__loader__": "FunctionNode", "content": shell,
                                                 "__id__": 7}, shell]}, "__id__": 8}, None),
        "operator": ({"__class__": "methodcaller", "__module__": "operator", "__loader__": "OperatorFuncNode",
                      "content": shell, "__id__": 9}, None),
        "object array": ({"__class__": "ndarray", "__module__": "numpy", "__loader__": "NdArrayNode",
                          "type": "json", "content": [arg], "shape": {"__class__": "list",
                          "__module__": "builtins", "__loader__": "ListNode", "content": [],
                          "__id__": 10}, "__id__": 11}, None),
        "numpy pickle": ({"__class__": "ndarray", "__module__": "numpy", "__loader__": "NdArrayNode",
                          "type": "numpy", "file": "evil.npy", "__id__": 12}, {"evil.npy": buf.getvalue()}),
    }


def test_crafted_payloads_never_run(fitted, tmp_path, monkeypatch) -> None:
    marker = tmp_path / "PWNED"
    for name, (payload, extra) in _payloads(marker).items():
        f = _with_payload(fitted, tmp_path / f"{name.replace(' ', '_')}.skops", payload, extra)
        with pytest.raises(UnsafeFileError):
            ResourceModel.load(f)
        assert not marker.exists(), name
        # the default() path reads the same way
        monkeypatch.setattr("connas4ml_torch.hardware.model.DEFAULT_MODEL_PATH", f)
        with pytest.raises(UnsafeFileError):
            ResourceModel.default()
        assert not marker.exists(), name


def test_foreign_files_are_refused(tmp_path) -> None:
    import skops.io as sio

    (tmp_path / "junk.skops").write_bytes(b"not a zip")
    with pytest.raises(UnsafeFileError, match="junk.skops"):
        ResourceModel.load(tmp_path / "junk.skops")
    sio.dump({"a": 1}, tmp_path / "dict.skops")
    with pytest.raises(UnsafeFileError):
        ResourceModel.load(tmp_path / "dict.skops")
    with pytest.raises(FileNotFoundError):
        ResourceModel.load(tmp_path / "absent.skops")


def test_a_model_of_an_older_hardware_model_is_refused_with_what_to_do(fitted, tmp_path) -> None:
    """A file fitted when the FF correction had fewer components: a clear error naming the file
    and the refit, not a shape error deep inside predict()."""
    m = ResourceModel.load(fitted)
    m.params_ = dict(m.params_, **{"FF.u": m.params_["FF.u"][:4]})
    old = m.save(tmp_path / "older.skops")
    with pytest.raises(UnsafeFileError, match=r"older\.skops.*older version.*FF.*refit"):
        ResourceModel.load(old)
