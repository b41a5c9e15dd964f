"""``hls4ml_config.yml``: what the user asked hls4ml for, globally and per layer.

hls4ml writes it next to every project: backend, part, io type, clock, the model-wide
``HLSConfig.Model`` (precision, reuse factor, strategy) and per-layer overrides under
``HLSConfig.LayerName`` (precision of weight/bias/result/table, reuse factor, strategy, table
size, softmax implementation). Values are the *requested* ones; ``auto`` precisions are left to
hls4ml and read here as unknown.

YAML is loaded with a SafeLoader (unknown tags such as ``!keras_model`` become plain values),
and a document whose anchors/aliases would expand beyond a bound ("YAML bomb"), or whose nesting
is too deep, is refused before anything walks it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from connas4ml_torch.errors import ReportError
from connas4ml_torch.hardware.reports.base import MiB, Parser, num, read_text, register, show

__all__ = ["parse_hls4ml_config", "MAX_NODES"]

MAX_BYTES = 4 * MiB
MAX_NODES = 200_000  # nodes after alias expansion; a real config has a few hundred


class _LenientLoader(yaml.SafeLoader):
    """SafeLoader that turns unknown tags (``!keras_model 'x.h5'``) into plain values and refuses
    merge keys (``<<: *a``): merging copies entries while loading, so nested merges grow
    exponentially before any bound on the result could look at it."""

    def flatten_mapping(self, node: yaml.MappingNode) -> None:  # noqa: D102
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise yaml.constructor.ConstructorError(
                    None, None, "merge keys (<<) are refused (unbounded expansion)",
                    key_node.start_mark)
        super().flatten_mapping(node)


def _unknown_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_LenientLoader.add_multi_constructor("!", _unknown_tag)
_LenientLoader.add_multi_constructor("tag:", _unknown_tag)


def _bounded(obj: Any, budget: int = MAX_NODES) -> None:
    """Raise if walking ``obj`` with every alias expanded visits more than ``budget`` nodes."""
    stack, n = [obj], 0
    while stack:
        o = stack.pop()
        n += 1
        if n > budget:
            raise ReportError(f"expands to more than {budget} nodes (anchors/aliases bomb?)")
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set)):
            stack.extend(o)


def _prec(p: Any) -> str | None:
    if isinstance(p, str) and p.strip().lower() not in ("auto", ""):
        return p.strip()
    return None


def _layer(lc: dict[str, Any]) -> dict[str, Any]:
    p = lc.get("Precision")
    d: dict[str, Any] = {}
    if isinstance(p, dict):
        d["precision_keys"] = sorted(str(k) for k in p)
        for k in ("weight", "bias", "result", "table", "accum", "scale", "exp_table", "inv_table"):
            if _prec(p.get(k)):
                d[k] = _prec(p[k])
        d["has_weights"] = "weight" in p
    elif _prec(p):
        d.update(weight=_prec(p), bias=_prec(p), result=_prec(p))
        d["has_weights"] = None  # one precision for all: cannot tell
    if lc.get("ReuseFactor") is not None:
        rf = num(lc.get("ReuseFactor"))
        if rf is not None and rf >= 1:
            d["reuse_factor"] = int(rf)
    if lc.get("Strategy"):
        d["strategy"] = str(lc["Strategy"]).capitalize()
    if lc.get("TableSize") is not None:
        d["table_size"] = num(lc.get("TableSize"))
    if lc.get("Implementation"):
        d["implementation"] = str(lc["Implementation"]).lower()
    if lc.get("ConvImplementation"):
        d["conv_implementation"] = str(lc["ConvImplementation"])
        d["has_weights"] = True
    return d


def parse_hls4ml_config(path: str | Path) -> dict[str, Any]:
    """Project-wide settings of an ``hls4ml_config.yml`` plus ``layers``: per-layer overrides.

    Keys: ``cfg_backend, cfg_part, cfg_io_type, cfg_clock, cfg_project, cfg_strategy,
    cfg_reuse, cfg_precision`` (model default), ``cfg_weight_precision``, ``cfg_input_shapes``,
    ``cfg_layer_overrides`` (bool), ``cfg_layer_rf``/``cfg_layer_weight_prec``/
    ``cfg_layer_strategy`` (the distinct per-layer values) and ``layers`` (name -> settings).
    """
    path = Path(path)
    try:
        cfg = yaml.load(read_text(path, MAX_BYTES), Loader=_LenientLoader)  # noqa: S506 - SafeLoader
    except yaml.YAMLError as exc:
        raise ReportError(f"{show(path)}: not valid YAML ({str(exc)[:300]})") from exc
    except RecursionError as exc:
        raise ReportError(f"{show(path)}: YAML nested too deeply") from exc
    except (ValueError, TypeError, OverflowError) as exc:  # odd scalars (dates, huge ints)
        raise ReportError(f"{show(path)}: unreadable YAML value ({exc})") from exc
    try:
        _bounded(cfg)
    except ReportError as exc:
        raise ReportError(f"{show(path)}: {exc}") from None
    if not isinstance(cfg, dict):
        raise ReportError(f"{show(path)}: not an hls4ml configuration mapping")
    hls = cfg.get("HLSConfig") if isinstance(cfg.get("HLSConfig"), dict) else {}
    model = hls.get("Model") if isinstance(hls.get("Model"), dict) else {}
    prec = model.get("Precision")
    part = cfg.get("Part") or cfg.get("XilinxPart")
    rf = num(model.get("ReuseFactor"))
    shapes = cfg.get("InputShapes")
    out: dict[str, Any] = {
        "cfg_backend": str(cfg["Backend"]) if cfg.get("Backend") else None,
        "cfg_part": str(part).lower() if part else None,
        "cfg_io_type": str(cfg["IOType"]) if cfg.get("IOType") else None,
        "cfg_clock": num(cfg.get("ClockPeriod")),
        "cfg_project": str(cfg["ProjectName"]) if cfg.get("ProjectName") else None,
        "cfg_strategy": str(model["Strategy"]).capitalize() if model.get("Strategy") else None,
        "cfg_reuse": int(rf) if rf is not None and rf >= 1 else None,
        "cfg_precision": _prec(prec) or (_prec(prec.get("default")) or _prec(prec.get("weight"))
                                         or _prec(prec.get("result"))
                                         if isinstance(prec, dict) else None),
        "cfg_weight_precision": _prec(prec) or (_prec(prec.get("weight")) or
                                                _prec(prec.get("default"))
                                                if isinstance(prec, dict) else None),
        "cfg_input_shapes": {str(k): [int(x) for x in v if isinstance(x, int)]
                             for k, v in shapes.items() if isinstance(v, list)}
        if isinstance(shapes, dict) else None,
    }
    layers: dict[str, dict[str, Any]] = {}
    names = hls.get("LayerName")
    if isinstance(names, dict):
        for name, lc in names.items():
            if isinstance(lc, dict):
                layers[str(name)] = _layer(lc)
    out["layers"] = layers
    rfs = {d["reuse_factor"] for d in layers.values() if "reuse_factor" in d}
    ws = {d["weight"] for d in layers.values() if d.get("has_weights") is not False
          and "weight" in d}
    st = {d["strategy"] for d in layers.values() if "strategy" in d}
    out["cfg_layer_overrides"] = bool(rfs or ws or st)
    out["cfg_layer_rf"] = sorted(rfs)
    out["cfg_layer_weight_prec"] = sorted(ws)
    out["cfg_layer_strategy"] = sorted(st)
    return out


register(Parser(
    name="hls4ml_config", kind="config", suffixes=("hls4ml_config.yml", "hls4ml_config.yaml"),
    matches=lambda path, head: True, parse=parse_hls4ml_config, max_bytes=MAX_BYTES,
))
