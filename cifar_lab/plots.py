"""The book's figures: training curves, confusion matrices, per-class and superclass accuracy, class and
augmentation grids, class balance, throughput bars. (AST's figures live beside the AST code, in
`cifar_lab.sparse.plots`.)

Plain matplotlib, one function per figure; each returns the `Figure` so a notebook can `plt.show()` it or
save it. Inputs are what the engine produces (`RunResult.history` rows or a run's `metrics.csv`, the
evaluation's confusion matrix and per-class accuracy) and uint8 image tensors as the data loaders hold them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from . import mistakes
from .engine.evaluate import coarse_confusion
from .engine.trainer import RunResult
from .errors import UsageError


def history_frame(history):
    """A pandas DataFrame of per-epoch rows from a list of dicts, a DataFrame, a run (the `RunResult` of
    `engine.train`), a run folder or a metrics.csv path."""

    if isinstance(history, (str, Path)):
        path = Path(history)
        path = path / "metrics.csv" if path.is_dir() else path
        if not path.is_file():
            raise UsageError(f"{path}: no such file; give a run folder (it holds metrics.csv after the first "
                             f"epoch), a metrics.csv or the result of cifar_lab.train")
        return pd.read_csv(path)
    if isinstance(history, pd.DataFrame):
        return history
    if isinstance(history, RunResult):
        history = history.history
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
    # A log scale: the first epoch's test loss of a fresh network can be 100x the later ones, and would
    # flatten the rest of the curve on a linear axis.
    axes[0].set(title="loss (log scale)", xlabel="epoch", yscale="log")
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


def confusion_matrix(confusion, class_names: Optional[Sequence[str]] = None, normalize: bool = True,
                     title: str = "confusion matrix (rows: true class)") -> plt.Figure:
    """Heatmap of true (rows) against predicted (columns) classes; rows normalised to fractions by default.
    Up to 20 classes carry their names and the value of every cell; larger matrices (100 classes) are drawn
    without labels - fold them into superclasses with `superclass_confusion` to read them."""
    counts = np.asarray(torch.as_tensor(confusion).cpu(), dtype=np.float64)
    values = counts / np.clip(counts.sum(1, keepdims=True), 1, None) if normalize else counts
    n = counts.shape[0]
    size = min(12.0, 2.5 + 0.45 * n) if n <= 20 else 7.5
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class" if normalize else "count")
    if class_names is not None and n <= 20:  # labels and numbers stay legible up to 20 classes
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


def run_confusion_matrix(run: RunResult, normalize: bool = True) -> plt.Figure:
    """`confusion_matrix` of a run's last evaluation (the `RunResult` of `engine.train`), with its class names."""
    if not run.evaluation:
        raise UsageError("the run has no evaluation to plot (it stopped before its first epoch ended)")
    return confusion_matrix(run.evaluation["confusion"], run.data.class_names, normalize=normalize)


def run_mistakes(run: RunResult, confusions: int = 4, per_pair: int = 4) -> plt.Figure:
    """`mistakes_grid` of a run (the `RunResult` of `engine.train`): for each of its `confusions` most common
    mistakes, the `per_pair` test images its model got wrong with the most confidence (`mistakes.of_run`)."""
    found = mistakes.of_run(run, confusions, per_pair)
    what = "its most confident mistakes\n(true class → predicted)" if found else "no mistakes on the test split"
    return mistakes_grid(found, per_row=per_pair, title=f"{run.config.model} on {run.config.dataset}: {what}")


def per_class_accuracy(per_class: Sequence[float], class_names: Sequence[str],
                       title: str = "per-class test accuracy", shown: int = 10) -> plt.Figure:
    """Horizontal bars with the mean as a dashed line: every class, in class order, up to 20 classes; for
    larger sets the `shown` worst and `shown` best classes, sorted, so that every name stays legible."""
    accuracy = 100 * np.asarray(per_class, dtype=np.float64)
    mean = accuracy.mean()
    if len(accuracy) <= 20:
        order = np.arange(len(accuracy))
    else:
        ranked = np.argsort(accuracy, kind="stable")
        order = np.concatenate([ranked[:shown], ranked[-shown:]])
        title = f"{title}: the {shown} worst and {shown} best of {len(accuracy)} classes"
    labels = [class_names[i] for i in order]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.3 * len(order) + 1)))
    colors = ["tab:red" if len(accuracy) > 20 and k < shown else "tab:blue" for k in range(len(order))]
    ax.barh(range(len(order)), accuracy[order], color=colors)
    ax.axvline(mean, color="black", linestyle="--", linewidth=1, label=f"mean {mean:.1f} %")
    ax.set_yticks(range(len(order)), labels)
    ax.invert_yaxis()
    ax.set(xlim=(0, 100), xlabel="accuracy (%)", title=title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)   # beside the bars, never on them
    fig.tight_layout()
    return fig


