"""Hardware side: HLS settings, FPGA parts, layer descriptions, report readers, the resource surrogate.

Knows layers and HLS configurations, never torch modules (DESIGN.md §1).
"""

from connas4ml_torch.hardware.config import HLSConfig

__all__ = ["HLSConfig"]
