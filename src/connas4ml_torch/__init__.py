"""connas4ml_torch: constraint-aware differentiable NAS for FPGAs through Brevitas, QONNX and hls4ml.

The public names are imported lazily so that ``import connas4ml_torch`` stays fast and a user who
only reads reports never pays for torch/brevitas/hls4ml imports they do not use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (docs/design.md keeps these names stable)
_EXPORTS = {
    "SearchSpace": "connas4ml_torch.space",
    "searchable": "connas4ml_torch.space",
    "Supernet": "connas4ml_torch.space",
    "HLSConfig": "connas4ml_torch.hardware",
    "LayerSpec": "connas4ml_torch.hardware",
    "ResourceModel": "connas4ml_torch.hardware",
    "read_reports": "connas4ml_torch.hardware",
    "part_resources": "connas4ml_torch.hardware",
    "Search": "connas4ml_torch.search",
    "pareto_sweep": "connas4ml_torch.run",
    "SearchSettings": "connas4ml_torch.search",
    "Selection": "connas4ml_torch.search",
    "RunConfig": "connas4ml_torch.run",
    "run": "connas4ml_torch.run",
    "load_config": "connas4ml_torch.run",
    "TensorBatches": "connas4ml_torch.training",
    "Connas4mlError": "connas4ml_torch.errors",
    "export_to_hls": "connas4ml_torch.export",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'connas4ml_torch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
