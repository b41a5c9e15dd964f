"""``LayerSpec``: the hardware-facing description of one hls4ml layer (no torch in here)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from connas4ml_torch.errors import ConfigError
from connas4ml_torch.hardware.config import HLSConfig

__all__ = ["LayerSpec", "LAYER_TYPES", "WEIGHT_LAYERS", "COPY_LAYERS", "ACTIVATIONS", "TABLE_ACTIVATIONS"]

# hls4ml layer class names the hardware model knows (hls4ml/model/layers.py)
LAYER_TYPES = ("Dense", "Conv1D", "Conv2D", "Pooling1D", "Pooling2D", "GlobalPooling1D",
               "GlobalPooling2D", "Activation", "Softmax", "BatchNormalization", "Merge",
               "ZeroPadding1D", "ZeroPadding2D", "Resize")
WEIGHT_LAYERS = ("Dense", "Conv1D", "Conv2D")
COPY_LAYERS = ("ZeroPadding1D", "ZeroPadding2D", "Resize")
# Activation names (hls4ml's ``activation`` attribute) and which of them read a lookup table
ACTIVATIONS = ("linear", "relu", "leaky_relu", "relu6", "elu", "selu", "prelu", "sigmoid",
               "hard_sigmoid", "hard_tanh", "tanh", "softplus", "softsign", "softmax", "binary_tanh",
               "ternary_tanh")
TABLE_ACTIVATIONS = ("sigmoid", "tanh", "elu", "selu", "softplus", "softsign", "softmax")
_DIMS = {"Dense": (0,), "Conv1D": (1,), "Conv2D": (2,), "Pooling1D": (1,), "Pooling2D": (2,),
         "GlobalPooling1D": (0, 1), "GlobalPooling2D": (0, 2), "Activation": None, "Softmax": None,
         "BatchNormalization": None, "Merge": None, "ZeroPadding1D": None, "ZeroPadding2D": None,
         "Resize": None}


@dataclass(frozen=True)
class LayerSpec:
    """One layer as the HLS tool sees it: shape, precisions, build settings and weight statistics.

    Weight layers (``Dense``, ``Conv1D``, ``Conv2D``): ``n_in``/``n_out`` are input/output features
    for ``Dense`` and channels/filters for convs; ``kernel`` and ``out_size`` (output length, or
    height and width) are empty for ``Dense``. Other layers: ``n_in`` = ``n_out`` = channels
    (features of one pixel), ``out_size`` = output pixels (empty for a flat vector), ``kernel`` =
    pool size for ``Pooling1D/2D`` and the input's spatial size for ``GlobalPooling1D/2D``.
    ``ZeroPadding1D/2D`` and ``Resize`` (nearest upsampling) copy their input: ``out_size`` is
    their output pixels.
    ``activation`` names the function of an ``Activation`` (``relu``, ``sigmoid`` ...), the
    operation of a ``Merge`` (``add``, ``concatenate`` ...) or of a pooling (``max``/``average``).
    Bits are total widths of ``ap_fixed`` types; ``tool_version`` may be ``None`` when unknown.

    Weight statistics (optional, from the actual weights; see
    :func:`connas4ml_torch.hardware.analytic.primitives.weight_stats`): ``n_nonzero_weights``
    after quantization, ``csd_digits`` = total non-zero canonical-signed-digit terms of those
    weights. Under the Latency strategy hls4ml bakes the weights in as constants, so zero weights
    cost nothing and a product costs about its CSD terms; ``None`` means unknown (the model then
    uses the expectation for dense uniform weights of ``weight_bits``).
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
    # ---- optional fields (appended: positional order of the fields above is unchanged) -------
    activation: str | None = None
    n_nonzero_weights: int | None = None
    csd_digits: float | None = None
    accum_bits: int | None = None
    table_size: int = 1024
    table_bits: int = 18
    parallelization: int = 1

    def __post_init__(self) -> None:
        if self.layer_type not in LAYER_TYPES:
            raise ConfigError(f"LayerSpec: layer_type {self.layer_type!r} not in {LAYER_TYPES}")
        for name in ("n_in", "n_out", "weight_bits", "input_bits", "reuse_factor", "table_size",
                     "table_bits", "parallelization"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"LayerSpec: {name} must be a positive int, got {v!r}")
        for name in ("result_bits", "accum_bits"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ConfigError(f"LayerSpec: {name} must be None or a positive int, got {v!r}")
        object.__setattr__(self, "kernel", tuple(int(k) for k in self.kernel))
        object.__setattr__(self, "out_size", tuple(int(k) for k in self.out_size))
        if any(k < 1 for k in (*self.kernel, *self.out_size)):
            raise ConfigError(f"LayerSpec: kernel and out_size must be positive, got "
                             f"kernel={self.kernel} out_size={self.out_size}")
        dims = _DIMS[self.layer_type]
        if self.layer_type in WEIGHT_LAYERS or self.layer_type in ("Pooling1D", "Pooling2D"):
            d = dims[0]
            if len(self.kernel) != d or (len(self.out_size) != d and self.layer_type in WEIGHT_LAYERS):
                raise ConfigError(
                    f"LayerSpec: {self.layer_type} needs {d}-d kernel and out_size, "
                    f"got kernel={self.kernel} out_size={self.out_size}")
        elif dims is not None and len(self.kernel) not in dims:
            raise ConfigError(f"LayerSpec: {self.layer_type} kernel (the pooled input size) must "
                             f"have {' or '.join(map(str, dims))} dims, got {self.kernel}")
        elif dims is None and self.kernel:
            raise ConfigError(f"LayerSpec: {self.layer_type} has no kernel, got {self.kernel}")
        if self.n_nonzero_weights is not None:
            nz = self.n_nonzero_weights
            if not isinstance(nz, int) or isinstance(nz, bool) or not 0 <= nz <= self.n_weights:
                raise ConfigError(f"LayerSpec: n_nonzero_weights must be an int in "
                                 f"[0, {self.n_weights}], got {nz!r}")
        if self.csd_digits is not None and not (isinstance(self.csd_digits, (int, float))
                                                and self.csd_digits >= 0):
            raise ConfigError(f"LayerSpec: csd_digits must be None or >= 0, got {self.csd_digits!r}")
        if self.activation is not None:
            object.__setattr__(self, "activation", str(self.activation).lower())

    # ---- derived quantities the hardware model is built from ---------------------------------
    @property
    def n_weights(self) -> int:
        """Weights of a Dense/Conv layer (``n_in*n_out*prod(kernel)``); 0 for other layers."""
        if self.layer_type not in WEIGHT_LAYERS:
            return 0
        return self.n_in * self.n_out * math.prod(self.kernel)

    @property
    def n_pixels(self) -> int:
        """Output positions: 1 for Dense and flat vectors."""
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
