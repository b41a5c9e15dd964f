"""hls4ml's layer vocabulary: function names and config structs -> layer classes and fields, the
reuse factor hls4ml settles on, and pairing the ``LayerName`` entries of ``hls4ml_config.yml``
with the layers found in the reports.

A ``parameters.h`` struct states a layer's sizes in the struct's own terms (``n_chan``/``n_filt``
for convolutions, ``in_height``/``pool_height`` for poolings...); :func:`struct_fields` maps them
to the table's columns (``n_in``/``n_out`` count inputs/outputs: Dense n_in/n_out, Conv
n_chan/n_filt, elements for the other layers).

``LayerName`` entries carry the user's names (``fc1``, ``q_dense_2``), the reports carry config
indices. ``parameters.h`` pairs them exactly (its ``// fc1`` comment above ``struct config7``).
Without it we only use what cannot be wrong: a value every layer of that kind shares, or
entries named after the kind (``conv``/``dense``) whose natural order lines up one-to-one with
the config indices of that kind; otherwise the field stays unset (and the model default is not
used either, since some layer overrides it).
"""

from __future__ import annotations

import bisect
import re
from typing import Any

__all__ = ["STRUCT_TYPES", "layer_kind", "ACTIVATIONS", "SOFTMAX_IMPL", "struct_fields",
           "pair_yml_layers", "closest_reuse_factor"]

# ---- function base names -> hls4ml layer classes ------------------------------------------
# (regex on the function's base name, layer_type, strategy, io_type hint); first match wins.
# layer_type None: a helper whose layer is the one that owns its config (shift_line_buffer
# serves convolutions and poolings alike).
_OPS: list[tuple[str, str | None, str | None, str | None]] = [
    (r"pointwise_conv_1d\w*", "Conv1D", None, None),
    (r"pointwise_conv_2d\w*", "Conv2D", None, None),
    (r"(?:depthwise_|separable_)?conv_?1d\w*", "Conv1D", None, None),
    (r"(?:depthwise_|separable_)?conv_?2d\w*", "Conv2D", None, None),
    (r"compute_output_buffer_1d\w*", "Conv1D", None, "io_stream"),
    (r"compute_output_buffer_2d\w*", "Conv2D", None, "io_stream"),
    (r"shift_line_buffer\w*|cnnshift\w*|im2col\w*|fill_buffer\w*", None, None, None),
    (r"dense_latency\w*", "Dense", "Latency", None),
    (r"dense_resource\w*|dense_large\w*", "Dense", "Resource", None),
    (r"dense(?:_wrapper|_array)?", "Dense", None, None),
    (r"compute_layer", "Dense", "Latency", None),  # hls4ml <= 2018 name of the dense layer
    (r"softmax\w*", "Softmax", None, None),
    (r"global_pooling1d\w*", "GlobalPooling1D", None, None),
    (r"global_pooling2d\w*", "GlobalPooling2D", None, None),
    (r"pooling1d\w*", "Pooling1D", None, None),
    (r"pooling2d\w*", "Pooling2D", None, None),
    (r"normalize\w*", "BatchNormalization", None, None),
    (r"zeropad1d\w*", "ZeroPadding1D", None, None),
    (r"zeropad2d\w*", "ZeroPadding2D", None, None),
    (r"cropping1d\w*", "Cropping1D", None, None),
    (r"cropping2d\w*", "Cropping2D", None, None),
    (r"resize\w*", "Resize", None, None),
    (r"(?:add|subtract|multiply|average|maximum|minimum|dot1d|concatenate[123]d)\w*", "Merge",
     None, None),
    (r"gru\w*", "GRU", None, None),
    (r"lstm\w*", "LSTM", None, None),
    (r"simple_rnn\w*", "SimpleRNN", None, None),
    (r"clone_stream\w*", "Clone", None, "io_stream"),
    (r"repack_stream\w*", "Reshape", None, "io_stream"),
    (r"transpose\w*", "Transpose", None, None),
    (r"embedding\w*", "Embedding", None, None),
]
ACTIVATIONS = ("relu", "linear", "sigmoid", "tanh", "hard_sigmoid", "hard_tanh", "leaky_relu",
                "thresholded_relu", "elu", "selu", "prelu", "softplus", "softsign", "binary_tanh",
                "ternary_tanh", "relu6", "relu_max")
