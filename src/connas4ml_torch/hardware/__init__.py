"""Hardware side: resource vocabulary and FPGA parts, HLS settings, layer descriptions, report
readers, the cost model (hls4ml's logic counted analytically, corrected from real reports).

Knows layers and HLS configurations, never torch modules (docs/design.md, "Rooms and floors").
"""

from connas4ml_torch.hardware.config import HLSConfig
from connas4ml_torch.hardware.costmodel import CostModel, DomainFinding, NetworkPrediction
from connas4ml_torch.hardware.layerspec import LayerSpec
from connas4ml_torch.hardware.model import TARGETS, OutOfDomainWarning, ResourceModel
from connas4ml_torch.hardware.reports import (
    ReportError,
    ReportWarning,
    parse_csynth_rpt,
    parse_csynth_xml,
    parse_vivado_synth_rpt,
    read_project,
    read_reports,
)
from connas4ml_torch.hardware.resources import part_dsp, part_family, part_resources

__all__ = [
    "HLSConfig",
    "CostModel",
    "NetworkPrediction",
    "DomainFinding",
    "LayerSpec",
    "ResourceModel",
    "TARGETS",
    "OutOfDomainWarning",
    "ReportError",
    "ReportWarning",
    "read_reports",
    "read_project",
    "parse_csynth_xml",
    "parse_csynth_rpt",
    "parse_vivado_synth_rpt",
    "part_resources",
    "part_family",
    "part_dsp",
]
