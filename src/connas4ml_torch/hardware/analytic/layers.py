"""Analytic counts per hls4ml layer: what the templates instantiate, before any learned correction.

:func:`layer_counts` takes a table with the LayerSpec columns and returns, per layer, the hardware
hls4ml's C++ templates ask for: multiplications per initiation and the DSP slices they may use
(the hard DSP bound), the LUT/FF/BRAM components and the pipeline's iterations and depth. The
learned correction (``correction.py``) weighs these components; it never invents a resource the
templates do not instantiate. Derivations, template by template: ``docs/hardware_model.md``.

All columns are non-negative and monotone: non-decreasing in sizes and bits, and (area) non-
increasing in the reuse factor, which the tests check on a grid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from connas4ml_torch.hardware.analytic.primitives import (
    adder_tree_depth,
    bram18k_for_rom,
    ceil_log2,
    dsp_const_fraction,
    dsp_mapped_fraction,
    dsp_slices_per_product,
    expected_csd_digits,
    lut_per_const_product,
    lut_per_product,
)
from connas4ml_torch.hardware.layerspec import COPY_LAYERS

__all__ = ["COMPONENTS", "BOUNDS", "layer_counts", "layer_inputs", "register_cuts"]

# resource -> analytic components (columns of layer_counts) the learned correction weighs
COMPONENTS: dict[str, tuple[str, ...]] = {
    "LUT": ("lut_mult", "lut_add", "lut_io", "lut_act", "lut_buf"),
    "FF": ("ff_static", "ff_dyn", "ff_stage", "ff_buf", "ff_cut", "ff_arr"),
    "BRAM_18K": ("bram_w", "bram_tab"),
    "latency": ("lat_iter", "lat_pix", "lat_depth", "lat_depth_7s"),
    "II": ("ii_iter", "ii_pix"),
}
# columns that bound or drive a resource directly
BOUNDS = ("mults", "dsp_cand", "dsp_open", "dsp_max", "n_layers_w")
# FF components that scale with the pipeline depth D (cycles): ff_dyn x max(D - 1, 0),
# ff_stage x min(D, 1)
DEPTH_SCALED = {"ff_dyn": "excess", "ff_stage": "min1"}
# relative logic speed of a family's -1/-2 parts against UltraScale+ (csynth delay models)
_SPEED = {"zynq": 1.8, "artix7": 1.8, "virtex7": 1.3, "kintexu": 1.15}
_LUT_CORNERS = ((9.0, 9.0), (np.inf, 4.0), (4.0, np.inf))
# register cuts of an unrolled constant-weight datapath (``register_cuts``): the HLS scheduler
# fills each clock (less its uncertainty margin) ASAP; delays in ns at UltraScale+ speed
CLOCK_SHARE = 0.8               # usable share of the clock period (12.5-27% uncertainty)
_CUT_T_PRODUCT = 1.5            # a constant (shift-and-add) product
_CUT_T_ADD = (0.2, 0.02)        # one carry-chain adder of b bits: 0.2 + 0.02 b
_CUT_MAX = 64                   # cuts evaluated at most (a deeper path is clipped there)
# one compare-and-select of a max pooling, or one pooling tree level: 0.4 + 0.03 b ns
_T_POOL_OP = (0.4, 0.03)
# csynth's price of a b-bit value delayed several clocks (a shift register), per bit: Vitis
# reports 64 FF + 32 LUT for each 15-bit input of a 128-input max chain, whatever its delay
_SRL_FF, _SRL_LUT = 4.0, 2.0


def _prod(t: object) -> float:
    if isinstance(t, (tuple, list)) and t:
        return float(np.prod([int(x) for x in t]))
    return 1.0


def _grade(part: str) -> float:
    """Delay factor of the part's speed grade (-1 slowest, -3 fastest; DS923/DS925 tables)."""
    import re

    m = re.search(r"-([123])[a-z]?(?:-[a-z])?$", str(part).lower())
    return {"1": 1.15, "2": 1.0, "3": 0.9}.get(m.group(1), 1.0) if m else 1.0


