"""Read hls4ml synthesis reports (Vivado HLS / Vitis HLS) from any directory tree into a table.

One row per model-level report and per layer-level (per synthesized function) report, with each
layer's configuration from every source the tree holds (``firmware/parameters.h`` +
``defines.h``, the function's name, ``hls4ml_config.yml``, the HLS project files, the RTL
ports) and its weights where ``firmware/weights/w<N>.txt`` exists. Each file format is one
module that registers a :class:`~.base.Parser` (see :data:`~.base.REGISTRY`); adding a format
is one new module imported below.

We parse the files ourselves rather than calling ``hls4ml.report.parse_vivado_report``: that
function reads the top-level report only (no per-layer reports, no pairing with the layer's
configuration) and raises on odd files instead of letting a scan go on. Files are untrusted:
XML is read with entities refused (``defusedxml``), YAML with a bounded expansion, every read
has a size cap, and the walk follows no folder links.

Modules: :mod:`.base` (registry, bounded reads, number checks), :mod:`.names` (function names,
fixed-point types), :mod:`.csynth_xml` / :mod:`.vitis_xml` (csynth XML), :mod:`.csynth_rpt`
(text report), :mod:`.vitis_summary` (Vitis summary report), :mod:`.csynth_json` (hls4ml CI
JSON), :mod:`.oneapi` (refused Intel reports), :mod:`.vivado_synth` (post-synthesis
utilization), :mod:`.hls4ml_config` (``hls4ml_config.yml``), :mod:`.parameters_h`
(``parameters.h``/``defines.h``), :mod:`.weights_txt` (weight files), :mod:`.hls_project`
(``.app``/``.aps``/solution data), :mod:`.ntorc` (N-TORC tables), :mod:`.hls4ml_layers` (struct
-> columns, LayerName pairing), :mod:`.configure` (layer configuration), :mod:`.scan`
(discovery, grouping), :mod:`.project` (one report folder's rows), :mod:`.unconfigured` (what is missing and why),
:mod:`.read` (read_reports, read_project), :mod:`.columns` (column meanings).
"""

# importing a format module registers its parser (the formats' matchers are disjoint)
from connas4ml_torch.errors import ReportError, ReportWarning
from connas4ml_torch.hardware.reports import (  # noqa: F401 (registration)
    csynth_json,
    csynth_rpt,
    csynth_xml,
    hls4ml_config,
    hls_project,
    ntorc,
    oneapi,
    parameters_h,
    vitis_summary,
    vitis_xml,
    vivado_synth,
    weights_txt,
)
from connas4ml_torch.hardware.reports.base import (
    REGISTRY,
    RESOURCE_KEYS,
    Parser,
    parser_for,
    register,
)
from connas4ml_torch.hardware.reports.columns import COLUMNS, DESCRIPTIONS
from connas4ml_torch.hardware.reports.csynth_json import parse_csynth_json
from connas4ml_torch.hardware.reports.csynth_rpt import parse_csynth_rpt
from connas4ml_torch.hardware.reports.csynth_xml import parse_csynth_xml
from connas4ml_torch.hardware.reports.hls4ml_config import parse_hls4ml_config
from connas4ml_torch.hardware.reports.names import (
    FixedType,
    fixed_type,
    parse_fixed_type,
    parse_function_name,
)
from connas4ml_torch.hardware.reports.ntorc import read_ntorc_tables
from connas4ml_torch.hardware.reports.parameters_h import parse_defines_h, parse_parameters_h
from connas4ml_torch.hardware.reports.read import read_project, read_reports
from connas4ml_torch.hardware.reports.scan import find_report_dirs
from connas4ml_torch.hardware.reports.vivado_synth import parse_vivado_synth_rpt
from connas4ml_torch.hardware.reports.weights_txt import parse_weights_txt

__all__ = [
    "ReportError",
    "ReportWarning",
    "RESOURCE_KEYS",
    "COLUMNS",
    "DESCRIPTIONS",
    "Parser",
    "REGISTRY",
    "register",
    "parser_for",
    "parse_csynth_xml",
    "parse_csynth_rpt",
    "parse_vivado_synth_rpt",
    "parse_csynth_json",
    "parse_hls4ml_config",
    "parse_parameters_h",
    "parse_defines_h",
    "parse_weights_txt",
    "parse_function_name",
    "parse_fixed_type",
    "fixed_type",
    "FixedType",
    "find_report_dirs",
    "read_project",
    "read_reports",
    "read_ntorc_tables",
]
