"""Give each layer row of one project its configuration, saying where every field came from.

Sources, most trusted first: ``firmware/parameters.h`` (+ ``defines.h``), what hls4ml compiled;
the function's name and Vitis' unmangled signature (layer kind, strategy, types, io_stream
array sizes); ``hls4ml_config.yml`` (per-layer ``LayerName`` entries, then the model defaults);
and last the RTL ports, which undercount (a pruned input has no port) and are marked ``ports``.
Input/result widths a function name lost (Vivado elides a repeated type) come from the top
function's call of the layer in ``firmware/<project>.cpp`` (``parameters_h.parse_layer_calls``).
All rows that share a ``configN`` (``dense_array`` and its ``dense_wrapper``, a conv and its
``config2_mult`` product) describe one layer and share its fields.

A name Vivado cut before its config index is matched to a ``parameters.h`` struct by kind,
ports and, among look-alikes, by the order of Vivado's ``_s``/``_1``/``_2`` suffixes.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Any

from connas4ml_torch.hardware.reports.hls4ml_layers import (
    STRUCT_TYPES,
    closest_reuse_factor,
    pair_yml_layers,
    struct_fields,
)
from connas4ml_torch.hardware.reports.names import fixed_type, parse_function_name
from connas4ml_torch.hardware.reports.weights_txt import weight_stats

__all__ = ["configure_layers", "WEIGHTED"]

WEIGHTED = ("Dense", "Conv1D", "Conv2D")
_NAME_KEYS = ("op", "layer_type", "activation", "implementation", "strategy", "io_type",
              "config_index", "config_name", "sub_config", "input_bits", "result_bits",
              "input_type", "result_type", "in_array", "out_array", "truncated")


def _set(rec: dict[str, Any], src: dict[str, str], key: str, value: Any, source: str) -> None:
    """Set ``key`` unless a more trusted source set it already (first caller wins)."""
    if value is None or rec.get(key) is not None:
        return
    rec[key] = value
    src[key] = source


def _suffix_order(name: str) -> int:
    m = re.search(r"_(\d+)$", name)
    return int(m.group(1)) if m else 0


def _fits(r: dict[str, Any], p: dict[str, Any]) -> bool:
    """Whether a report's ports fit a Dense struct (ports undercount, never overcount)."""
    if r["layer_type"] != "Dense":
        return True
    n_in, n_out = p.get("n_in"), p.get("n_out")
    return not ((n_in and (r.get("ports_in") or 0) > n_in) or
                (n_out and (r.get("ports_out") or 0) > n_out))


def _match_truncated(rows: list[dict[str, Any]], params: dict[int, dict[str, Any]]) -> None:
    """Give rows whose name lost its config index the index of a parameters.h struct: a row
    that only one struct of its kind fits takes it; the rest of one function, if as many as
    the structs left, pair in the order of Vivado's ``_s``, ``_1``, ``_2`` suffixes."""
    lost = [r for r in rows if r.get("config_index") is None and r["layer_type"] in WEIGHTED]
    if not lost or not params:
        return
    taken = {(r.get("op"), r["config_index"]) for r in rows if r.get("config_index") is not None}
    by_op: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in lost:
        by_op[r["op"]].append(r)
    for op, rs in by_op.items():
        strat = rs[0].get("strategy")
        free = [k for k, p in sorted(params.items())
                if STRUCT_TYPES.get(p.get("config_struct") or "") == rs[0]["layer_type"]
                and (op, k) not in taken
                and not (strat and p.get("strategy") and str(p["strategy"]).lower() !=
                         strat.lower())]
        left = sorted(rs, key=lambda r: _suffix_order(r["top"]))
        changed = True
        while changed and left:
            changed = False
            for r in list(left):
                fit = [k for k in free if _fits(r, params[k])]
                if len(fit) == 1:
                    r["config_index"], r["_matched"] = fit[0], "the only struct its ports fit"
                    free.remove(fit[0])
                    left.remove(r)
                    changed = True
        if left and len(left) == len(free) and all(_fits(r, params[k])
                                                   for r, k in zip(left, free)):
            for r, k in zip(left, free):
                r["config_index"] = k
                r["_matched"] = "in the order of Vivado's _s/_1/_2 suffixes"
        else:
            for r in left:
                r["_unmatched"] = (f"name cut by Vivado before its config index; {len(free)} "
                                   f"parameters.h structs could be it")


