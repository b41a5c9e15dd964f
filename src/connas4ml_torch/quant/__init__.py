"""Fixed-point (power-of-two scale) quantizers: the Brevitas definitions and a fused fast path.

Every quantizer in this library is a fixed-point grid: ``scale = 2**ceil(t) / 2**(bits - signed)``
where ``t`` is a learned log2 threshold, values rounded half-to-even and saturated. This is what
hls4ml's ``ap_fixed`` represents exactly, which is why the export is bit-exact (docs/design.md,
"Export"): float (non power-of-two) scales become ``ApplyAlpha`` layers that hls4ml silently
truncates. ``grids.py``: the Brevitas quantizer classes used by the derived, exported model and
the grid arithmetic; ``fused.py``: the same arithmetic in a few fused torch ops on the supernet's
hot path.
"""

from connas4ml_torch.quant import fused as _fused
from connas4ml_torch.quant.fused import (
    compile_quantizers,
    fake_quant,
    fused_fake_quant,
    mixed_fake_quant,
)
from connas4ml_torch.quant.grids import (
    FIX,
    THRESHOLD_FLOOR,
    FixedPointAct,
    FixedPointBias,
    FixedPointUnsignedAct,
    FixedPointWeight,
    QuantGrid,
    fixed_point_scale,
    float_scaled,
    int_range,
    log2_threshold_for,
    log2_threshold_of,
    refuse_float_scale,
)

_COMPILED = _fused._COMPILED  # the compiled-kernel switch (tests read it)

__all__ = [
    "FixedPointWeight", "FixedPointBias", "FixedPointAct", "FixedPointUnsignedAct", "QuantGrid",
    "compile_quantizers", "fake_quant", "fused_fake_quant", "mixed_fake_quant", "int_range",
    "fixed_point_scale", "log2_threshold_for", "log2_threshold_of", "THRESHOLD_FLOOR", "FIX",
    "float_scaled", "refuse_float_scale",
]