def layer_inputs(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Plain arrays of the LayerSpec columns the formulas use (defaults filled in)."""
    n = len(df)
    kind = df["layer_type"].astype(str).to_numpy()
    kernel = list(df["kernel"])
    out = list(df["out_size"])
    K = np.array([_prod(k) for k in kernel])
    P = np.array([_prod(o) for o in out])
    # input pixels: 'valid' convolution with stride 1; pooling with stride = pool size
    p_in_conv = np.array([
        float(np.prod([o + k - 1 for o, k in zip(oo, kk)])) if isinstance(oo, tuple) and oo
        and isinstance(kk, tuple) and len(oo) == len(kk) else 1.0 for oo, kk in zip(out, kernel)])
    in_w = np.array([float(o[-1] + k[-1] - 1) if isinstance(o, tuple) and o and isinstance(k, tuple)
                     and k and len(o) == len(k) else 1.0 for o, k in zip(out, kernel)])
    k_h = np.array([float(k[0]) if isinstance(k, tuple) and len(k) == 2 else 1.0 for k in kernel])

    def col(name: str, default: float) -> np.ndarray:
        if name not in df.columns:
            return np.full(n, default, float)
        v = pd.to_numeric(df[name], errors="coerce").to_numpy(float)
        return np.where(np.isfinite(v), v, default)

    wb, ib = col("weight_bits", 16), col("input_bits", 16)
    n_in, n_out = col("n_in", 1), col("n_out", 1)
    weight_layer = np.isin(kind, ("Dense", "Conv1D", "Conv2D"))
    F = n_in * np.where(weight_layer, K, 1.0)
    nw = np.where(weight_layer, F * n_out, 0.0)
    acc_default = wb + ib + ceil_log2(F)
    ab = col("accum_bits", np.nan)
    rb = col("result_bits", np.nan)
    ab = np.where(np.isfinite(ab), ab, np.where(weight_layer, acc_default, ib))
    rb = np.where(np.isfinite(rb), rb, np.where(weight_layer, ab, ib))
    nz = col("n_nonzero_weights", np.nan)
    nz = np.where(np.isfinite(nz), np.minimum(nz, nw), nw)
    csd = col("csd_digits", np.nan)
    dig_known = np.where(np.isfinite(csd) & (nz > 0), csd / np.maximum(nz, 1.0), np.nan)
    strategy = df["strategy"].astype(str).str.lower().to_numpy() if "strategy" in df else np.full(n, "latency")
    io = df["io_type"].astype(str).str.lower().to_numpy() if "io_type" in df else np.full(n, "io_parallel")
    act = (df["activation"].fillna("").astype(str).str.lower().to_numpy() if "activation" in df
           else np.full(n, ""))
    from connas4ml_torch.hardware.features import part_info

    parts = df["part"].fillna("").astype(str) if "part" in df else pd.Series([""] * n)
    speed = np.array([_SPEED.get(part_info(p)[0], 1.0) * _grade(p) for p in parts])
    return {
        "kind": kind, "n_in": n_in, "n_out": n_out, "K": K, "P": P, "P_in_conv": p_in_conv,
        "in_w": in_w, "k_h": k_h, "wb": wb, "ib": ib, "rb": rb, "ab": ab, "F": F, "nw": nw,
        "nz": nz, "dig_known": dig_known, "rf": np.maximum(col("reuse_factor", 1), 1.0),
        "res": strategy == "resource", "stream": io == "io_stream", "act": act,
        "pf": np.maximum(col("parallelization", 1), 1.0), "table_size": col("table_size", 1024),
        "table_bits": col("table_bits", 18), "clock": np.maximum(col("clock_period", 5.0), 0.5),
        "weight_layer": weight_layer, "speed": speed,
    }


def _lut_mult_env(cost, wb: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Per-product LUT cost held monotone across the LUT->DSP threshold: above it, a product
    costs at least what the largest LUT-mapped product below it costs (Vivado moves products to
    DSPs, which real reports show as a LUT drop; the model keeps the envelope instead so that
    wider never predicts cheaper)."""
    lut_region = (np.maximum(wb, ib) <= 9) | (np.minimum(wb, ib) <= 4)
    env = np.where(lut_region, cost(wb, ib), 0.0)
    for cw, ci in _LUT_CORNERS:
        env = np.maximum(env, cost(np.minimum(wb, cw), np.minimum(ib, ci)))
    return env


def register_cuts(nz: np.ndarray, n_out: np.ndarray, wb: np.ndarray, ib: np.ndarray, ab: np.ndarray,
                  levels: np.ndarray, clock: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """Register bits of a fully unrolled constant-weight datapath (one pipeline iteration).

    The scheduler packs the path (a constant product, then the adder tree's ``levels``) into
    clocks ASAP; each clock boundary the path crosses is a cut, and a cut registers what is live
    there: the ``nz`` products before the tree, ``n_out * fan / 2^j`` partial sums of ``ab``
    bits after ``j`` tree levels, the ``n_out`` outputs once the trees are done. A path shorter
    than one clock has no cut (0 FF, as synthesized). docs/hardware_model.md, "Registers".
    """
    fan = np.maximum(nz / np.maximum(n_out, 1.0), 1.0)
    t_prod = _CUT_T_PRODUCT * speed
    t_add = (_CUT_T_ADD[0] + _CUT_T_ADD[1] * ab) * speed
    t_cut = CLOCK_SHARE * clock
    cuts = np.clip(np.ceil((t_prod + levels * t_add) / t_cut) - 1.0, 0.0, _CUT_MAX)
    bits = np.zeros_like(fan)
    for k in range(1, int(cuts.max(initial=0.0)) + 1):
        t = k * t_cut
        done = np.maximum(t - t_prod, 0.0) / t_add  # tree levels finished at this cut
        live = np.where(t < t_prod, nz * (wb + ib), n_out * ab * np.maximum(fan * 2.0 ** -done, 1.0))
        bits += np.where(cuts >= k, live, 0.0)
    return bits


def chain_delays(length: np.ndarray, ib: np.ndarray, clock: np.ndarray,
                 speed: np.ndarray) -> np.ndarray:
    """Inputs delayed past the first clock in one pipelined compare-and-select chain of
    ``length`` steps (an io_parallel max pooling: hls4ml's ``max`` helper folds its inputs one
    after another, and a select is not an operation HLS rebalances into a tree).

    The scheduler packs ``r`` steps into each usable clock, so all but the first ``r`` inputs
    wait in delay lines until their step. HLS prices a delay line of several clocks as a shift
    register, at a cost set by the value's width, not by its length (docs/hardware_model.md,
    "Pooling"); the running maximum's register per clock is the layer's ``ff_dyn``.
    """
    t_op = (_T_POOL_OP[0] + _T_POOL_OP[1] * ib) * speed
    r = CLOCK_SHARE * clock / t_op  # steps per usable clock
    return np.maximum(length - r, 0.0)


def layer_counts(df: pd.DataFrame, e2: np.ndarray | None = None) -> pd.DataFrame:
    """Analytic per-layer counts (columns ``COMPONENTS`` values and ``BOUNDS``) of a LayerSpec
    table; ``e2``: per row, whether the part has DSP48E2 slices (default True)."""
    x = layer_inputs(df)
    n = len(df)
    e2 = np.ones(n, bool) if e2 is None else np.asarray(e2, bool)
    kind, res, stream, rf, pf = x["kind"], x["res"], x["stream"], x["rf"], x["pf"]
    wb, ib, ab, rb = x["wb"], x["ib"], x["ab"], x["rb"]
    n_in, n_out, K, P, F, nw, nz = x["n_in"], x["n_out"], x["K"], x["P"], x["F"], x["nw"], x["nz"]
    z = np.zeros(n)
    out = {c: z.copy() for cs in COMPONENTS.values() for c in cs}
    out.update({c: z.copy() for c in BOUNDS})
    levels = z.copy()
    t_ns = z.copy()  # combinational delay of one pipeline iteration, ns at UltraScale+ speed

    # ---- Dense / Conv (nnet_dense_latency.h, nnet_dense_resource.h, nnet_conv*_latency.h,
    #      nnet_conv*_resource.h, nnet_conv_stream.h compute_output_buffer_1d/2d) -------------
    w = x["weight_layer"]
    conv = w & (kind != "Dense")
    # pixels computed per pipeline iteration: io_parallel convs do ParallelizationFactor pixels
    # per iteration (n_partitions iterations), io_stream convs one kernel call per input pixel
    par = np.where(conv & ~stream, np.minimum(pf, P), 1.0)
    n_iter = np.where(conv, np.where(stream, x["P_in_conv"], np.ceil(P / par)), 1.0)
    # constant weights: Latency strategy (function_instantiate, weights partitioned) and the
    # Resource kernels at RF 1 (no ROM: the reshaped weights are registers of constants)
    const = w & (~res | (rf <= 1))
    rom = w & res & (rf > 1)
    # Latency: ALLOCATION caps `mul` operators at ceil(n/RF) (the DSP candidates), but the
    # shift-add constant products are not `mul`s, so fabric products do not shrink with RF;
    # Resource: block_factor = ceil(N/RF) general multipliers fed from the weight ROM
    mults = np.where(const, np.ceil(nz * par / rf), np.ceil(nw * par / rf))
    wide, narrow = np.maximum(wb, ib), np.minimum(wb, ib)
    cand_slices = np.maximum(np.ceil(wide / np.where(e2, 27.0, 25.0)), np.ceil(narrow / 18.0))
    out["mults"] = np.where(w, mults, 0.0)
    # the analytic binding gates the candidates: a product by a narrow constant is shift-and-
    # add in fabric (keyed on the weight's width), a ROM-fed general product below ~10x5 bits
    # a LUT multiplier (docs/hardware_model.md, "Which products use DSPs")
    gate = np.where(const, dsp_const_fraction(wb, ib), dsp_mapped_fraction(wb, ib))
    # the candidates before the binding gate: what a user's tool could put on DSPs at most
    # (few-shot calibration moves the DSP share in logit space towards it)
    out["dsp_open"] = np.where(w, mults * cand_slices, 0.0)
    out["dsp_cand"] = out["dsp_open"] * gate
    out["dsp_max"] = np.where(w, mults * dsp_slices_per_product(wb, ib, e2), 0.0)
    dig = x["dig_known"]
    # a constant product: shift-and-add over its CSD digits, or a LUT multiplier if cheaper
    const_cost = _lut_mult_env(lambda a, b: np.minimum(
        lut_per_const_product(expected_or(dig, a), b, a), lut_per_product(a, b)), wb, ib)
    gen_cost = _lut_mult_env(lut_per_product, wb, ib)
    # a ROM-fed multiplier reads one of RF inputs per cycle: an RF:1 input mux (~RF/4 LUT6 per
    # bit). Past RF = n_in (nnet_dense_resource.h dense_resource_rf_gt_nin_rem0) every
    # multiplier reads the same input each cycle (one shared n_in:1 mux, spread over the
    # multipliers) and adds into one of RF/n_in accumulators (a read and a write select of
    # the accumulator width). One component with the multiplier: the sum never grows with RF
    outscale = np.maximum(rf / np.maximum(F, 1.0), 1.0)
    mux = np.where(rf <= F, ib * (rf - 1.0) / 4.0,
                   ib * (F - 1.0) / 4.0 / np.maximum(mults, 1.0) + ab * (outscale - 1.0) / 2.0)
    out["lut_mult"] = np.where(const, nz * par * const_cost, np.where(w, mults * (gen_cost + mux), 0.0))
    # adders: constant weights = the n_out adder trees over the non-zero products; ROM = one
    # accumulator add per multiplier per cycle
    out["lut_add"] = np.where(const, np.maximum(nz - n_out, 0.0) * par * ab,
                              np.where(w, mults * ab, 0.0))
    # RF-independent: input fan-out and output accumulators/casts
    out["lut_io"] = np.where(w, (F * ib + n_out * ab) * par, 0.0)
    # registers: a ROM datapath and a stream kernel are always registered; constant datapaths
    # only when the pipeline has a stage (ff_dyn x min(D, 1)), plus one cut of the outputs'
    # partial sums per stage (ff_stage x D)
    fan = np.where(const, np.maximum(nz / np.maximum(n_out, 1), 1), F)
    levels = np.where(w, adder_tree_depth(fan), 0.0)
    always = w & (res | stream)
    # (a ROM's output register sits inside the BRAM primitive: not fabric FFs)
    out["ff_static"] = np.where(always, n_out * ab * par, 0.0)
    # an unrolled constant datapath (io_parallel Latency strategy, which keeps its shift-and-
    # add products at any RF): the live bits at each clock boundary its path crosses, from the
    # HLS delay of products and adders (``register_cuts``). The Resource kernels keep their
    # accumulator loop even at RF 1 (the depth-scaled registers below)
    unrolled = const & ~stream & ~res
    out["ff_cut"] = np.where(unrolled, register_cuts(nz, n_out, wb, ib, ab, levels, x["clock"],
                                                     x["speed"]) * par, 0.0)
    # an io_parallel conv computing its positions over several iterations fills its completely
    # partitioned output array one position at a time: the whole array is held in registers
    out["ff_arr"] = np.where(conv & ~stream & (n_iter > 1), n_out * P * rb, 0.0)
    # the other datapaths (ROM-fed, folded, streamed): the mean width (inputs, products, tree
    # levels, outputs) times the learned depth's cuts, plus one cut of the outputs
    width = (F * ib + mults * ab + n_out * ab * levels) / (levels + 2.0)
    out["ff_dyn"] = np.where(w & ~unrolled, width * par, 0.0)
    out["ff_stage"] = np.where(w & ~unrolled, n_out * ab * par, 0.0)
    # io_stream convs: line buffer of (k_h-1) rows plus the window, in shift-register LUTs
    line = np.where(conv & stream, ((x["k_h"] - 1.0) * x["in_w"] + K) * n_in * ib, 0.0)
    out["lut_buf"] = line / 32.0
    out["ff_buf"] = np.where(conv & stream, K * n_in * ib, 0.0)
    # ROM_nP_BRAM of RF words of block_factor*b_w bits (ARRAY_RESHAPE block factor)
    # (ROMs of at most 1 kbit go to distributed LUT memory)
    rom_w = np.ceil(nw / rf) * wb
    out["bram_w"] = np.where(rom & (rom_w * rf > 1024), bram18k_for_rom(rom_w, rf), 0.0)
    out["lut_buf"] += np.where(rom & (rom_w * rf <= 1024), rom_w * rf / 64.0, 0.0)
    t_prod = 1.5 + 1.5 * dsp_mapped_fraction(wb, ib)
    t_ns = np.where(w, t_prod + levels * (0.4 + 0.03 * ab), 0.0)
    out["lat_iter"] = np.where(w, np.where(rf > 1, n_iter * rf, n_iter - 1.0), 0.0)
    out["lat_pix"] = np.where(conv, n_iter, 0.0)
    out["ii_iter"] = np.where(w, n_iter * rf, 0.0)
    out["ii_pix"] = np.where(conv, n_iter, 0.0)

    # ---- element-wise layers (nnet_activation*.h, nnet_batchnorm*.h, nnet_merge*.h) ----------
    ew = np.isin(kind, ("Activation", "Softmax", "BatchNormalization", "Merge"))
    lanes = np.where(stream, n_in, n_in * P)        # elements computed in parallel
    steps = np.where(stream, P, 1.0)                # pipeline iterations per inference
    act = x["act"]
    smax = ew & ((kind == "Softmax") | (act == "softmax"))
    table = ew & (np.isin(act, ("sigmoid", "tanh", "elu", "selu", "softplus", "softsign")) | smax)
    tab_blocks = bram18k_for_rom(x["table_bits"], x["table_size"])
    # a dual-port ROM serves two lookups per cycle: one table copy per two lanes; softmax adds
    # its inversion table (nnet_activation.h softmax_latency/stable: exp_table, invert_table)
    out["bram_tab"] = np.where(table, np.ceil(lanes / 2.0) * tab_blocks + np.where(smax, tab_blocks, 0), 0)
    addr = ceil_log2(x["table_size"])
    out["lut_act"] = np.where(ew & ~table, lanes * (ib + rb), np.where(table, lanes * (ib + addr), 0.0))
    # softmax: one exp*inverse product per lane (DSP candidates) and a sum tree of the exps
    out["mults"] += np.where(smax, lanes, 0.0)
    for col in ("dsp_open", "dsp_cand"):  # the exp x inverse products bind to DSPs ungated
        out[col] += np.where(smax, lanes, 0.0)
    out["dsp_max"] += np.where(smax, lanes * dsp_slices_per_product(x["table_bits"], x["table_bits"], e2), 0)
    out["lut_add"] += np.where(smax, lanes * x["table_bits"], 0.0)
    bn = ew & (kind == "BatchNormalization")
    merge = ew & (kind == "Merge")
    # batchnorm: a constant scale product and a bias add per lane (nnet_batchnorm.h normalize)
    out["mults"] += np.where(bn, lanes, 0.0)
    bn_open = np.where(bn, lanes * cand_slices, 0.0)
    out["dsp_open"] += bn_open
    out["dsp_cand"] += bn_open * dsp_const_fraction(wb, ib)
    out["dsp_max"] += np.where(bn, lanes * dsp_slices_per_product(wb, ib, e2), 0.0)
    out["lut_mult"] += np.where(bn, lanes * const_cost, 0.0)
    out["lut_add"] += np.where(bn | (merge & (act != "concatenate")), lanes * rb, 0.0)
    out["ff_static"] += np.where(ew & stream, lanes * rb, 0.0)
    out["ff_dyn"] += np.where(ew & ~stream, lanes * rb, 0.0)
    # a stream layer reads and writes one packed word of ``lanes`` elements per step
    out["lut_io"] += np.where(ew & stream, lanes * (ib + rb), 0.0)
    out["lat_iter"] += np.where(ew, steps - 1.0, 0.0)
    out["ii_iter"] += np.where(ew, steps, 0.0)
    levels = levels + np.where(smax, ceil_log2(n_in) + 2, np.where(table, 1, 0))
    t_ns = t_ns + np.where(ew, np.where(table, 2.5, 0.8) + np.where(smax, 3.0 + ceil_log2(n_in), 0), 0)

    # ---- copies (nnet_padding*.h zeropad1d/2d_cl, nnet_image*.h resize_nearest) -------------
    # io_parallel: array indexing, pure wiring; io_stream: one output pixel per step, each
    # element written through a select of the input word or zero (docs/hardware_model.md 2)
    copy = np.isin(kind, COPY_LAYERS) & stream
    out["lut_io"] += np.where(copy, n_in * rb, 0.0)
    # resize_nearest holds one input row in registers and reads it back once per output row;
    # the row is taken as sqrt(P) / 2 pixels (a square map upsampled 2x: the spec has only the
    # output pixels). Zero padding writes straight into the FIFO: counters only.
    row = np.where(copy & (kind == "Resize"), np.sqrt(P) / 2.0 * n_in * ib, 0.0)
    out["ff_buf"] += row
    out["lut_buf"] += row / 4.0
    out["lat_iter"] += np.where(copy, P - 1.0, 0.0)
    out["ii_iter"] += np.where(copy, P, 0.0)
    t_ns = t_ns + np.where(copy, 0.8, 0.0)

    # ---- pooling (nnet_pooling.h, nnet_pooling_stream.h) --------------------------------------
    pool = np.isin(kind, ("Pooling1D", "Pooling2D"))
    gpool = np.isin(kind, ("GlobalPooling1D", "GlobalPooling2D"))
    pin = np.where(pool, P * K, np.where(gpool, K, 1.0))
    # io_parallel: every output's (K-1) comparators/adders at once; io_stream: one pixel of
    # n_in channels per step (windows kept in line buffers), global pooling accumulates
    ops = np.where(pool, np.where(stream, n_in * (K - 1), n_in * P * (K - 1)),
                   np.where(stream, n_in, n_in * (K - 1)))
    # a max is a comparator's carry chain plus a select mux (two b-bit LUT rows), an average's
    # step one adder; io_parallel max pooling is a chain of K - 1 of them (``chain_delays``),
    # an average's sum HLS balances into a tree (a pooling of unknown op: the tree)
    vmax = (pool | gpool) & (act == "max")
    chain = vmax & ~stream
    out["lut_add"] += np.where(pool | gpool, np.maximum(ops, n_in) * ib * np.where(vmax, 2.0, 1.0), 0.0)
    delayed = np.where(chain, np.where(gpool, n_in, n_in * P) *
                       chain_delays(K - 1.0, ib, x["clock"], x["speed"]), 0.0)
    out["ff_cut"] += delayed * _SRL_FF * ib
    out["lut_buf"] += delayed * _SRL_LUT * ib
    out["lut_buf"] += np.where(pool & stream, x["in_w"] * n_in * ib / 32.0, 0.0)
    out["ff_static"] += np.where((pool | gpool) & stream, n_in * (rb + ib), 0.0)
    out["lut_io"] += np.where((pool | gpool) & stream, n_in * (ib + rb), 0.0)
    out["ff_dyn"] += np.where((pool | gpool) & ~stream, n_in * P * rb, 0.0)
    psteps = np.where(stream, pin, 1.0)
    out["lat_iter"] += np.where(pool | gpool, psteps - 1.0, 0.0)
    out["ii_iter"] += np.where(pool | gpool, psteps, 0.0)
    pl = np.where(gpool & ~stream, ceil_log2(K), np.where(pool, ceil_log2(K), 0.0))
    pl = np.where(chain, K - 1.0, pl)
    t_ns = t_ns + np.where(pool | gpool, 0.8 + pl * (_T_POOL_OP[0] + _T_POOL_OP[1] * ib), 0.0)

    # ---- pipeline depth in cycles: the iteration's delay over the clock, at the part's speed
    # (7-series parts apart: how much slower their delay model is than the prior's factor is
    # learned, and must move only the depth, not the iteration counts)
    depth = t_ns * x["speed"] / x["clock"]
    out["lat_depth"] = np.where(e2, depth, 0.0)
    out["lat_depth_7s"] = np.where(e2, 0.0, depth)
    out["n_layers_w"] = w.astype(float)
    frame = pd.DataFrame(out)
    frame["depth_levels"] = levels
    return frame.clip(lower=0.0)


def expected_or(dig: np.ndarray, wb: np.ndarray) -> np.ndarray:
    """CSD digits per non-zero weight: the stated mean where the weights are known, else the
    expectation for ``wb``-bit weights (so the envelope's corners follow the same rule)."""
    known = np.isfinite(dig)
    return np.where(known, dig, expected_csd_digits(wb))