def superclass_confusion(confusion, coarse_of_fine, coarse_names: Sequence[str],
                         title: str = "confusion by superclass (rows: true superclass)") -> plt.Figure:
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
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.08), ncols=2, frameon=False)   # above the bars
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
    # Constrained layout keeps room for the title above the tiles (tight_layout ignores a suptitle).
    fig, axes = plt.subplots(n, per_class, figsize=(per_class * 0.65 + 1.6, n * 0.65 + (0.5 if title else 0)),
                             squeeze=False, layout="constrained")
    fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.02, hspace=0.02)
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
    return fig


def class_balance(labels_by_split: dict[str, torch.Tensor], class_names: Sequence[str],
                  title: str = "") -> plt.Figure:
    """Each class's share of each split (split name -> labels), in percent, beside the share a balanced split
    gives every class (100 / classes): a skewed split shows at a glance."""
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    width = 0.8 / max(1, len(labels_by_split))
    for index, (split, labels) in enumerate(labels_by_split.items()):
        counts = torch.bincount(labels.cpu(), minlength=n).double()
        share = (100 * counts / counts.sum()).numpy()
        ax.bar(np.arange(n) + (index - (len(labels_by_split) - 1) / 2) * width, share, width,
               label=f"{split} ({int(counts.sum()):,} images)")
    ax.axhline(100 / n, color="black", linewidth=0.8, linestyle="--", label=f"balanced: {100 / n:.0f} %")
    ax.set_xticks(range(n), class_names, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="share of the split (%)", title=title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def augmentation_grid(originals: torch.Tensor, augmented: Sequence[torch.Tensor],
                      title: str = "the same images, augmented several times") -> plt.Figure:
    """Column 0: the original images; each further column: one augmented draw of the same images."""
    rows = originals.shape[0]
    columns = 1 + len(augmented)
    # Constrained layout keeps room for the title above the column labels (tight_layout ignores a suptitle).
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.1 + 0.6), squeeze=False,
                             layout="constrained")
    fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.02, hspace=0.02)
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
    return fig


def normalised_batch(images: torch.Tensor, titles: Sequence[str], mean, std, columns: int = 8) -> plt.Figure:
    """The first `columns` images of a normalised float batch (as a loader yields it), denormalised for
    display, each with its title (a class name)."""
    mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    shown = min(columns, len(images))
    fig, axes = plt.subplots(1, shown, figsize=(1.5 * shown, 1.9), squeeze=False)
    for ax, image, title in zip(axes[0], images[:shown], titles):
        ax.imshow(_to_hwc((image.detach().cpu().float() * std + mean).clamp(0, 1)))
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
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


