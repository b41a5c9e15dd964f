"""From a ``read_reports`` table to LayerSpec tables: layer rows, and whole projects.

A report row becomes a layer when its kind is one the hardware model knows (hls4ml's class name in
``layer_type``, or, for readers that only state ``other``, the synthesized function's name:
``relu_*`` -> Activation, ``softmax_*`` -> Softmax, ``pooling2d_*`` -> Pooling2D ...) and its
configuration is stated (sizes, bits, reuse factor, strategy, io type, part). Nothing is guessed:
a row without its sizes is *unconfigured*, and a project with an unconfigured Dense/Conv or a
layer kind the model does not know (GRU, LSTM, BDT trees) is *incomplete* (predicted, flagged).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from connas4ml_torch.errors import ConfigError
from connas4ml_torch.hardware.layerspec import COPY_LAYERS, LAYER_TYPES, WEIGHT_LAYERS

__all__ = ["row_kind", "rows_to_specs", "training_rows", "project_layers", "REPORT_Y"]

REPORT_Y = {"LUT": "LUT", "FF": "FF", "BRAM_18K": "BRAM_18K", "DSP": "DSP", "latency": "lat_worst",
            "II": "ii_max"}
_ALIASES = {"PointwiseConv1D": "Conv1D", "PointwiseConv2D": "Conv2D", "DepthwiseConv1D": None,
            "ParametrizedActivation": "Activation", "LeakyReLU": "Activation", "PReLU": "Activation",
            "ELU": "Activation", "ThresholdedReLU": "Activation", "HardActivation": "Activation",
            "TernaryTanh": "Activation", "BinaryTanh": "Activation", "Dot": None,
            "Concatenate": "Merge", "Add": "Merge"}
_ACT_NAMES = ("leaky_relu", "thresholded_relu", "hard_sigmoid", "hard_tanh", "binary_tanh",
              "ternary_tanh", "softplus", "softsign", "sigmoid", "linear", "relu6", "relu", "elu",
              "selu", "prelu", "tanh")
_MERGE_OPS = ("add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot")
_UNMODELED = re.compile(r"(gru|lstm|simple_rnn|decision_function|tree_scores|"
                        r"cropping|transpose|embedding|garnet|einsum)", re.I)
# kernels that are not hls4ml's templates (a fork's ``conv_2d_cl_me``, ``relu_me``,
# ``cnnshift_arr``...: one element per stream word, their own loops): not modeled, so a project
# that has them is incomplete rather than costed as if it were upstream hls4ml
_NOT_UPSTREAM = re.compile(r"(?:^|_)me(?:_|$)|^cnnshift", re.I)
# an io_stream element-wise layer of unknown word size is taken as one word up to this many
# elements (hls4ml streams a Dense network's vectors whole; a feature map is larger)
_ONE_WORD_MAX = 256
# layers that copy their input (hls4ml inserts zero padding before an io_stream 'same' conv)
_COPY_FUNCS = (("zeropad1d", "ZeroPadding1D"), ("zeropad2d", "ZeroPadding2D"), ("resize", "Resize"))


def row_kind(layer_type: Any, function: Any, activation: Any = None) -> tuple[str | None, str | None]:
    """(LayerSpec layer_type or None, activation/op name or None) of one report row: hls4ml's
    class name where the reader states it (``activation`` too), else the function's name."""
    lt = str(layer_type) if isinstance(layer_type, str) else ""
    fn = str(function or "").lower()
    act = str(activation).lower() if isinstance(activation, str) and activation else None
    if lt in ("Activation", "Softmax") and act:
        return ("Softmax", "softmax") if act == "softmax" or lt == "Softmax" else ("Activation", act)
    lt = _ALIASES.get(lt, lt) or ""
    pool_op = act if act in ("max", "average") else None  # a pooling's operation, where known
    if lt in LAYER_TYPES and lt not in ("Activation", "Merge", "Pooling1D", "Pooling2D"):
        return lt, ("softmax" if lt == "Softmax" else pool_op if "Pooling" in lt else None)
    if fn.startswith("softmax"):
        return "Softmax", "softmax"
    m = re.match(r"(global_)?pooling([12])d", fn)
    if m:
        kind = ("GlobalPooling" if m.group(1) else "Pooling") + m.group(2) + "D"
        return kind, pool_op
    if fn.startswith("normalize"):
        return "BatchNormalization", None
    for prefix, kind in _COPY_FUNCS:
        if fn.startswith(prefix):
            return kind, None
    for a in _ACT_NAMES:
        if fn.startswith(a + "_") or fn == a:
            return "Activation", a
    for op in _MERGE_OPS:
        if fn.startswith(op + "_"):
            return "Merge", op
    if lt in LAYER_TYPES:
        return lt, None
    return None, None


