"""rule4ml worker for ``rule4ml_side_by_side.py``: runs in rule4ml's own virtual environment.

rule4ml needs TensorFlow (and torch + torch_geometric for its default GNN estimators); none of
them is a dependency of connas4ml_torch, so the benchmark runs this file with ``RULE4ML_PYTHON``
and talks JSON over stdin/stdout. This file imports nothing from connas4ml_torch.

    $RULE4ML_PYTHON benchmarks/_rule4ml_worker.py --describe   # what rule4ml accepts (no TF)
    $RULE4ML_PYTHON benchmarks/_rule4ml_worker.py < nets.json  # predictions

``--describe`` reads rule4ml's shipped board list and estimator configs without importing it and
prints ``{"version", "boards": {name: part}, "strategy", "hls4ml_version", "vivado_version",
"layer_type"}``. A prediction request is ``{"networks": [{"id", "n_in", "layers": [{"kind":
"dense", "name", "units", "reuse_factor"} | {"kind": "activation", "activation"}], "board",
"strategy", "precision", "reuse_factor", "vivado_version"}]}``; the answer is ``{"version",
"hls4ml_versions", "predictions": [{"id", "hls4ml_version", "LUT", "FF", "DSP", "BRAM",
"CYCLES", "INTERVAL"}], "errors": {id: message}, "load_s", "predict_s"}``. Each network is
predicted for every hls4ml version rule4ml knows (the reports do not say which one built them).
Exit status 3 with ``{"error": ...}`` when rule4ml cannot be imported or loaded.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

ESTIMATORS = ("BRAM", "DSP", "FF", "LUT", "CYCLES", "INTERVAL")


def _package_dir() -> Path:
    spec = importlib.util.find_spec("rule4ml")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("rule4ml is not installed in this interpreter")
    return Path(list(spec.submodule_search_locations)[0])


def describe() -> dict:
    """rule4ml's accepted boards and categories, read from its files (TensorFlow not imported)."""
    pkg = _package_dir()
    boards = json.loads((pkg / "parsers" / "supported_boards.json").read_text())
    out: dict = {
        "version": importlib.metadata.version("rule4ml"),
        "boards": {k: v["part"] for k, v in boards.items()},
    }
    # the default estimators MultiModelWrapper.load_default_models() loads
    cats: dict[str, set] = {}
    for est in ESTIMATORS:
        cfg_path = pkg / "models" / "weights" / "v2" / "gnn" / f"{est}.config.json"
        if not cfg_path.is_file():
            continue
        cfg = json.loads(cfg_path.read_text())
        maps = {
            **cfg.get("global_categorical_maps", {}),
            **cfg.get("sequential_categorical_maps", {}),
        }
        for key, mapping in maps.items():
            keys = {str(k).lower() for k in mapping}
            cats[key] = keys if key not in cats else cats[key] & keys
    out.update({k: sorted(v) for k, v in cats.items()})
    return out


def _keras_model(net: dict, name: str):
    import keras

    inputs = keras.layers.Input(shape=(int(net["n_in"]),), name="input")
    x = inputs
    for layer in net["layers"]:
        if layer["kind"] == "dense":
            x = keras.layers.Dense(int(layer["units"]), name=layer["name"])(x)
        else:
            x = keras.layers.Activation(layer["activation"])(x)
    model = keras.Model(inputs=inputs, outputs=x, name=name)  # ids may hold '/': not a name
    model.build((None, int(net["n_in"])))
    return model


def predict(request: dict) -> dict:
    t0 = time.perf_counter()
    # rule4ml is reported to segfault when TensorFlow is imported before torch_geometric: import
    # it first, explicitly (an import sorter cannot move this line below rule4ml's)
    importlib.import_module("torch_geometric")
    from rule4ml.models.wrappers import MultiModelWrapper

    est = MultiModelWrapper()
    est.load_default_models()
    load_s = time.perf_counter() - t0
    versions = describe().get("hls4ml_version", [])
    preds, errors = [], {}
    t1 = time.perf_counter()
    for i, net in enumerate(request["networks"]):
        cfg = {
            "board": net["board"],
            "model": {
                "strategy": net["strategy"],
                "precision": net["precision"],
                "reuse_factor": int(net["reuse_factor"]),
            },
            "layer_name": {
                lay["name"]: {"reuse_factor": int(lay["reuse_factor"])}
                for lay in net["layers"]
                if lay["kind"] == "dense"
            },
        }
        try:
            df = est.predict(
                [_keras_model(net, f"net{i}")],
                hls_configs=[cfg],
                hls4ml_versions=list(versions) or None,
                vivado_versions=[net["vivado_version"]],
                round_digits=6,
            )
        except Exception as exc:  # one bad network never stops the others
            errors[str(net["id"])] = f"{type(exc).__name__}: {exc}"
            continue
        for _, row in df.iterrows():
            rec = {"id": net["id"], "hls4ml_version": str(row["HLS4ML Version"])}
            rec.update({k: float(row[k]) for k in ESTIMATORS if k in row})
            preds.append(rec)
    return {
        "version": importlib.metadata.version("rule4ml"),
        "hls4ml_versions": versions,
        "predictions": preds,
        "errors": errors,
        "load_s": round(load_s, 2),
        "predict_s": round(time.perf_counter() - t1, 2),
    }


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    real_stdout = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):  # library chatter must not corrupt the JSON
            if "--describe" in sys.argv[1:]:
                out = describe()
            else:
                out = predict(json.load(sys.stdin))
    except Exception as exc:
        json.dump({"error": f"{type(exc).__name__}: {exc}"}, real_stdout)
        return 3
    json.dump(out, real_stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