def accuracy_against_latency(table: pd.DataFrame, device: str) -> plt.Figure:
    """One labelled point per model (the table's index): batch-1 median latency (`p50_ms`, log scale) against
    top-1 accuracy (`top1`), with the marker's area growing with the parameter count (`M params`)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.scatter(table["p50_ms"], 100 * table["top1"], s=30 + 8 * table["M params"])
    for name, row in table.iterrows():
        ax.annotate(name, (row["p50_ms"], 100 * row["top1"]), textcoords="offset points", xytext=(5, 4),
                    fontsize=8)
    ax.set(xlabel=f"batch-1 latency, median (ms, {device})", ylabel="top-1 accuracy (%)",
           title="accuracy against latency (marker area ~ parameters)", xscale="log")
    fig.tight_layout()
    return fig


def memory_by_batch_size(table: pd.DataFrame, budgets_gib: Sequence[float] = (16, 24, 40, 80),
                         title: str = "training memory per batch size") -> plt.Figure:
    """Stacked estimate (fixed: weights, gradients, optimizer state; activations, which grow with the batch)
    against batch size, a measured column where there is one, and horizontal lines at common GPU sizes, so
    the largest batch that fits a card can be read off. `table` is indexed by batch size, with the columns of
    `measure.training_memory_estimate` (MiB) and optionally `measured_MiB`."""
    batch = np.asarray(table.index, dtype=np.float64)
    fixed = table["weights_grads_optimizer_MiB"].to_numpy() / 1024
    activations = table["activations_MiB"].to_numpy() / 1024
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.stackplot(batch, fixed, activations, labels=["weights, gradients, optimizer (estimate)",
                                                    "activations (estimate)"], alpha=0.8)
    if "measured_MiB" in table:
        ax.plot(batch, table["measured_MiB"].to_numpy() / 1024, "ko-", label="measured (CUDA)")
    top = (fixed + activations).max()
    highest = top
    for budget in budgets_gib:   # the card sizes up to the first one that holds the largest batch shown
        ax.axhline(budget, color="grey", linestyle=":", linewidth=1)
        ax.text(batch[-1], budget, f"{budget:g} GiB card ", ha="right", va="bottom", fontsize=8, color="grey")
        highest = max(highest, budget)
        if budget >= top:
            break
    ax.set_ylim(0, 1.15 * highest)
    ax.set_xscale("log", base=2)
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.set_xticks(batch, [f"{int(b)}" for b in batch])
    ax.set(xlabel="batch size (images per GPU)", ylabel="GiB", title=title)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def processes_compared(result: dict, title: str = "") -> plt.Figure:
    """One process against N (a `bench.ddp.run` result): images/s with the spread of the repeats, and test
    accuracy per epoch of the two runs."""
    n = result["nproc"]
    fig, (speed, acc) = plt.subplots(1, 2, figsize=(9, 3.4))
    spreads = [result["img_s_1_spread"], result["img_s_n_spread"]]
    medians = [s["median"] for s in spreads]
    errors = [[m - s["min"] for m, s in zip(medians, spreads)], [s["max"] - m for m, s in zip(medians, spreads)]]
    speed.bar(["1 process", f"{n} processes"], medians, yerr=errors, capsize=4, color=["#888888", "#1f77b4"])
    speed.set(ylabel="training images / s", title=f"scaling efficiency {result['efficiency']:.2f}")
    for history, label in ((result["history_1"], "1 process"), (result["history_ddp"], f"{n} processes, DDP")):
        frame = history_frame(history).astype({"epoch": int, "test_acc": float})
        acc.plot(frame["epoch"], frame["test_acc"], marker="o", label=label)
    acc.set(xlabel="epoch", ylabel="test accuracy", title="same per-rank batch")
    acc.legend(fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def ddp_vs_local_sgd(result: dict, title: str = "") -> plt.Figure:
    """Accuracy against bytes all-reduced per rank, DDP and post-local SGD (a `bench.ddp.run` result)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for key, label in (("history_ddp", "DDP"), ("history_local_sgd", f"local SGD, period "
                                                                     f"{result['local_sgd_period']}")):
        frame = history_frame(result[key]).astype({"comm_bytes": float, "test_acc": float})
        sent = frame["comm_bytes"].cumsum() / 2**20
        ax.plot(sent, frame["test_acc"], marker="o", label=label)
    ax.set(xlabel="MiB all-reduced per rank (cumulative)", ylabel="test accuracy", title=title)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def inference_routes(result: dict, floor: Optional[float] = None) -> plt.Figure:
    """Batch-1 latency (p50 bar, p95 tick, the repeats' p50 range) and batched images/s per inference
    route, from a `bench.inference.run` result; routes below the agreement floor are hatched grey."""
    floor = result.get("agreement_floor", 0.99) if floor is None else floor
    names = list(result["routes"])
    rows = [result["routes"][n] for n in names]
    agree = [r["agreement"] >= floor for r in rows]
    colours = ["tab:blue" if ok else "lightgrey" for ok in agree]
    hatches = ["" if ok else "//" for ok in agree]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 0.45 * len(names) + 1.6), sharey=True)
    y = np.arange(len(names))
    p50 = np.array([r["p50_ms"] for r in rows])
    low = p50 - np.array([r["p50_spread"]["min"] for r in rows])
    high = np.array([r["p50_spread"]["max"] for r in rows]) - p50
    bars = left.barh(y, p50, color=colours, xerr=[low, high], capsize=3)
    left.plot([r["p95_ms"] for r in rows], y, "k|", markersize=12, label="p95")
    right_bars = right.barh(y, [r["img_s"] for r in rows], color=colours)
    for bar_set in (bars, right_bars):
        for bar, hatch in zip(bar_set, hatches):
            bar.set_hatch(hatch)
    left.set_yticks(y, names)
    left.invert_yaxis()
    left.set(xlabel="batch-1 latency, ms (bar: p50, line: p95)")
    right.set(xlabel=f"images/s at batch {result.get('batch_size', '')}")
    for ax in (left, right):
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"{result.get('model', '')} on {result.get('device', '')}: grey, hatched = "
                 f"agreement with eager below {floor:g}", fontsize=9)
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path: Optional[Path]) -> None:
    """Save a figure next to a run's results (PNG, tight bounding box), atomically."""
    from .io import atomic_write

    if path is not None:
        atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=120, bbox_inches="tight"))


