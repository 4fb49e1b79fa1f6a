"""Evaluation figures for 10 and 100 classes: per-class accuracy, the confusion matrix, and the superclass views.

Inputs are what `cifar_lab.engine.evaluate.evaluate` returns (`per_class`, `confusion`) and the dataset's
`coarse_of_fine` mapping. With 100 classes a labelled 100x100 heatmap is unreadable, so the fine matrix is
drawn without tick labels and the superclass matrix (20x20, fine counts folded together) carries the names.
Each function returns the matplotlib `Figure`.
"""
from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .engine.evaluate import coarse_confusion


def _rows_normalised(confusion) -> np.ndarray:
    counts = np.asarray(torch.as_tensor(confusion).double())
    return counts / np.clip(counts.sum(1, keepdims=True), 1, None)


def per_class_accuracy(per_class: Sequence[float], class_names: Sequence[str], sort: bool = True,
                       title: str = "accuracy per class") -> plt.Figure:
    """Bars, one per class (sorted, worst first, when `sort`); the mean as a dashed line. Vertical bars, with
    names shown only for up to 20 classes plus the five best and worst of larger sets."""
    acc = np.asarray(per_class, dtype=float)
    order = np.argsort(acc) if sort else np.arange(len(acc))
    fig, ax = plt.subplots(figsize=(max(6, min(16, 0.16 * len(acc) + 4)), 3.6))
    ax.bar(np.arange(len(acc)), acc[order], color="tab:blue", width=0.8)
    ax.axhline(acc.mean(), color="black", linestyle="--", linewidth=1, label=f"mean {acc.mean():.3f}")
    if len(acc) <= 20:
        ax.set_xticks(np.arange(len(acc)), [class_names[i] for i in order], rotation=60, ha="right")
    else:
        shown = list(range(5)) + list(range(len(acc) - 5, len(acc)))
        ax.set_xticks(shown, [class_names[order[i]] for i in shown], rotation=60, ha="right", fontsize=7)
    ax.set(ylim=(0, 1.02), ylabel="test accuracy", title=title)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def confusion_matrix(confusion, class_names: Optional[Sequence[str]] = None,
                     title: str = "confusion matrix (rows: true class, normalised)") -> plt.Figure:
    """Row-normalised heatmap; class names on the axes for up to 20 classes."""
    matrix = _rows_normalised(confusion)
    n = matrix.shape[0]
    size = 5.5 if n <= 20 else 7.5
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    if class_names is not None and n <= 20:
        ax.set_xticks(range(n), class_names, rotation=90)
        ax.set_yticks(range(n), class_names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def superclass_confusion(confusion, coarse_of_fine, coarse_names: Sequence[str],
                         title: str = "confusion by superclass (normalised)") -> plt.Figure:
    """The fine confusion matrix folded into superclasses (20x20 for CIFAR-100), named on both axes."""
    folded = coarse_confusion(torch.as_tensor(confusion), torch.as_tensor(coarse_of_fine).cpu())
    return confusion_matrix(folded, coarse_names, title=title)


def superclass_accuracy(confusion, coarse_of_fine, coarse_names: Sequence[str]) -> plt.Figure:
    """Per superclass: fine accuracy (exact class) beside superclass accuracy (any class of the right group).
    The gap is the share of mistakes that stay inside the right group."""
    confusion = torch.as_tensor(confusion).double()
    coarse_of_fine = torch.as_tensor(coarse_of_fine).cpu()
    folded = coarse_confusion(confusion, coarse_of_fine)
    groups = folded.shape[0]
    totals = folded.sum(1).clamp(min=1)
    fine_correct = torch.zeros(groups, dtype=torch.float64).index_add_(0, coarse_of_fine, confusion.diag())
    fine = (fine_correct / totals).numpy()
    coarse = (folded.diag() / totals).numpy()
    x = np.arange(groups)
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * groups + 2), 3.8))
    ax.bar(x - 0.2, fine, width=0.4, label="fine class right")
    ax.bar(x + 0.2, coarse, width=0.4, label="superclass right")
    ax.set_xticks(x, coarse_names, rotation=60, ha="right", fontsize=8)
    ax.set(ylim=(0, 1.02), ylabel="test accuracy", title="accuracy by superclass")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig
