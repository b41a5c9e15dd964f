"""Modules without arithmetic, kept as they are: ``nn.Flatten`` (channel-major, as hls4ml's
``Flatten``/``Reshape``), ``nn.Dropout`` (the identity at inference) and ``nn.Identity``.

``nn.Unflatten`` has no verified hls4ml mapping and is refused at ``searchable()`` time.
"""

from __future__ import annotations

from torch import nn

from connas4ml_torch.kinds.base import LayerKind, register


class Flatten(LayerKind):
    name = "Flatten"
    torch_types = (nn.Flatten,)
    onnx_ops = ("Flatten", "Reshape", "Transpose")
    grid_ops = ("flatten",)


class Dropout(LayerKind):
    name = "Dropout"
    torch_types = (nn.Dropout,)
    grid_ops = ("dropout",)


class Identity(LayerKind):
    name = "Identity"
    torch_types = (nn.Identity,)
    onnx_ops = ("Identity",)


class Unflatten(LayerKind):
    name = "Unflatten"
    role = "refused"
    torch_types = (nn.Unflatten,)

    def refuse(self, name: str, module: nn.Module) -> str:
        return ("nn.Unflatten has no verified hls4ml mapping. Fix: give the network its input in "
                "the shape the first layer needs")


for _k in (Flatten(), Dropout(), Identity(), Unflatten()):
    register(_k)
