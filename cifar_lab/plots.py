"""The book's figures: training curves, confusion matrix, per-class accuracy, class and augmentation grids.

Plain matplotlib, one function per figure; each returns the `Figure` so a notebook can `plt.show()` it or
save it. Inputs are what the engine produces (`RunResult.history` rows or a run's `metrics.csv`, the
evaluation's confusion matrix and per-class accuracy) and uint8 image tensors as the data loaders hold them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def history_frame(history):
    """A pandas DataFrame of per-epoch rows from a list of dicts, a DataFrame, or a metrics.csv path."""
    import pandas as pd

    if isinstance(history, (str, Path)):
        return pd.read_csv(history)
    if isinstance(history, pd.DataFrame):
        return history
    return pd.DataFrame(list(history))


def training_curves(history, title: str = "") -> plt.Figure:
    """Loss and accuracy per epoch (train and test), and the learning rate, side by side."""
    frame = history_frame(history)
    if frame.empty:
        raise ValueError("no epochs to plot: the history is empty")
    epochs = frame["epoch"]
    has_lr = "lr" in frame
    fig, axes = plt.subplots(1, 3 if has_lr else 2, figsize=(13 if has_lr else 9, 3.4))
    marker = "o" if len(frame) <= 20 else None  # short smoke runs: show the points
    for column, label in (("train_loss", "train"), ("test_loss", "test")):
        if column in frame:
            axes[0].plot(epochs, frame[column], marker=marker, label=label)
    axes[0].set(title="loss", xlabel="epoch")
    for column, label in (("train_acc", "train"), ("test_acc", "test")):
        if column in frame:
            axes[1].plot(epochs, 100 * frame[column], marker=marker, label=label)
    axes[1].set(title="top-1 accuracy (%)", xlabel="epoch")
    for ax in axes[:2]:
        ax.legend()
        ax.grid(alpha=0.3)
    if has_lr:
        axes[2].plot(epochs, frame["lr"], marker=marker, color="tab:green")
        axes[2].set(title="learning rate (end of epoch)", xlabel="epoch")
        axes[2].grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix(confusion, class_names: Sequence[str], normalize: bool = True,
                     title: str = "confusion matrix") -> plt.Figure:
    """Heatmap of true (rows) against predicted (columns) classes; rows normalised to fractions by default."""
    counts = np.asarray(confusion.cpu() if isinstance(confusion, torch.Tensor) else confusion, dtype=np.float64)
    values = counts / np.clip(counts.sum(1, keepdims=True), 1, None) if normalize else counts
    n = len(class_names)
    size = min(12.0, 2.5 + 0.45 * n)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class" if normalize else "count")
    if n <= 20:  # labels and numbers stay legible up to CIFAR-10-sized matrices (and superclasses)
        ax.set_xticks(range(n), class_names, rotation=60, ha="right")
        ax.set_yticks(range(n), class_names)
        for i in range(n):
            for j in range(n):
                if counts[i, j]:
                    text = f"{values[i, j]:.2f}" if normalize else f"{int(counts[i, j])}"
                    ax.text(j, i, text, ha="center", va="center", fontsize=7,
                            color="white" if values[i, j] > 0.6 * values.max() else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return fig


def per_class_accuracy(per_class: Sequence[float], class_names: Sequence[str],
                       title: str = "per-class test accuracy") -> plt.Figure:
    """Horizontal bars, one per class, with the mean as a dashed line."""
    accuracy = 100 * np.asarray(per_class, dtype=np.float64)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.3 * n + 1)))
    ax.barh(range(n), accuracy, color="tab:blue")
    ax.axvline(accuracy.mean(), color="black", linestyle="--", linewidth=1, label=f"mean {accuracy.mean():.1f} %")
    ax.set_yticks(range(n), class_names)
    ax.invert_yaxis()
    ax.set(xlim=(0, 100), xlabel="accuracy (%)", title=title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def _to_hwc(image: torch.Tensor) -> np.ndarray:
    """uint8 [3, H, W] (or float in 0-1) -> a [H, W, 3] array imshow understands."""
    array = image.detach().cpu()
    if array.dtype != torch.uint8:
        array = (array.clamp(0, 1) * 255).round().to(torch.uint8)
    return array.permute(1, 2, 0).numpy()


def class_grid(images: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str], per_class: int = 8,
               seed: int = 0, title: str = "") -> plt.Figure:
    """A row of `per_class` random training images for every class, the class name on the left."""
    generator = torch.Generator().manual_seed(seed)
    labels = labels.cpu()
    n = len(class_names)
    fig, axes = plt.subplots(n, per_class, figsize=(per_class * 0.65 + 1.6, n * 0.65), squeeze=False)
    for row, name in enumerate(class_names):
        members = torch.nonzero(labels == row).flatten()
        chosen = members[torch.randperm(len(members), generator=generator)[:per_class]]
        for col in range(per_class):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col < len(chosen):
                ax.imshow(_to_hwc(images[chosen[col]]), interpolation="nearest")
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout(pad=0.2)
    return fig


def augmentation_grid(originals: torch.Tensor, augmented: Sequence[torch.Tensor],
                      title: str = "the same images, augmented several times") -> plt.Figure:
    """Column 0: the original images; each further column: one augmented draw of the same images."""
    rows = originals.shape[0]
    columns = 1 + len(augmented)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.1), squeeze=False)
    for row in range(rows):
        for col in range(columns):
            ax = axes[row, col]
            source = originals if col == 0 else augmented[col - 1]
            ax.imshow(_to_hwc(source[row]), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_title("original", fontsize=8)
    for col in range(1, columns):
        axes[0, col].set_title(f"draw {col}", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(pad=0.2)
    return fig


def throughput_bars(results: dict[str, float], title: str = "images per second",
                    unit: str = "img/s") -> plt.Figure:
    """Horizontal bars comparing throughputs measured in the same run (label -> value)."""
    labels, values = list(results), [float(v) for v in results.values()]
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(labels) + 1.2))
    bars = ax.barh(range(len(labels)), values, color=["tab:blue", "tab:gray", "tab:orange", "tab:green"][:len(labels)])
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    for bar, value in zip(bars, values):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:,.0f}", va="center", fontsize=8)
    ax.set(xlabel=unit, title=title, xlim=(0, max(values) * 1.2 if values else 1))
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path: Optional[Path]) -> None:
    """Save a figure next to a run's results (PNG, tight bounding box), atomically."""
    from .io import atomic_write

    if path is not None:
        atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=120, bbox_inches="tight"))
