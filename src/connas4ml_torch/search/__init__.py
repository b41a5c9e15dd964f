"""Search engine: cost tables, budgets (Lagrangian), the search loop, discretization with repair."""

from connas4ml_torch.search.cost import RESOURCES, CostTables
from connas4ml_torch.search.search import InfeasibleBudgetError, Search
from connas4ml_torch.search.select import Repair, Selection
from connas4ml_torch.search.settings import SAMPLING_MODES, SEARCH_SAMPLING, SearchSettings

__all__ = ["Search", "SearchSettings", "Selection", "CostTables", "RESOURCES",
           "InfeasibleBudgetError", "Repair", "SAMPLING_MODES", "SEARCH_SAMPLING"]
