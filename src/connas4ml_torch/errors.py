"""Every error this library raises on purpose derives from :class:`Connas4mlError`.

Each class also derives from the built-in it always was (``ValueError`` for bad input,
``RuntimeError`` for a missing tool or a locked folder), so ``except ValueError`` in user code
keeps working. Catch ``Connas4mlError`` to catch all of them. The messages name the file, module,
key or value at fault and say what to do (docs/design.md, "Errors").
"""

from __future__ import annotations

__all__ = [
    "Connas4mlError",
    "ConfigError",
    "UnsupportedLayerError",
    "UnknownResourceError",
    "UnknownPartError",
    "BudgetError",
    "InfeasibleBudgetError",
    "ReportError",
    "ExportError",
    "BitExactnessError",
    "ToolNotFoundError",
    "SweepLockedError",
    "UnsafeFileError",
    "Connas4mlWarning",
    "OutOfDomainWarning",
    "ReportWarning",
    "BitExactnessWarning",
]


class Connas4mlError(Exception):
    """Base of every error connas4ml raises on purpose."""


class ConfigError(Connas4mlError, ValueError):
    """A configuration (YAML, dict or keyword arguments) is invalid: names the key and the fix."""


class UnsupportedLayerError(Connas4mlError, ValueError):
    """A module of the user's model has no layer kind in the registry (names module and class)."""


class UnknownResourceError(Connas4mlError, ValueError):
    """A resource name (budget, weight, target) is not one the library knows."""


class UnknownPartError(Connas4mlError, ValueError):
    """An FPGA part name the catalogue does not know (the message lists the known devices)."""


class BudgetError(Connas4mlError, ValueError):
    """A budget value is malformed or impossible (negative, NaN, more than the part has)."""


class InfeasibleBudgetError(BudgetError):
    """No network of the search space meets the budgets (by the cost model's prediction)."""


class ReportError(Connas4mlError, ValueError):
    """A single report file could not be parsed (names the file and the reason)."""


class ExportError(Connas4mlError, ValueError):
    """The model cannot be exported bit-exactly; the message names the module and the fix."""


class BitExactnessError(ExportError):
    """The hls4ml C simulation differs from PyTorch and ``strict=True`` was asked for."""


class ToolNotFoundError(Connas4mlError, RuntimeError):
    """A vendor tool (Vitis HLS, Vivado) that a step needs is neither configured nor on PATH."""


class SweepLockedError(Connas4mlError, RuntimeError):
    """Another live sweep holds the output folder's lock."""


class UnsafeFileError(Connas4mlError, ValueError):
    """A file asks for something the library refuses to load (code to run, unknown types)."""


class Connas4mlWarning(UserWarning):
    """Base of connas4ml's warnings."""


class OutOfDomainWarning(Connas4mlWarning):
    """A prediction was asked for outside the domain the cost model was fitted on."""


class ReportWarning(Connas4mlWarning):
    """A file was skipped during a report scan (the message names the file and the reason)."""


class BitExactnessWarning(Connas4mlWarning):
    """The hls4ml C simulation differs from the PyTorch model on the example inputs."""
