"""PNG plots a person would rather look at than read (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

__all__ = ["plot_front", "plot_breakdown", "plot_probabilities"]


def plot_front(df: pd.DataFrame, cost: str, quality: str, path: str | Path,
               label: str | None = None) -> Path:
    """Accuracy (or any quality) against a resource, the Pareto front joined by a line."""
    path = Path(path)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.scatter(df[cost], df[quality], color="#999999", label="searched networks")
    if "pareto" in df:
        front = df[df["pareto"]].sort_values(cost)
        ax.plot(front[cost], front[quality], "o-", color="#c0392b", label="Pareto front")
    if label and label in df:
        for _, row in df.iterrows():
            ax.annotate(str(row[label]), (row[cost], row[quality]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(f"predicted {cost}")
    ax.set_ylabel(quality)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_breakdown(breakdown: Mapping[str, Mapping[str, float]], budgets: Mapping[str, float],
                   path: str | Path, resources: Sequence[str] = ("LUT", "FF", "DSP", "BRAM_18K")) -> Path:
    """Per-layer predicted resources of the chosen network, stacked, against each budget."""
    path = Path(path)
    res = [r for r in resources if any(v.get(r, 0) > 0 for v in breakdown.values()) or r in budgets]
    fig, axes = plt.subplots(1, len(res), figsize=(3.2 * len(res), 4), squeeze=False)
    for ax, r in zip(axes[0], res):
        bottom = 0.0
        for layer, vals in breakdown.items():
            v = float(vals.get(r, 0.0))
            ax.bar([0], [v], bottom=bottom, label=layer, width=0.6)
            bottom += v
        if r in budgets:
            ax.axhline(budgets[r], color="#c0392b", ls="--", label="budget")
        ax.set_title(r)
        ax.set_xticks([])
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("predicted resources per layer")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_probabilities(history: Sequence[tuple[int, Mapping[str, Sequence[float]]]],
                       values: Mapping[str, Sequence[int]], path: str | Path) -> Path:
    """How each choice's probabilities evolved over the architecture steps."""
    path = Path(path)
    keys = list(values)
    n = len(keys)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    steps = [s for s, _ in history]
    for ax, key in zip(axes.flat, keys):
        for j, val in enumerate(values[key]):
            ax.plot(steps, [probs[key][j] for _, probs in history], label=str(val))
        ax.set_title(key, fontsize=9)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=6, ncol=2)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.supxlabel("training step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