def _owner_types(rows: list[dict[str, Any]], params: dict[int, dict[str, Any]]) -> dict[int, str]:
    owners: dict[int, str] = {}
    for k, p in params.items():
        t = STRUCT_TYPES.get(p.get("config_struct") or "")
        if t == "Activation" and "softmax" in str(p.get("config_name", "")).lower():
            t = "Softmax"
        if t:
            owners[k] = t
    for r in rows:
        k, t = r.get("config_index"), r.get("layer_type")
        if k is None or r.get("sub_config") or t in (None, "other") or k in owners:
            continue
        if owners.get(k) in (None, "Dense") or t not in ("Dense",):
            owners[k] = t if owners.get(k) in (None, "Dense") else owners[k]
    return owners


def configure_layers(rows: list[dict[str, Any]], cfg: dict[str, Any],
                     params: dict[int, dict[str, Any]], weights: dict[int, Any]) -> None:
    """Fill the layer columns of ``rows`` (one project's layer rows) in place."""
    for r in rows:
        fn = parse_function_name(r["top"], r.get("object"))
        for k in _NAME_KEYS:
            if fn.get(k) is not None:
                r[k] = fn[k]
        r.setdefault("layer_type", "other")
        src = r.setdefault("_src", {})
        for key, port in (("input_bits", "port_in_bits"), ("result_bits", "port_out_bits")):
            if r.get(key) is not None:
                src[key] = "name"
            elif r.get(port):  # element width of the data ports where the name lost the type
                r[key], src[key] = r[port], "ports"
    _match_truncated(rows, params)
    owners = _owner_types(rows, params)
    groups: dict[tuple[int | None, str], list[dict[str, Any]]] = defaultdict(list)
    for i, r in enumerate(rows):
        k, own = r.get("config_index"), owners.get(r.get("config_index"))
        if own and (r.get("sub_config") or r.get("layer_type") in (None, "other") or
                    (r["layer_type"] == "Dense" and own != "Dense")):
            r["layer_type"] = own  # a helper or product of the layer that owns the config
        r["layer_type"] = r.get("layer_type") or "other"
        groups[(k, r["layer_type"]) if k is not None else (None, str(i))].append(r)
    yml, fallback = pair_yml_layers(cfg, params, {k: t for k, t in owners.items()
                                                  if any(g[0] == k for g in groups)})
    # io_stream functions take arrays (nnet::array<T, N>): in a project whose typed function
    # names show none, the layers are io_parallel
    typed = [r for r in rows if r.get("input_type") or r.get("result_type")]
    project_io = "io_stream" if any(r.get("io_type") == "io_stream" for r in rows) else \
        "io_parallel" if len(typed) >= 2 else None
    cfg = {**(cfg or {}), "_project_io": project_io}
    for (k, _), grp in groups.items():
        ltype = grp[0]["layer_type"]
        p = params.get(k) if k is not None else None
        if p is not None and ltype != owners.get(k):
            p = None  # e.g. a GRU's tanh_config2: its own function, not the GRU's struct
        fb = fallback.get(ltype)
        y = yml.get(k) if k is not None and ltype == owners.get(k) else (
            (None, fb, "same for all layers of this kind") if fb else None)
        _configure_group(k, grp, ltype, cfg, p, y, weights)
    _pool_ops(rows)


# hls4ml's pooling layers reduce each window through one helper per operation (``max`` /
# ``avg`` in nnet_pooling.h), synthesized as functions of their own
_POOL_HELPERS = {"max": "max", "avg": "average"}


