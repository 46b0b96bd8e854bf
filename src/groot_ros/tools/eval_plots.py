"""PNG figures for eval-dataset: predicted vs ground truth per component, and the ablation comparison.

matplotlib with the Agg backend (files only, no display); imported here only, so the rest of groot_ros
does not need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

VARIANT_STYLE = {
    "normal": {"color": "tab:blue", "linestyle": "-"},
    "state-zero": {"color": "tab:orange", "linestyle": "--"},
    "image-zero": {"color": "tab:green", "linestyle": "--"},
    "hold": {"color": "tab:gray", "linestyle": ":"},
    "untrained": {"color": "tab:red", "linestyle": "-."},
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_component(path: Path, title: str, dim_names: Sequence[str], units: Sequence[str], times: np.ndarray,
                   truth: np.ndarray, predictions: Mapping[str, np.ndarray], boundaries: Sequence[float]) -> Path:
    """One subplot per dimension: ground truth in black, each variant's prediction, chunk starts as dotted lines."""
    plt = _pyplot()
    dims = truth.shape[1]
    fig, axes = plt.subplots(dims, 1, figsize=(10, 1.7 * dims + 0.8), sharex=True, squeeze=False)
    for d, ax in enumerate(axes[:, 0]):
        for b in boundaries:
            ax.axvline(b, color="0.55", linestyle=":", linewidth=1.0)
        ax.plot(times, truth[:, d], color="black", linewidth=1.6, label="ground truth")
        for variant, pred in predictions.items():
            ax.plot(times, pred[:, d], linewidth=1.1, label=variant, **VARIANT_STYLE.get(variant, {}))
        ax.set_ylabel(f"{dim_names[d]}\n[{units[d]}]", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0, 0].set_title(title + "  (dotted: chunk starts)", fontsize=10)
    axes[0, 0].legend(fontsize=7, loc="upper right", ncol=len(predictions) + 1)
    axes[-1, 0].set_xlabel("time [s]")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_ablation(path: Path, components: Sequence[str], variants: Sequence[str],
                  range_mae: Mapping[str, Mapping[str, float]]) -> Path:
    """Grouped bars: MAE as % of the action range per component (and overall), one bar per variant."""
    plt = _pyplot()
    groups = list(components) + ["all"]
    x = np.arange(len(groups))
    width = 0.8 / max(len(variants), 1)
    fig, ax = plt.subplots(figsize=(1.3 * len(groups) + 2, 4))
    for i, variant in enumerate(variants):
        values = [100.0 * range_mae[variant].get(g, np.nan) for g in groups]
        ax.bar(x + (i - (len(variants) - 1) / 2) * width, values, width, label=variant,
               color=VARIANT_STYLE.get(variant, {}).get("color"))
    ax.set_xticks(x, groups, fontsize=8)
    ax.set_ylabel("MAE, % of the action range")
    ax.set_title("ablations: a larger error without an input means the policy relies on it", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def plot_rows(path: Path, per_row: Mapping[str, Sequence[float | None]], executed: int) -> Path:
    """Error vs chunk row index, one line per variant/baseline; the rows a node executes before re-inferring
    (eval's K) are shaded."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, rows in per_row.items():
        ax.plot(np.arange(len(rows)), [np.nan if v is None else 100.0 * v for v in rows], marker=".", label=name,
                **VARIANT_STYLE.get(name, {}))
    ax.axvspan(-0.5, executed - 0.5, color="0.9", zorder=0)
    ax.set_xlabel("row of the chunk (0: the frame it was predicted at)")
    ax.set_ylabel("MAE, % of the action range")
    ax.set_title(f"error per chunk row (shaded: the {executed} rows executed before re-inferring)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
