"""Generated data for the benchmark tasks (no downloads): jet tagging and calorimeter regression.

* :mod:`.jets` — hls4ml-style jet high-level features (Pythia 8 + fastjet, 16 features, 5 classes);
  a small sample ships with the package (``load_jets()``).
* :mod:`.calo` — a parametric (Grindhammer–Peters) calorimeter shower simulator.

Pythia and fastjet (the ``datasets`` extra) are imported only when jets are generated.
"""

from connas4ml_torch.datasets.calo import CaloData, generate_showers, load_calo
from connas4ml_torch.datasets.jet_features import FEATURE_NAMES
from connas4ml_torch.datasets.jets import (
    CLASS_NAMES,
    JetData,
    generate_jets,
    load_jets,
    standardize,
    train_val_test_split,
)

__all__ = [
    "CLASS_NAMES",
    "FEATURE_NAMES",
    "CaloData",
    "JetData",
    "generate_jets",
    "generate_showers",
    "load_calo",
    "load_jets",
    "standardize",
    "train_val_test_split",
]