def _pool_ops(rows: list[dict[str, Any]]) -> None:
    """Name the operation of a project's pooling layers where its reports show exactly one of
    hls4ml's pooling helpers (a max is a compare-and-select chain, an average an adder tree)."""
    ops = {_POOL_HELPERS[r["op"]] for r in rows
           if r.get("layer_type") == "other" and r.get("op") in _POOL_HELPERS}
    if len(ops) != 1:
        return
    op = ops.pop()
    for r in rows:
        if "Pooling" in str(r.get("layer_type")) and not r.get("activation"):
            r["activation"] = op
            r["_src"]["activation"] = f"name (the project's {op} helper function)"


def _configure_group(k: int | None, grp: list[dict[str, Any]], ltype: str,
                     cfg: dict[str, Any], p: dict[str, Any] | None,
                     yml: tuple[str | None, dict[str, Any], str] | None,
                     weights: dict[int, Any]) -> None:
    """Fields shared by the rows of one layer (one config index, one layer type)."""
    shared: dict[str, Any] = {}
    src: dict[str, str] = {}
    mains = [r for r in grp if not r.get("sub_config")] or grp
    if p:
        for key, v in struct_fields(p, ltype).items():
            _set(shared, src, key, v, "parameters.h")
    src["layer_type"] = "parameters.h" if p and p.get("config_struct") else "name"
    # exact sizes from the function's types (io_stream arrays)
    if ltype in ("Conv1D", "Conv2D"):
        ins = [r["in_array"] for r in mains if r.get("in_array") and
               not str(r.get("op", "")).startswith("compute_output_buffer")]
        outs = [r["out_array"] for r in mains if r.get("out_array")]
        _set(shared, src, "n_in", max(ins) if ins else None, "name")
        _set(shared, src, "n_out", max(outs) if outs else None, "name")
    if ltype == "Dense":
        outs = [r["out_array"] for r in mains if r.get("out_array")]
        _set(shared, src, "n_out", max(outs) if outs else None, "name")
    strategies = {r["strategy"] for r in grp if r.get("strategy")}
    if len(strategies) == 1 and ltype in WEIGHTED:
        _set(shared, src, "strategy", strategies.pop(), "name")
    if any(r.get("io_type") == "io_stream" for r in grp):
        _set(shared, src, "io_type", "io_stream", "name")
    # hls4ml_config.yml: the paired LayerName entry, then the model defaults
    blocked: set[str] = set()
    if yml is not None:
        name, d, how = yml
        blocked = set(d.get("_blocked", ()))
        tag = f"hls4ml_config.yml:LayerName[{name}]" if name else "hls4ml_config.yml:LayerName"
        tag += f" ({how})" if how else ""
        if ltype in WEIGHTED:
            _set(shared, src, "reuse_factor", d.get("reuse_factor"), tag)
            _set(shared, src, "strategy", d.get("strategy"), tag)
            wt = fixed_type(d.get("weight"))
            if wt:
                _set(shared, src, "weight_type", wt.spelling(), tag)
                _set(shared, src, "weight_bits", wt.width, tag)
        if name:
            _set(shared, src, "layer_name", name, tag)
    if cfg.get("layers") is not None and ltype in WEIGHTED:
        model = "hls4ml_config.yml:Model"
        if "reuse_factor" not in blocked:
            _set(shared, src, "reuse_factor", cfg.get("cfg_reuse"), model)
        if "strategy" not in blocked:
            _set(shared, src, "strategy", cfg.get("cfg_strategy"), model)
        wt = fixed_type(cfg.get("cfg_weight_precision")) if "weight" not in blocked else None
        if wt:
            _set(shared, src, "weight_type", wt.spelling(), model)
            _set(shared, src, "weight_bits", wt.width, model)
    if ltype != "other":
        _set(shared, src, "io_type", cfg.get("cfg_io_type"), "hls4ml_config.yml")
        _set(shared, src, "io_type", cfg.get("_project_io"), "name (the project's other "
                                                               "functions' types)")
    # last resort: RTL ports (undercount where pruning removed inputs or outputs; in io_stream
    # they count one stream word, so only functions with scalar data ports are used)
    if ltype == "Dense" or (ltype != "other" and ltype not in WEIGHTED and
                            shared.get("io_type") != "io_stream"):
        ins = [x for x in (_ports_in(r) for r in mains) if x]
        ins += [r["in_array"] for r in mains if r.get("in_array") and ins]
        outs = [r["ports_out"] for r in mains if r.get("ports_out")]
        _set(shared, src, "n_in", max(ins) if ins else None, "ports")
        _set(shared, src, "n_out", max(outs) if outs else None, "ports")
    if ltype in ("Conv1D", "Conv2D"):  # compute_output_buffer's ports: one pixel's channels
        ins = [r["ports_in"] for r in mains
               if str(r.get("op", "")).startswith("compute_output_buffer") and r.get("ports_in")]
        _set(shared, src, "n_in", max(ins) if ins else None, "ports")
    if ltype == "Dense":
        shared.setdefault("kernel", ())
        shared.setdefault("out_size", ())
    if ltype in WEIGHTED and shared.get("reuse_factor") is not None:
        _effective_rf(shared, src, ltype)
    if k is not None and ltype in WEIGHTED and k in weights:
        for key, v in weight_stats(weights[k], fixed_type(shared.get("weight_type"))).items():
            shared[key] = v
            src[key] = f"weights/w{k}.txt"
    # the layer's input width where one of its functions lost it (Vivado elides repeated types)
    named = [r["input_bits"] for r in grp if r.get("input_bits") and
             r["_src"].get("input_bits") == "name"]
    for r in grp:
        if named and r.get("input_bits") is None:
            r["input_bits"] = max(set(named), key=named.count)
            r["_src"]["input_bits"] = "name (another function of the layer)"
    calls = (p or {}).get("call_types") or {}
    for r in grp:  # the top function's call of the layer names both types in full
        for key in ("input_bits", "result_bits"):
            if r.get(key) is None and calls.get(key):
                r[key] = calls[key]
                r["_src"][key] = f"firmware/{calls['file']} (the layer's call)"
    for r in grp:
        r.update(shared)
        r["config_source"] = "parameters.h" if p else "name"
        r["_src"] = {**r.get("_src", {}), **src}
        if r.get("_matched") and p:
            r["_src"]["config_index"] = f"parameters.h ({r['_matched']})"


