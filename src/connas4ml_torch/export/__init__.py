"""Export: Brevitas -> QONNX -> bit-exact hls4ml project, verification, optional vendor synthesis."""

from connas4ml_torch.errors import BitExactnessError, BitExactnessWarning
from connas4ml_torch.export.checks import ExportError, check_exportable
from connas4ml_torch.export.hls import Conversion, conversion, convert
from connas4ml_torch.export.project import (
    HLSProject,
    Verification,
    check_example,
    export_to_hls,
    verify_project,
)
from connas4ml_torch.export.specs import layer_specs
from connas4ml_torch.kinds.batchnorm import fold_batchnorm

__all__ = [
    "ExportError",
    "BitExactnessError",
    "BitExactnessWarning",
    "Conversion",
    "HLSProject",
    "Verification",
    "check_example",
    "check_exportable",
    "conversion",
    "convert",
    "export_to_hls",
    "fold_batchnorm",
    "layer_specs",
    "verify_project",
]