def _num(row: dict[str, Any], *names: str) -> float:
    for n in names:
        v = row.get(n)
        if v is None or isinstance(v, (tuple, list, bool)):
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            return f
    return math.nan


def _lanes_from_name(fn: str) -> float:
    """Channels of one io_stream word, stated in the function name (``array_ap_fixed_32u``)."""
    m = re.findall(r"_(\d+)u(?:_|$)", fn)
    return float(m[-1]) if m else math.nan


def _tool_backend(tool: Any, version: Any) -> str:
    if isinstance(tool, str) and tool:
        return "Vitis" if tool.lower().startswith("vitis") else "Vivado"
    nums = [int(v) for v in re.findall(r"\d+", str(version or ""))[:2]]
    return "Vitis" if len(nums) == 2 and tuple(nums) >= (2020, 2) else "Vivado"


def _spec_fields(row: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """LayerSpec fields of one row and its status: ``ok``, ``unconfigured``, ``unmodeled``,
    ``glue``."""
    fn = str(row.get("top") or row.get("function") or "")
    if _NOT_UPSTREAM.search(fn):
        return None, "unmodeled"
    kind, act = row_kind(row.get("layer_type"), fn, row.get("activation"))
    if kind is None:
        if _UNMODELED.search(fn):
            return None, "unmodeled"
        return None, "glue"
    io = row.get("io_type")
    io = str(io) if isinstance(io, str) and io.startswith("io_") else None
    strategy = row.get("strategy")
    strategy = str(strategy).capitalize() if isinstance(strategy, str) and strategy else None
    ib = _num(row, "input_bits")
    rb = _num(row, "result_bits")
    part = row.get("part")
    base: dict[str, Any] = {
        "layer_type": kind, "io_type": io, "strategy": strategy or "Latency",
        "input_bits": ib, "result_bits": rb, "part": str(part) if isinstance(part, str) else "",
        "backend": _tool_backend(row.get("tool"), row.get("tool_version")),
        "clock_period": _num(row, "clk_target_ns"),
        "tool_version": (None if row.get("tool_version") is None or (
            isinstance(row.get("tool_version"), float) and math.isnan(row["tool_version"]))
            else str(row.get("tool_version"))),
        "reuse_factor": _num(row, "reuse_factor"), "activation": act,
        "weight_bits": _num(row, "weight_bits"), "kernel": (), "out_size": (),
    }
    if not np.isfinite(base["clock_period"]):
        base["clock_period"] = 5.0
    if kind in WEIGHT_LAYERS:
        k, o = row.get("kernel"), row.get("out_size")
        base.update(n_in=_num(row, "n_in"), n_out=_num(row, "n_out"),
                    kernel=tuple(k) if isinstance(k, tuple) else (),
                    out_size=tuple(o) if isinstance(o, tuple) else ())
        nw = base["n_in"] * base["n_out"] * (math.prod(base["kernel"]) if base["kernel"] else 1)
        nz = _num(row, "n_nonzero_weights", "n_nonzeros")
        if not np.isfinite(nz) and np.isfinite(_num(row, "n_zeros")) and np.isfinite(nw):
            nz = nw - _num(row, "n_zeros")
        base["n_nonzero_weights"] = nz
        base["csd_digits"] = _num(row, "csd_digits")
        pf = _num(row, "parallelization")
        base["parallelization"] = pf if np.isfinite(pf) and pf >= 1 else 1.0
        need = ["n_in", "n_out", "weight_bits", "input_bits", "reuse_factor"]
        dims = {"Dense": 0, "Conv1D": 1, "Conv2D": 2}[kind]
        if len(base["kernel"]) != dims or len(base["out_size"]) != dims:
            return base, "unconfigured"
    else:
        total = _num(row, "n_in", "n_elem")
        chan = _num(row, "n_filt", "n_chan")
        lanes = _num(row, "in_array")
        lanes = lanes if np.isfinite(lanes) else _lanes_from_name(fn)
        if kind in ("Pooling1D", "Pooling2D", "GlobalPooling1D", "GlobalPooling2D"):
            dims = 2 if kind.endswith("2D") else 1
            iw, ih = _num(row, "in_width"), _num(row, "in_height")
            ow, oh = _num(row, "out_width"), _num(row, "out_height")
            if kind.startswith("Global"):
                if not np.isfinite(chan):  # a global pooling's outputs are its channels
                    chan = _num(row, "n_out")
                steps = total if np.isfinite(total) else (iw * (ih if dims == 2 else 1))
                # the reader's n_in (RTL ports, or parameters.h's n_in x n_filt) counts every
                # position's channels; hls4ml's n_in, as an index states it, the positions
                src = re.search(r"(?:^|;)n_in=([^;]*)", str(row.get("field_sources") or ""))
                if src and src.group(1).startswith(("ports", "parameters.h")) and \
                        np.isfinite(chan) and chan > 0 and steps % chan == 0:
                    steps /= chan
                base.update(n_in=chan, n_out=chan, kernel=(steps,) if np.isfinite(steps) else ())
            else:
                pw = _num(row, "pool_width")
                ph = _num(row, "pool_height")
                pw = pw if np.isfinite(pw) else (iw // ow if np.isfinite(iw) and ow > 0 else math.nan)
                ph = ph if np.isfinite(ph) else (ih // oh if np.isfinite(ih) and oh > 0 else math.nan)
                kern = (ph, pw) if dims == 2 else (pw,)
                outs = (oh, ow) if dims == 2 else (ow,)
                ok = all(np.isfinite(v) and v >= 1 for v in (*kern, *outs))
                k_row, o_row = row.get("kernel"), row.get("out_size")
                if not ok and isinstance(k_row, tuple) and isinstance(o_row, tuple) and \
                        len(k_row) == len(o_row) == dims:
                    # parameters.h's sizes (struct_fields): n_out counts every output position's
                    # channels, so the channels are n_out over the positions
                    kern, outs = tuple(map(float, k_row)), tuple(map(float, o_row))
                    ok = all(v >= 1 for v in (*kern, *outs))
                    if not np.isfinite(chan) and ok:
                        chan = _num(row, "n_out") / math.prod(outs)
                        chan = chan if np.isfinite(chan) and chan >= 1 and chan % 1 == 0 else math.nan
                base.update(n_in=chan, n_out=chan, kernel=kern if ok else (), out_size=outs if ok else ())
            need = ["n_in", "input_bits"]
            if not base["kernel"]:
                return base, "unconfigured"
        else:
            if kind in COPY_LAYERS:  # their pipeline runs over the output (parameters.h n_out)
                total = _num(row, "n_out", "n_in")
            if io == "io_stream" and np.isfinite(lanes) and np.isfinite(total) and total >= lanes:
                base.update(n_in=lanes, n_out=lanes, out_size=(max(int(round(total / lanes)), 1),))
            elif io == "io_stream" and np.isfinite(total) and total > _ONE_WORD_MAX:
                # a feature map whose stream word (channels) no name or type states: costing
                # every element in parallel would be off by the number of pixels
                return base, "unconfigured"
            else:  # io_parallel, or a flat vector that hls4ml streams as one word
                base.update(n_in=total, n_out=total)
            need = ["n_in", "input_bits"]
            if not np.isfinite(base["result_bits"]):
                base["result_bits"] = base["input_bits"]
    for key in ("reuse_factor",):
        if not np.isfinite(base[key]):
            base[key] = 1.0 if kind not in WEIGHT_LAYERS else math.nan
    if not np.isfinite(base["weight_bits"]):
        base["weight_bits"] = 16.0 if kind not in WEIGHT_LAYERS else math.nan
    bad = [k for k in need if not np.isfinite(base.get(k, math.nan))] + (
        [] if base["io_type"] else ["io_type"]) + ([] if base["part"] else ["part"])
    return base, ("unconfigured" if bad else "ok")


def rows_to_specs(rows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """LayerSpec columns for ``rows`` and each row's status (``ok``/``unconfigured``/...)."""
    recs, status = [], []
    for r in rows.to_dict("records"):
        f, s = _spec_fields(r)
        recs.append(f or {})
        status.append(s)
    out = pd.DataFrame(recs, index=rows.index)
    st = np.array(status, dtype=object)
    ints = ["n_in", "n_out", "weight_bits", "input_bits", "reuse_factor"]
    for c in ints:
        if c in out:
            out[c] = pd.to_numeric(out[c], errors="coerce")
    for c in ("kernel", "out_size"):
        if c in out:
            out[c] = [tuple(int(v) for v in t) if isinstance(t, tuple) else () for t in out[c]]
    return out, st


def training_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The layer rows of a read_reports() table whose configuration is fully stated, as LayerSpec
    columns plus the measured targets (``REPORT_Y``), ``source_repo`` and ``source``."""
    if "level" not in df.columns:
        raise ConfigError("expected a read_reports() table (with a 'level' column)")
    lay = df[df["level"] == "layer"]
    if "primary" in lay.columns:
        lay = lay[lay["primary"].fillna(True).astype(bool)]
    if lay.empty:
        return pd.DataFrame()
    specs, st = rows_to_specs(lay)
    keep = st == "ok"
    specs = specs[keep]
    lay = lay[keep]
    for t, col in REPORT_Y.items():
        specs["y_" + t] = pd.to_numeric(lay[col], errors="coerce") if col in lay else np.nan
    specs["source_repo"] = (lay["source_repo"] if "source_repo" in lay else lay["source"]).astype(str)
    specs["source"] = lay["source"].astype(str)
    return specs


def project_layers(df: pd.DataFrame) -> list[dict[str, Any]]:
    """One entry per model-level report (not JSON summaries): its layers as LayerSpec columns (in
    config order), the counts of unconfigured/unmodeled layer rows, and the measured totals."""
    models = df[(df["level"] == "model") & (df.get("format", "") != "json")]
    lay_all = df[df["level"] == "layer"]
    if "primary" in lay_all.columns:
        lay_all = lay_all[lay_all["primary"].fillna(True).astype(bool)]
    groups = dict(tuple(lay_all.groupby("source"))) if not lay_all.empty else {}
    out = []
    for idx, m in models.iterrows():
        lay = groups.get(m["source"], pd.DataFrame())
        if "config_index" in lay:
            lay = lay.assign(_o=pd.to_numeric(lay["config_index"], errors="coerce").fillna(1e9))
            lay = lay.sort_values("_o", kind="stable")
        specs, st = rows_to_specs(lay) if not lay.empty else (pd.DataFrame(), np.array([]))
        kinds = (specs["layer_type"].to_numpy() if "layer_type" in specs
                 else np.full(len(st), None, dtype=object))
        uncon_w = int(((st == "unconfigured") & np.isin(kinds, WEIGHT_LAYERS)).sum())
        entry = {
            "index": idx, "source": m["source"], "report": m.get("report"),
            "source_repo": m.get("source_repo", m["source"]),
            "specs": specs[st == "ok"].reset_index(drop=True) if len(st) else specs,
            "n_layers": int((st == "ok").sum()), "n_unconfigured": int((st == "unconfigured").sum()),
            "n_unconfigured_weight_layers": uncon_w, "n_unmodeled": int((st == "unmodeled").sum()),
            "measured": {t: pd.to_numeric(pd.Series([m.get(c)]), errors="coerce").iloc[0]
                         for t, c in REPORT_Y.items()},
        }
        entry["complete"] = bool(entry["n_layers"] > 0 and uncon_w == 0 and entry["n_unmodeled"] == 0
                                 and np.isin(kinds[st == "ok"], WEIGHT_LAYERS).any())
        out.append(entry)
    return out
