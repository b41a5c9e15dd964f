"""Search engine: cost tables, budgets (Lagrangian), discretization with repair, Pareto sweeps."""

from connas4ml_torch.search.cost import RESOURCES, CostTables
from connas4ml_torch.search.search import InfeasibleBudgetError, Repair, Search

__all__ = ["Search", "CostTables", "RESOURCES", "InfeasibleBudgetError", "Repair", "pareto_sweep"]


def __getattr__(name):
    if name == "pareto_sweep":
        from connas4ml_torch.search.sweep import pareto_sweep

        return pareto_sweep
    raise AttributeError(name)