SOFTMAX_IMPL = ("latency", "stable", "legacy", "argmax")


def layer_kind(op: str) -> tuple[str | None, str | None, str | None, str | None]:
    """``(layer_type, activation, strategy, io hint)`` of a base function name."""
    low = op.lower().removesuffix("_array")
    if low in ACTIVATIONS:
        return "Activation", low, None, None
    for pat, ltype, strat, io in _OPS:
        if re.fullmatch(pat, low):
            act = "softmax" if ltype == "Softmax" else None
            return ltype, act, strat, io
    return "other", None, None, None


STRUCT_TYPES = {
    "dense_config": "Dense", "conv1d_config": "Conv1D", "conv2d_config": "Conv2D",
    "depthwise_conv1d_config": "Conv1D", "depthwise_conv2d_config": "Conv2D",
    "activ_config": "Activation", "pooling1d_config": "Pooling1D",
    "pooling2d_config": "Pooling2D", "global_pooling1d_config": "GlobalPooling1D",
    "global_pooling2d_config": "GlobalPooling2D", "batchnorm_config": "BatchNormalization",
    "merge_config": "Merge", "concat_config": "Merge", "dot_config": "Merge",
    "padding1d_config": "ZeroPadding1D", "padding2d_config": "ZeroPadding2D",
    "resize_config": "Resize", "gru_config": "GRU", "lstm_config": "LSTM",
    "simpleRNN_config": "SimpleRNN", "embed_config": "Embedding", "transpose_config": "Transpose",
}
WEIGHTED = ("Dense", "Conv1D", "Conv2D")


