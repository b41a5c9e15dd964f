"""Search space and supernet: ``SearchSpace``, ``searchable(model, space)``, ``Supernet.derive()``."""

from connas4ml_torch.space.derive import DerivedNet
from connas4ml_torch.space.spec import SearchSpace, depth_choice
from connas4ml_torch.space.supernet import Supernet, searchable

__all__ = ["SearchSpace", "Supernet", "searchable", "DerivedNet", "depth_choice"]
