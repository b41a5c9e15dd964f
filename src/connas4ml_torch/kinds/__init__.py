"""The layer-kind registry: one module per kind of layer, everything about that kind in it.

``kind_of(module)`` answers for any float, Brevitas or searchable module; every other part of the
library asks here instead of naming layer classes. How to add a kind: docs/layer_kinds.md.
"""

from connas4ml_torch.kinds.base import (
    ARCH_PREFIX,
    SAMPLED_IN_AUTO,
    ArchControl,
    DeriveContext,
    LayerKind,
    Searchable,
    SpecContext,
    choice_argmax,
    kind_named,
    kind_of,
    kinds,
    register,
    require_kind,
    searchable_kind,
    supported_names,
    unregister,
)

__all__ = [
    "ARCH_PREFIX", "SAMPLED_IN_AUTO", "ArchControl", "DeriveContext", "LayerKind", "Searchable",
    "SpecContext",
    "choice_argmax", "kind_named", "kind_of", "kinds", "register", "require_kind",
    "searchable_kind", "supported_names", "unregister",
]