def closest_reuse_factor(n_in: int, n_out: int, rf: int) -> int:
    """The reuse factor hls4ml uses for a requested ``rf`` on an ``n_in x n_out`` product
    (Resource strategy; ``FPGABackend.set_closest_reuse_factor``): ``rf`` if valid, else the
    closest valid one (the smaller on a tie). Valid: divides ``n_in * n_out``, is below ``n_in``
    or a multiple of it, and splits the outputs evenly."""
    total = n_in * n_out
    if total <= 0 or rf <= 0:
        return rf
    divs: set[int] = set()
    i = 1
    while i * i <= total:
        if total % i == 0:
            divs.update((i, total // i))
        i += 1
    valid = sorted(r for r in divs if (r < n_in or r % n_in == 0) and
                   ((total // min(n_in, r)) % n_out == 0 or r >= n_in))
    if not valid or rf in valid:
        return rf
    pos = bisect.bisect_left(valid, rf)
    if pos == 0:
        return valid[0]
    if pos == len(valid):
        return valid[-1]
    before, after = valid[pos - 1], valid[pos]
    return after if after - rf < rf - before else before


def _prod(*xs: Any) -> int | None:
    out = 1
    for x in xs:
        if not isinstance(x, int):
            return None
        out *= x
    return out


def struct_fields(p: dict[str, Any], ltype: str | None) -> dict[str, Any]:
    """The table columns a parameters.h struct states for a layer of type ``ltype``."""
    g = p.get
    out: dict[str, Any] = {}
    if ltype == "Dense":
        out.update(n_in=g("n_in"), n_out=g("n_out"), kernel=(), out_size=())
    elif ltype == "Conv1D":
        out.update(n_in=g("n_chan"), n_out=g("n_filt"))
        if isinstance(g("filt_width"), int):
            out["kernel"] = (g("filt_width"),)
        if isinstance(g("out_width"), int):
            out["out_size"] = (g("out_width"),)
    elif ltype == "Conv2D":
        out.update(n_in=g("n_chan"), n_out=g("n_filt"))
        if isinstance(g("filt_width"), int):
            out["kernel"] = (g("filt_height", 1), g("filt_width"))
        if isinstance(g("out_width"), int):
            out["out_size"] = (g("out_height", 1), g("out_width"))
    if ltype in ("Conv1D", "Conv2D") and isinstance(g("out_width"), int):
        # io_parallel convs compute their positions in n_partitions pipeline iterations (hls4ml's
        # ParallelizationFactor = positions / n_partitions); the pointwise kernel
        # (BatchedDenseForConv1D) computes every position in one
        pos = g("out_width") * (g("out_height", 1) if ltype == "Conv2D" else 1)
        parts = 1 if g("implementation") == "pointwise" else g("n_partitions")
        if isinstance(parts, int) and parts >= 1 and pos % parts == 0:
            out["parallelization"] = pos // parts
    elif ltype == "Pooling1D":
        out.update(n_in=_prod(g("n_in"), g("n_filt")), n_out=_prod(g("n_out"), g("n_filt")))
        if isinstance(g("pool_width"), int):
            out["kernel"] = (g("pool_width"),)
    elif ltype == "Pooling2D":
        out.update(n_in=_prod(g("in_height"), g("in_width"), g("n_filt")),
                   n_out=_prod(g("out_height"), g("out_width"), g("n_filt")))
        if isinstance(g("pool_width"), int):
            out["kernel"] = (g("pool_height", 1), g("pool_width"))
        if isinstance(g("out_width"), int):
            out["out_size"] = (g("out_height", 1), g("out_width"))
    elif ltype in ("GlobalPooling1D", "GlobalPooling2D"):
        out.update(n_in=_prod(g("n_in"), g("n_filt")) or _prod(g("in_height"), g("in_width"),
                                                                  g("n_filt")), n_out=g("n_filt"))
    elif ltype == "Resize" and g("new_width") is not None:  # resize_config: height -> new_height
        out.update(n_in=_prod(g("height", 1), g("width"), g("n_chan")),
                   n_out=_prod(g("new_height", 1), g("new_width"), g("n_chan")))
    elif ltype in ("ZeroPadding1D", "ZeroPadding2D", "Resize"):
        out.update(n_in=_prod(g("in_height", 1), g("in_width"), g("n_chan")),
                   n_out=_prod(g("out_height", 1), g("out_width"), g("n_chan")))
    elif ltype in ("GRU", "LSTM", "SimpleRNN"):
        out.update(n_in=g("n_in"), n_out=g("n_state") or g("n_out"))
    else:  # activations, softmax, batchnorm, merge: element counts
        n = g("n_in") if g("n_in") is not None else g("n_elem")
        out.update(n_in=n, n_out=g("n_out") if g("n_out") is not None else n)
        if g("table_size") is not None or g("exp_table_size") is not None:
            out["table_size"] = g("table_size") if g("table_size") is not None else \
                g("exp_table_size")
        tb = g("table_bits") if g("table_bits") is not None else g("exp_table_bits")
        if tb is not None:
            out["table_bits"] = tb
        if g("implementation") and ltype == "Softmax":
            out["implementation"] = str(g("implementation")).lower()
    if g("reuse_factor") is not None:
        out["reuse_factor"] = g("reuse_factor")
    if g("strategy") and ltype in WEIGHTED:
        out["strategy"] = str(g("strategy")).capitalize()
    if g("io_type"):
        out["io_type"] = "io_" + str(g("io_type")).replace("io_", "")
    if ltype in WEIGHTED and isinstance(g("n_zeros"), int):  # hls4ml counts the zero weights
        out["n_zeros"] = g("n_zeros")
    if ltype in WEIGHTED and g("weight_bits") is not None:
        out["weight_bits"] = g("weight_bits")
        out["weight_type"] = g("weight_type")
    if g("layer_name"):
        out["layer_name"] = g("layer_name")
    return {k: v for k, v in out.items() if v is not None}


def _entry_kind(name: str, d: dict[str, Any], conv_impl_used: bool, owner_types: set) -> \
        str | None:
    """Conv, Dense, RNN, None (no weights) or 'weighted' (cannot tell) for a LayerName entry."""
    low = name.lower()
    keys = set(d.get("precision_keys", ()))
    if d.get("has_weights") is False or low.endswith("_input"):
        return None
    if keys & {"recurrent_weight", "recurrent_bias"}:
        return "RNN"
    if "conv_implementation" in d or "conv" in low:
        return "Conv"
    if "dense" in low or re.fullmatch(r"(?:q_)?fc_?\d*", low):
        return "Dense"
    if not d.get("has_weights"):
        return None
    if conv_impl_used or not owner_types & {"Conv1D", "Conv2D"}:
        return "Dense"  # hls4ml that writes ConvImplementation writes it for every conv
    if not owner_types & {"Dense"}:
        return "Conv"
    return "weighted"


def _natural(name: str) -> tuple[str, int]:
    m = re.fullmatch(r"(.*?)_?(\d*)", name)
    return (m.group(1), int(m.group(2) or 0)) if m else (name, 0)


_KIND = {"Conv1D": "Conv", "Conv2D": "Conv", "Dense": "Dense"}


def pair_yml_layers(cfg: dict[str, Any], params: dict[int, dict[str, Any]],
                    owners: dict[int, str | None]) -> \
        tuple[dict[int, tuple[str | None, dict, str]], dict[str, dict[str, Any]]]:
    """Pair ``LayerName`` entries with config indices.

    Returns ``({config_index: (layer name or None, settings, how)}, fallback)``: ``settings``
    holds the LayerName values that apply (``reuse_factor``, ``strategy``, ``weight``...);
    ``fallback[layer_type]`` (for layers of that type that could not be paired) holds the values
    every entry of that kind shares and ``_blocked``: the fields some entry overrides, for which
    the model default must not be used either.
    """
    layers: dict[str, dict[str, Any]] = (cfg or {}).get("layers") or {}
    out: dict[int, tuple[str | None, dict, str]] = {}
    by_name = {p.get("layer_name"): k for k, p in params.items() if p.get("layer_name")}
    for name, d in layers.items():
        if name in by_name:
            out[by_name[name]] = (name, dict(d), "")
    owner_types = {t for t in owners.values() if t}
    conv_impl = any("conv_implementation" in d for d in layers.values())
    kinds = {n: _entry_kind(n, d, conv_impl, owner_types) for n, d in layers.items()
             if n not in by_name}
    kinds = {n: kd for n, kd in kinds.items() if kd and kd != "RNN"}
    fields = ("reuse_factor", "strategy", "weight")
    model = {"reuse_factor": cfg.get("cfg_reuse"), "strategy": cfg.get("cfg_strategy"),
             "weight": cfg.get("cfg_weight_precision")} if cfg else {}
    fallback: dict[str, dict[str, Any]] = {}
    for t, kind in _KIND.items():
        names = [n for n, kd in kinds.items() if kd in (kind, "weighted")]
        over = {f for f in fields if any(f in layers[n] for n in names)}
        settings: dict[str, Any] = {}
        for f in over:
            vals = {layers[n].get(f, model.get(f)) for n in names}
            if len(vals) == 1 and None not in vals:
                settings[f] = vals.pop()
        settings["_blocked"] = over - set(settings)
        fallback[t] = settings
    weighted = sorted(k for k, t in owners.items() if t in _KIND and k not in out)
    unknown = any(kd == "weighted" for kd in kinds.values())
    for kind in ("Conv", "Dense"):
        names = sorted((n for n, kd in kinds.items() if kd == kind), key=_natural)
        idx = [k for k in weighted if _KIND[owners[k]] == kind]
        if names and len(names) == len(idx) and not unknown:
            for k, n in zip(idx, names):
                out[k] = (n, dict(layers[n]), "paired by name order")
    for k in weighted:
        if k not in out:
            fb = fallback[owners[k]]
            out[k] = (None, dict(fb), "same for all layers of this kind"
                      if set(fb) - {"_blocked"} else "")
    return out, fallback
