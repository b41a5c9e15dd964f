"""BatchNorm: ``nn.BatchNorm1d/2d`` right after a Linear/Conv, searched with it and folded into it.

Users train with BatchNorm, and the search changes the widths and bits of the layer under it, so
it is folded with quantization awareness inside the supernet (``SearchableWeight.fold``): the
weight layer quantizes ``W * gamma / sigma`` and the folded bias, with the batch statistics in
training (the running ones are updated as BatchNorm updates them) and the running statistics in
eval mode. Its statistics are per channel, so a narrower width keeps the first channels' ones.
``derive`` folds the same way and replaces the BatchNorm by ``nn.Identity``: the derived model is
a plain QuantLinear/QuantConv with folded weights, equal to the one-hot supernet in eval mode, and
exported like any other (hls4ml never sees a float BatchNorm).

A BatchNorm not directly after a Linear/Conv (after a ReLU, a sum) is refused at
``searchable()``, naming it. In a Brevitas model given to the export a float BatchNorm is refused
(hls4ml would make it a float scale): ``fold_batchnorm`` folds it into the layer before it.
(torch.fx's fuser and ``torch.nn.utils.fusion.fuse_linear_bn_weights`` need a traceable model and
eval-mode modules as separate arguments; ``fold_batchnorm`` finds the pairs in the model as
written, including custom ``forward`` code, and uses ``torch.nn.utils.fusion`` for the
arithmetic.)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights

from connas4ml_torch.errors import ExportError, UnsupportedLayerError
from connas4ml_torch.kinds.base import ArchControl, LayerKind, Searchable, register

__all__ = ["fold_batchnorm", "FOLD_FIX", "SearchableBatchNorm"]

_LINEAR = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)  # Brevitas QuantLinear/QuantConv subclass these


def _set(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)


def _pairs_from_sequentials(model: nn.Module) -> tuple[list[tuple[str, str]], list[str]]:
    pairs, lonely = [], []
    for name, m in model.named_modules():
        if not isinstance(m, nn.modules.batchnorm._BatchNorm):
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        if isinstance(parent, nn.Sequential):
            keys = list(parent._modules)
            i = keys.index(attr)
            if i > 0 and isinstance(parent._modules[keys[i - 1]], _LINEAR):
                prev = f"{parent_name}.{keys[i - 1]}" if parent_name else keys[i - 1]
                pairs.append((prev, name))
                continue
        lonely.append(name)
    return pairs, lonely


def _pairs_from_trace(model: nn.Module, example_input: Tensor) -> tuple[list[tuple[str, str]], list[str]]:
    names = {id(m): n for n, m in model.named_modules()}
    produced: dict[int, tuple[str, Tensor]] = {}  # keeps outputs alive so ids are not reused
    pairs, lonely = [], []
    handles = []

    def lin_hook(m: nn.Module, args: tuple, out: Tensor) -> None:
        o = out.value if hasattr(out, "value") else out
        produced[id(o)] = (names[id(m)], o)

    def bn_pre(m: nn.Module, args: tuple) -> None:
        src = produced.get(id(args[0]))
        if src is not None and src[1] is args[0]:
            pairs.append((src[0], names[id(m)]))
        else:
            lonely.append(names[id(m)])

    for m in model.modules():
        if isinstance(m, _LINEAR):
            handles.append(m.register_forward_hook(lin_hook))
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            handles.append(m.register_forward_pre_hook(bn_pre))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return pairs, lonely


def fold_batchnorm(model: nn.Module, example_input: Tensor | None = None) -> nn.Module:
    """Fold every BatchNorm1d/2d into the Linear/Conv that feeds it, in place; returns ``model``.

    Uses the BatchNorm's running statistics (eval semantics) and replaces it by ``nn.Identity``.
    A layer without a bias gets one (a Brevitas layer also needs a bias quantizer then; the export
    checks say so). Without ``example_input`` only pairs inside ``nn.Sequential`` are found; with
    it, a forward pass finds BatchNorms fed directly by a Linear/Conv anywhere in custom
    ``forward`` code. A BatchNorm not directly after a Linear/Conv raises :class:`ExportError`.
    Quantizer thresholds are not changed: fine-tune with quantization awareness after folding.
    """
    if example_input is None:
        pairs, lonely = _pairs_from_sequentials(model)
        hint = (" Pass example_input=... so that the pairs are found by running the model, or put "
                "the layer and its BatchNorm in one nn.Sequential.")
    else:
        pairs, lonely = _pairs_from_trace(model, example_input)
        hint = " Only a BatchNorm applied directly to a Linear/Conv output can be folded."
    if lonely:
        raise ExportError(
            f"cannot fold BatchNorm module(s) {lonely}: no Linear/Conv directly before them was "
            f"found.{hint}"
        )
    for lin_name, bn_name in pairs:
        lin = model.get_submodule(lin_name)
        bn = model.get_submodule(bn_name)
        if bn.running_mean is None or bn.running_var is None:
            raise ExportError(
                f"BatchNorm {bn_name!r} has track_running_stats=False; it has no statistics to fold."
            )
        weight = lin.weight
        bias = lin.bias if lin.bias is not None else torch.zeros(
            weight.shape[0], dtype=weight.dtype, device=weight.device)
        gamma = bn.weight if bn.affine else torch.ones_like(bn.running_mean)
        beta = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
        with torch.no_grad():
            if isinstance(lin, nn.Linear):
                w, b = fuse_linear_bn_weights(weight, bias, bn.running_mean, bn.running_var,
                                              bn.eps, gamma, beta)
            else:
                w, b = fuse_conv_bn_weights(weight, bias, bn.running_mean, bn.running_var,
                                            bn.eps, gamma, beta)
            lin.weight.copy_(w)
            if lin.bias is None:
                lin.bias = nn.Parameter(b.detach().clone())
            else:
                lin.bias.copy_(b)
        _set(model, bn_name, nn.Identity())
    return model


FOLD_FIX = ("fold it into the preceding Linear/Conv with connas4ml_torch.export.fold_batchnorm(model) "
            "before quantization-aware fine-tuning, or keep BatchNorm out of the network")


class SearchableBatchNorm(Searchable):
    """The user's BatchNorm in the supernet; the weight layer before it applies it (folded).

    Until ``Supernet.analyse`` links it to that layer (the first traced pass) it is a plain
    float BatchNorm; after, the identity (the layer's output is already normalized).
    """

    kind = "BatchNorm"

    def __init__(self, name: str, ctl: ArchControl, bn: nn.Module):
        super().__init__(name, ctl)
        self.bn = bn
        self.folded_into: str | None = None

    def choice_values(self) -> dict[str, tuple[int, ...]]:
        return {}

    def forward(self, x: Tensor) -> Tensor:
        if self.folded_into is not None:
            return x
        with torch.no_grad():  # the statistics the folded thresholds start from
            dims = [0] + list(range(2, x.dim()))
            self.seen = (x.mean(dims), x.var(dims, unbiased=False))
        return self.bn(x)


class BatchNorm(LayerKind):
    name = "BatchNorm"
    role = "fold"
    torch_types = (nn.BatchNorm1d, nn.BatchNorm2d)
    searchable_type = SearchableBatchNorm

    def to_searchable(self, name: str, module: nn.Module, space: Any, ctl: ArchControl):
        if not module.track_running_stats or module.running_mean is None:
            raise UnsupportedLayerError(
                f"searchable(): module {name!r} ({type(module).__name__}) has "
                "track_running_stats=False: it has no statistics to fold into the layer before "
                "it for the FPGA. Fix: keep track_running_stats=True (the default)")
        return SearchableBatchNorm(name, ctl, module)

    def check_traced(self, name: str, module: nn.Module, node: Any) -> None:
        if node.src is None:  # analyse: not the direct output of a weight layer
            raise UnsupportedLayerError(
                f"searchable(): module {name!r} ({type(module.bn).__name__}) does not directly "
                "follow a Linear/Conv; a BatchNorm is folded into the layer before it for the "
                "FPGA, so nothing may come between them. Fix: apply it right after the "
                "nn.Linear/nn.Conv output (before the activation), or remove it")

    def derive(self, mod: nn.Module, choices: dict[str, dict[str, int]], ctx: Any = None):
        return nn.Identity()  # folded into the derived weight layer before it

    def check_export(self, name: str, module: nn.Module) -> None:
        raise ExportError(f"module {name!r} ({type(module).__name__}) is a float BatchNorm: hls4ml "
                          "would export it as a float scale that breaks bit-exactness silently. "
                          f"Fix: {FOLD_FIX}.")


register(BatchNorm())