def curves_over_seeds(runs: Sequence[dict], title: str = "") -> plt.Figure:
    """Test accuracy and train loss per epoch, one thin line per seed and their mean in bold (runs as in a
    `cifar_lab.book.real_data` record: each with a `seed` and a `history` of per-epoch rows)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    frames = [history_frame(run["history"]) for run in runs]
    for run, frame in zip(runs, frames):
        axes[0].plot(frame["epoch"], frame["train_loss"], color="tab:blue", alpha=0.35, lw=1)
        axes[1].plot(frame["epoch"], 100 * frame["test_acc"], color="tab:orange", alpha=0.35, lw=1,
                     label=f"seed {run['seed']}" if len(runs) <= 5 else None)
    common = min(len(frame) for frame in frames)
    mean = pd.concat([frame.iloc[:common][["epoch", "train_loss", "test_acc"]] for frame in frames]) \
        .groupby("epoch").mean().reset_index()
    axes[0].plot(mean["epoch"], mean["train_loss"], color="tab:blue", lw=2.5, label=f"mean of {len(runs)} seeds")
    axes[1].plot(mean["epoch"], 100 * mean["test_acc"], color="tab:orange", lw=2.5,
                 label=f"mean of {len(runs)} seeds")
    axes[0].set(title="train loss", xlabel="epoch")
    axes[1].set(title="test top-1 accuracy (%)", xlabel="epoch")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def curves_by_entry(records: dict, title: str = "") -> plt.Figure:
    """Several entries' learning curves on one pair of axes (train loss, test accuracy): one colour per entry
    of `records` ({name: a `cifar_lab.book.real_data` record}), a thin line per seed and the mean over seeds in bold,
    with a marker per epoch."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (name, record) in enumerate(records.items()):
        colour = colours[index % len(colours)]
        frames = [history_frame(run["history"]) for run in record["runs"]]
        for frame in frames:
            axes[0].plot(frame["epoch"], frame["train_loss"], color=colour, alpha=0.3, lw=1)
            axes[1].plot(frame["epoch"], 100 * frame["test_acc"], color=colour, alpha=0.3, lw=1)
        common = min(len(frame) for frame in frames)
        mean = pd.concat([frame.iloc[:common][["epoch", "train_loss", "test_acc"]] for frame in frames]) \
            .groupby("epoch").mean().reset_index()
        label = f"{name} (mean of {len(frames)} seeds)"
        axes[0].plot(mean["epoch"], mean["train_loss"], color=colour, lw=2.5, marker="o", label=label)
        axes[1].plot(mean["epoch"], 100 * mean["test_acc"], color=colour, lw=2.5, marker="o", label=label)
    axes[0].set(title="train loss", xlabel="epoch")
    axes[1].set(title="test top-1 accuracy (%)", xlabel="epoch")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def mistakes_grid(examples: Sequence[dict], per_row: int = 4, title: str = "") -> plt.Figure:
    """The test images of the most common mistakes (`cifar_lab.mistakes.examples`), one confusion per row:
    each tile says what the image is and what the model called it, with its confidence."""
    rows = max(1, -(-len(examples) // per_row))
    fig, axes = plt.subplots(rows, per_row, figsize=(per_row * 1.9, rows * 2.05), squeeze=False,
                             layout="constrained")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    for ax, example in zip(axes.flat, examples):
        ax.imshow(np.asarray(example["pixels"], dtype=np.uint8), cmap="gray", vmin=0, vmax=255,
                  interpolation="nearest")
        ax.set_title(f"{example['true']}\n→ {example['predicted']} ({100 * example['confidence']:.0f} %)",
                     fontsize=7.5)
    if title:
        fig.suptitle(title)
    return fig


def lr_range_test(result: dict, title: str = "") -> plt.Figure:
    """Smith's learning-rate range test (`cifar_lab.lr_finder.range_test`): the smoothed training loss against
    the learning rate on a log axis, with the steepest descent and the config's own learning rate marked."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(result["lr"], result["loss"], color="tab:blue")
    ax.axvline(result["steepest_lr"], color="tab:green", linestyle="--",
               label=f"steepest descent: {result['steepest_lr']:.2g}")
    ax.axvline(result["config_lr"], color="tab:red", linestyle=":",
               label=f"the preset's lr: {result['config_lr']:.2g}")
    finite = [v for v in result["loss"] if np.isfinite(v)]
    if finite:  # the divergence at the end would squash the interesting part of the curve
        ax.set_ylim(min(finite) * 0.95, min(max(finite), 2.5 * min(finite)))
    ax.set(xscale="log", xlabel="learning rate (log scale)", ylabel="training loss (smoothed)",
           title=title or f"LR range test: {result['model']} on {result['dataset']}, {result['optimizer']}, "
                          f"{result['batches']} batches of {result['batch_size']}")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
