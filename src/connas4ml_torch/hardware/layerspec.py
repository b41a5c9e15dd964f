"""``LayerSpec``: the hardware-facing description of one hls4ml layer (no torch in here)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from connas4ml_torch.hardware.config import HLSConfig

__all__ = ["LayerSpec", "LAYER_TYPES"]

LAYER_TYPES = ("Dense", "Conv1D", "Conv2D")


@dataclass(frozen=True)
class LayerSpec:
    """One layer as the HLS tool sees it: shape, precisions and build settings.

    ``n_in``/``n_out`` are input/output features for ``Dense`` and channels/filters for convs;
    ``kernel`` and ``out_size`` (output length, or height and width) are empty for ``Dense``.
    Bits are total widths of ``ap_fixed`` types; ``tool_version`` may be ``None`` when unknown.
    """

    layer_type: str
    n_in: int
    n_out: int
    kernel: tuple[int, ...] = ()
    out_size: tuple[int, ...] = ()
    weight_bits: int = 16
    input_bits: int = 16
    result_bits: int | None = None
    reuse_factor: int = 1
    strategy: str = "Latency"
    io_type: str = "io_parallel"
    backend: str = "Vitis"
    part: str = ""
    clock_period: float = 5.0
    tool_version: str | None = None

    def __post_init__(self) -> None:
        if self.layer_type not in LAYER_TYPES:
            raise ValueError(f"LayerSpec: layer_type {self.layer_type!r} not in {LAYER_TYPES}")
        for name in ("n_in", "n_out", "weight_bits", "input_bits", "reuse_factor"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"LayerSpec: {name} must be a positive int, got {v!r}")
        object.__setattr__(self, "kernel", tuple(int(k) for k in self.kernel))
        object.__setattr__(self, "out_size", tuple(int(k) for k in self.out_size))
        dims = {"Dense": 0, "Conv1D": 1, "Conv2D": 2}[self.layer_type]
        if len(self.kernel) != dims or len(self.out_size) != dims:
            raise ValueError(
                f"LayerSpec: {self.layer_type} needs {dims}-d kernel and out_size, "
                f"got kernel={self.kernel} out_size={self.out_size}"
            )

    # ---- derived quantities the surrogate's features are built from -------------------------
    @property
    def n_weights(self) -> int:
        return self.n_in * self.n_out * math.prod(self.kernel)

    @property
    def n_pixels(self) -> int:
        """Output positions: 1 for Dense."""
        return math.prod(self.out_size)

    @property
    def mults_per_initiation(self) -> float:
        """Multiplications the layer performs in parallel: ``n_in*n_out*k / RF``."""
        return self.n_weights / self.reuse_factor

    @property
    def bit_product(self) -> int:
        return self.weight_bits * self.input_bits

    def with_hls(self, hls: HLSConfig, name: str | None = None) -> LayerSpec:
        """This layer under the build settings of ``hls`` (per-layer overrides by ``name``)."""
        layer = hls.for_layer(name) if name else {"ReuseFactor": hls.reuse_factor, "Strategy": hls.strategy}
        return replace(
            self,
            reuse_factor=int(layer["ReuseFactor"]),
            strategy=str(layer["Strategy"]),
            io_type=hls.io_type,
            backend=hls.backend,
            part=hls.part,
            clock_period=hls.clock_period,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