def _ports_in(r: dict[str, Any]) -> int | None:
    """Data inputs, counting an input packed into one wide port by the element width (from the
    ports when the name lost the type)."""
    n = r.get("ports_in")
    wide, bits = r.get("ports_in_wide_bits"), r.get("input_bits")
    if wide and bits and wide % bits == 0:
        n = (n or 0) + wide // bits
    return n


def _effective_rf(shared: dict[str, Any], src: dict[str, str], ltype: str) -> None:
    """hls4ml replaces a requested reuse factor that does not divide the layer's multiplications
    (Resource strategy) by the closest valid one; a requested RF (hls4ml_config.yml) becomes
    the effective one here, or unknown when the sizes it depends on are."""
    if not str(src.get("reuse_factor", "")).startswith("hls4ml_config.yml"):
        return
    shared["reuse_factor_requested"] = shared["reuse_factor"]
    if str(shared.get("strategy", "")).lower() != "resource":
        return
    n_in, n_out = shared.get("n_in"), shared.get("n_out")
    if ltype in ("Conv1D", "Conv2D"):
        k = shared.get("kernel")
        n_in = n_in * math.prod(k) if isinstance(n_in, int) and k else None
    if not isinstance(n_in, (int, float)) or not isinstance(n_out, (int, float)) or \
            not n_in or not n_out:
        shared["_rf_requested"] = shared.pop("reuse_factor")
        src.pop("reuse_factor")
        return
    rf = closest_reuse_factor(int(n_in), int(n_out), int(shared["reuse_factor"]))
    if rf != shared["reuse_factor"]:
        shared["reuse_factor"] = rf
        src["reuse_factor"] += " -> closest valid for n_in x n_out (hls4ml rule)"
