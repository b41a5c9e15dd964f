"""The columns of a :func:`read_reports` table, in order, with their meaning and units.

Resource names follow :mod:`connas4ml_torch.hardware.resources` (``LUT``, ``FF``, ``BRAM_18K``,
``DSP``, ``URAM``; ``latency`` and ``II`` in clock cycles). Missing values are NaN/None: a
column is never filled with a guess.
"""

from __future__ import annotations

from connas4ml_torch.hardware.reports.base import RESOURCE_KEYS

__all__ = ["COLUMNS", "DESCRIPTIONS", "LAYER_FIELDS", "FULL_CONFIG"]

DESCRIPTIONS: dict[str, str] = {
    "level": "'model' (the network's top function) or 'layer' (one synthesized function)",
    "source": "the project folder (the JSON file for an hls4ml CI summary)",
    "report": "the report file read",
    "format": "xml, rpt, json or csv (N-TORC tables)",
    "solution": "HLS solution folder name",
    "top": "the synthesized function's name as the tool wrote it",
    "tool": "vivado_hls or vitis_hls",
    "tool_version": "e.g. 2020.1",
    "part": "FPGA part, lower case",
    "family": "HLS product family (virtexuplus, zynq...)",
    "dsp_type": "DSP48E1 or DSP48E2",
    "clk_target_ns": "target clock period, ns",
    "clk_est_ns": "estimated clock period, ns",
    "lat_best": "best-case latency, cycles",
    "lat_worst": "worst-case latency, cycles",
    "ii_min": "minimum initiation interval, cycles",
    "ii_max": "maximum initiation interval, cycles",
    "latency": "worst-case latency, cycles (= lat_worst; the 'latency' target of resources.py)",
    "II": "initiation interval, cycles (= ii_max)",
    **{k: f"{k} estimated by HLS (csynth)" for k in RESOURCE_KEYS},
    **{f"avail_{k}": f"{k} available on the part" for k in RESOURCE_KEYS},
    **{f"vsynth_{k}": f"{k} after Vivado logic synthesis (vivado_synth.rpt)"
       for k in RESOURCE_KEYS},
    "layer_type": "hls4ml layer class: Dense, Conv1D, Conv2D, Activation, Softmax, Pooling2D, "
                  "BatchNormalization, Merge, ZeroPadding2D, Resize, GRU...; 'other' for "
                  "functions that are no layer",
    "activation": "activation function of an Activation/Softmax row (relu, sigmoid, softmax...)",
    "implementation": "softmax implementation (latency, stable, legacy, argmax)",
    "op": "the function's base name (dense_latency, relu, pooling2d_cl...)",
    "n_in": "inputs: Dense n_in, Conv n_chan, elements of an Activation/other layer",
    "n_out": "outputs: Dense n_out, Conv n_filt, elements out of other layers",
    "kernel": "Conv kernel size, tuple ((w,) or (h, w)); () for Dense",
    "out_size": "Conv output size, tuple ((w,) or (h, w)); () for Dense",
    "in_array": "io_stream: elements per stream word in (from the function's types)",
    "out_array": "io_stream: elements per stream word out",
    "reuse_factor": "hls4ml reuse factor in effect (a requested one that hls4ml would replace is "
                    "replaced by the same rule; NaN when that needs sizes we do not know)",
    "reuse_factor_requested": "reuse factor asked for in hls4ml_config.yml",
    "strategy": "Latency or Resource",
    "io_type": "io_parallel or io_stream",
    "weight_bits": "weight type width, bits",
    "weight_type": "weight type, ap_fixed<W,I> spelling",
    "input_bits": "input type width, bits",
    "result_bits": "result type width, bits",
    "table_size": "lookup-table entries of an activation (parameters.h / config)",
    "table_bits": "lookup-table entry width, bits",
    "n_weights": "weights in firmware/weights/w<N>.txt (NaN: no weights file)",
    "n_nonzero_weights": "weights != 0 in that file",
    "csd_digits": "non-zero canonical-signed-digit terms of all weights on the weight type's "
                  "grid (NaN: no weights file or unknown weight type)",
    "weights_max_abs": "largest |weight|",
    "config_index": "N of the layer's configN struct (its hls4ml layer index)",
    "config_name": "the config struct's name (config2, relu_config4, config2_mult)",
    "layer_name": "the layer's name in the model (parameters.h comment / hls4ml_config.yml)",
    "config_source": "main source of the layer configuration: parameters.h, name, ntorc_table",
    "field_sources": "where each layer field came from, 'field=source' separated by ';'",
    "primary": "True for the outermost function of a layer (sum these for a model total)",
}

LAYER_FIELDS = ("layer_type", "n_in", "n_out", "kernel", "out_size", "reuse_factor", "strategy",
                "io_type", "weight_bits", "input_bits", "result_bits")
# what a Dense/Conv row needs for a cost model (plus part and tool from the report)
FULL_CONFIG = ("layer_type", "n_in", "n_out", "weight_bits", "input_bits", "reuse_factor",
               "strategy", "io_type", "part", "tool")

COLUMNS = [
    "level", "source", "report", "format", "solution", "top", "tool", "tool_version", "part",
    "family", "dsp_type", "clk_target_ns", "clk_est_ns", "lat_best", "lat_worst", "ii_min",
    "ii_max", "latency", "II", *RESOURCE_KEYS, *[f"avail_{k}" for k in RESOURCE_KEYS],
    *[f"vsynth_{k}" for k in RESOURCE_KEYS],
    "layer_type", "activation", "n_in", "n_out", "kernel", "out_size", "reuse_factor",
    "strategy", "io_type", "weight_bits", "input_bits", "result_bits", "config_index",
    "config_source", "primary",
]
