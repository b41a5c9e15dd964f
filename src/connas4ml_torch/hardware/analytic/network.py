"""Model-level analytic terms: what a whole hls4ml project adds on top of its layers.

hls4ml's top function (``myproject.cpp`` from ``vivado_writer.py``) wires the layer functions
together: under ``io_parallel`` the arrays between layers are completely partitioned registers and
the top is one pipeline (latency = the layers' latencies in sequence, II = the slowest layer's);
under ``io_stream`` the layers are ``DATAFLOW`` processes joined by ``hls::stream`` FIFOs whose
default depth is the producer's number of output pixels (``fpga_types.py``: ``depth =
prod(shape[:-1])``) and whose word is one pixel's channels. The interface adds registers for the
network's inputs and outputs. See ``docs/hardware_model.md``, section "Model level".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from connas4ml_torch.hardware.analytic.layers import CLOCK_SHARE, layer_inputs
from connas4ml_torch.hardware.analytic.primitives import fifo_cost

__all__ = ["GLUE", "network_glue", "latency_contributions", "array_registers", "boundary_cycles"]

# resource -> model-level glue components (columns of network_glue) the correction weighs
# (the network's input/output registers are counted in the first/last layer's ``lut_io``/``ff_io``)
GLUE: dict[str, tuple[str, ...]] = {
    "LUT": ("glue_one", "glue_layers", "glue_fifo_lut"),
    "FF": ("glue_one", "glue_layers", "glue_fifo_ff"),
    "BRAM_18K": ("glue_fifo_bram",),
    "DSP": (),
    "latency": ("glue_stream_ii",),
    "II": (),
}


def network_glue(specs: pd.DataFrame, ii: np.ndarray) -> dict[str, float]:
    """Glue components of one network (``specs``: its layers in order; ``ii``: the layers'
    predicted initiation intervals, used for the dataflow latency of io_stream designs)."""
    if specs.empty:
        return {c: 0.0 for cs in GLUE.values() for c in cs}
    x = layer_inputs(specs)
    stream = bool(x["stream"].any())
    fifo_bram = fifo_lut = fifo_ff = 0.0
    if stream and len(specs) > 1:
        width = x["n_out"][:-1] * x["rb"][:-1]
        depth = np.maximum(x["P"][:-1], 1.0)
        bram, lut = fifo_cost(width, depth)
        fifo_bram, fifo_lut = float(bram.sum()), float(lut.sum())
        fifo_ff = float((2.0 * np.ceil(np.log2(depth + 1)) + 4.0).sum())
    ii = np.asarray(ii, float)
    return {
        "glue_fifo_lut": fifo_lut, "glue_fifo_ff": fifo_ff, "glue_fifo_bram": fifo_bram,
        "glue_layers": float(len(specs)),
        "glue_stream_ii": float(ii.max()) if stream and ii.size else 0.0,
        "glue_one": 1.0,
    }


def latency_contributions(specs: pd.DataFrame, lat: np.ndarray, ii: np.ndarray) -> np.ndarray:
    """Each layer's share of the network latency: its whole latency under io_parallel (the top
    pipeline runs the layers in sequence); under io_stream only its fill depth ``lat - II``
    (the dataflow processes overlap; the slowest layer's II is a glue term)."""
    lat, ii = np.asarray(lat, float), np.asarray(ii, float)
    stream = specs["io_type"].astype(str).str.lower().to_numpy() == "io_stream"
    return np.where(stream, np.maximum(lat - ii, 0.0), lat)


def array_registers(specs: pd.DataFrame) -> np.ndarray:
    """Register bits each layer's output array costs inside an io_parallel network: the top
    pipeline registers the completely partitioned array between two layer calls (and the
    network's output), which the layer's own report does not count. Per complete io_parallel
    project of the corpus, model FF minus the layers' FF is 0.6-1.9x (median ~1.0x) these bits.
    io_stream layers hand their outputs to FIFOs instead (``glue_fifo_*``)."""
    if specs.empty:
        return np.zeros(0)
    x = layer_inputs(specs)
    return np.where(x["stream"], 0.0, x["n_out"] * x["P"] * x["rb"])


def boundary_cycles(specs: pd.DataFrame) -> np.ndarray:
    """Cycles one nanosecond of delay at each layer's hand-over costs inside an io_parallel
    network: ``speed / (usable clock)``. The top pipeline registers some of the boundaries between
    layer calls (a ReLU that reports 0 cycles alone still adds cycles in the network: 4 one-cycle
    Dense + 3 ReLU measure 10, not 4), and what no report of a layer shows scales with the part's
    logic delay over the clock. The model level learns the delay (ns) per boundary; io_stream
    layers hand over through FIFOs instead (their dataflow latency is ``glue_stream_ii``)."""
    if specs.empty:
        return np.zeros(0)
    x = layer_inputs(specs)
    return np.where(x["stream"], 0.0, x["speed"] / (CLOCK_SHARE * x["clock"]))
