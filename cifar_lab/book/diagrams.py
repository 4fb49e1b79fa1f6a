"""Explanatory figures of the book, drawn by code: what a part of the system does, not a measurement.

- `stems`: the ImageNet ResNet stem against the CIFAR stem, on a 32×32 image (chapter 2);
- `ast_step`: one step of Adaptive Sparse Training: scoring pass, gate, packing, training step, controller
  (chapter 3);
- `ddp_and_local_sgd`: DDP's all-reduce in every step against local SGD's periodic averaging (chapter 8);
- `export_routes`: from a checkpoint to predictions: the export formats and the inference routes (chapter 9).

Plain matplotlib (boxes and arrows on an axis without ticks); each function returns the `Figure`. The
numbers drawn (sizes, the scores of the example batch) are illustrations, stated as such where they appear.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

BLUE, ORANGE, GREEN, GREY, RED, PURPLE = "#cfe2f3", "#fce5cd", "#d9ead3", "#eeeeee", "#f4cccc", "#e1d5e7"


def _canvas(width: float, height: float, size=(10, 4)) -> tuple[plt.Figure, plt.Axes]:
    fig = plt.figure(figsize=size)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("auto")
    ax.axis("off")
    return fig, ax


def _box(ax, x, y, w, h, text, color=BLUE, size=9, weight="normal"):
    """A rounded box with its lower-left corner at (x, y) and centred text; returns its centre."""
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", facecolor=color,
                                edgecolor="#555555", linewidth=1))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight, wrap=True)
    return x + w / 2, y + h / 2


def _arrow(ax, start, end, text="", color="#333333", style="-|>", offset=(0, 0.12), size=8, **kwargs):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color=color, linewidth=1.2,
                                 **kwargs))
    if text:
        ax.text((start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1], text, ha="center",
                va="bottom", fontsize=size, color=color)


def stems() -> plt.Figure:
    """A 32×32 image through ImageNet's stem (7×7 stride-2 convolution, 3×3 stride-2 max-pool) and through the
    CIFAR stem (one 3×3 stride-1 convolution): the grid each hands to the first residual stage."""
    fig, axes = plt.subplots(2, 1, figsize=(10, 5.2))
    rows = [
        ("ImageNet stem (torchvision ResNet-18)", [("input", 32, 3), ("conv 7×7, stride 2", 16, 64),
                                                  ("max-pool 3×3, stride 2", 8, 64), ("stage 1", 8, 64)], RED),
        ("CIFAR stem (cifar-lab's resnet18_cifar)", [("input", 32, 3), ("conv 3×3, stride 1", 32, 64),
                                                    ("(no max-pool)", 32, 64), ("stage 1", 32, 64)], GREEN),
    ]
    for ax, (title, stages, color) in zip(axes, rows):
        ax.set_xlim(0, 100)
        ax.set_ylim(-8, 40)
        ax.axis("off")
        ax.set_title(title, fontsize=10, loc="left")
        x = 2
        for index, (name, side, channels) in enumerate(stages):
            ax.add_patch(Rectangle((x, 0), side * 0.55, side, facecolor=color if index else BLUE,
                                   edgecolor="#555555"))
            # a grid of `side` cells drawn as lines every 4 cells, so the shrinking resolution is visible
            for line in range(4, side, 4):
                ax.plot([x, x + side * 0.55], [line, line], color="#888888", linewidth=0.3)
            ax.text(x + side * 0.275, -2, f"{name}\n{side}×{side}×{channels}", ha="center", va="top", fontsize=8)
            if index < len(stages) - 1:
                _arrow(ax, (x + side * 0.55 + 1, side / 2), (x + side * 0.55 + 7, side / 2))
            x += side * 0.55 + 9
        cells = stages[-1][1] ** 2
        ax.text(98, 30, f"stage 1 sees {cells:,} positions", ha="right", fontsize=9)
    fig.suptitle("The stem decides the resolution the residual stages work at (boxes to scale)", fontsize=11)
    fig.tight_layout()
    return fig


def ast_step(target: float = 0.10, batch: int = 16, seed: int = 0) -> plt.Figure:
    """One AST step, drawn for an illustrative batch of `batch` samples (random scores, not a real run)."""
    rng = np.random.default_rng(seed)
    scores = np.clip(rng.beta(2.2, 2.2, batch), 0, 1)
    theta = float(np.quantile(scores, 1 - max(target, 2 / batch)))
    passed = scores > theta
    fig = plt.figure(figsize=(12, 5.4))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 24)
    ax.set_ylim(0, 10)
    ax.axis("off")
    batch_c = _box(ax, 0.2, 6.2, 2.4, 1.6, f"a batch of\nB images\n(B = {batch} here)", GREY, size=8)
    score_c = _box(ax, 3.2, 6.2, 3.4, 1.6, "1. scoring pass\nforward, no gradient\nBatchNorm: train mode", BLUE,
                   size=8)
    _arrow(ax, (2.6, batch_c[1]), (3.2, score_c[1]))
    inset = fig.add_axes((7.6 / 24, 0.56, 3.8 / 24, 0.3))
    inset.bar(range(batch), scores, color=np.where(passed, "#6aa84f", "#bbbbbb"))
    inset.axhline(theta, color="#cc0000", linewidth=1.5)
    inset.text(batch - 0.5, theta + 0.03, "θ", color="#cc0000", ha="right", fontsize=11)
    inset.set(ylim=(0, 1.05), xticks=[])
    inset.set_title("2. significance s per sample;\ngate: s > θ (green pass)", fontsize=8)
    inset.tick_params(labelsize=7)
    _arrow(ax, (6.6, score_c[1]), (7.2, score_c[1]))
    pack_c = _box(ax, 12.6, 6.2, 3.8, 1.6, "3. packing buffer\nselected samples of\nabout 1/target batches",
                  ORANGE, size=8)
    _arrow(ax, (11.5, score_c[1]), (12.6, pack_c[1]), f"{int(passed.sum())} pass", offset=(0, 0.15))
    train_c = _box(ax, 18.0, 6.2, 5.6, 1.6, "4. training step on a full batch:\nforward, backward,\n"
                                             "optimizer step, schedule catches up", GREEN, size=8)
    _arrow(ax, (16.4, pack_c[1]), (18.0, train_c[1]), "full", offset=(0, 0.15))
    rate_c = _box(ax, 12.6, 1.6, 3.8, 1.8, "activation rate r\n(share that passed)\nEMA ← 0.3·r + 0.7·EMA", PURPLE,
                  size=8)
    ctrl_c = _box(ax, 4.4, 1.6, 6.0, 1.8, "5. PI controller\ne = EMA − target\nθ ← θ + Kp·e + Ki·I  (I: the summed "
                                          "e,\nkept in bounds by anti-windup)", PURPLE, size=8)
    _arrow(ax, (11.2, 5.3), (13.6, 3.4))
    _arrow(ax, (12.6, rate_c[1]), (10.4, ctrl_c[1]))
    _arrow(ax, (7.4, 3.4), (8.4, 5.2), "θ for the next batch", color="#cc0000", offset=(-1.8, -0.3),
           connectionstyle="arc3,rad=-0.2")
    ax.text(0.2, 9.4, f"One AST step at a target of {target:.0%} (illustrative scores, not a run)", fontsize=12,
            weight="bold")
    ax.text(0.2, 0.25, "Every sample costs one no-grad forward; only the selected ones cost a training step "
                       "(about 3 forwards).\nPacked, a run takes about target × the optimizer steps of dense "
                       "training.", fontsize=9)
    return fig


def ddp_and_local_sgd(workers: int = 3, steps: int = 8, period: int = 4) -> plt.Figure:
    """Timelines of `workers` processes over `steps` optimizer steps: DDP all-reduces the gradients in every
    step; local SGD steps alone and averages the parameters every `period` steps."""
    fig, axes = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    for ax, kind in zip(axes, ("ddp", "local")):
        for worker in range(workers):
            y = workers - worker
            for step in range(steps):
                ax.add_patch(Rectangle((step + 0.05, y - 0.3), 0.6, 0.6, facecolor=BLUE, edgecolor="#555555"))
                ax.text(step + 0.35, y, "f+b", ha="center", va="center", fontsize=7)
            ax.text(-0.2, y, f"rank {worker}", ha="right", va="center", fontsize=8)
        syncs = range(steps) if kind == "ddp" else range(period - 1, steps, period)
        for step in syncs:
            ax.add_patch(Rectangle((step + 0.68, 0.55), 0.25, workers - 0.1, facecolor=ORANGE if kind == "ddp"
                                   else PURPLE, edgecolor="#555555"))
        ax.set(xlim=(-1.2, steps + 0.2), ylim=(0.3, workers + 0.9), yticks=[])
        ax.set_frame_on(False)
        ax.tick_params(bottom=False, labelbottom=kind == "local")
        sent = steps if kind == "ddp" else steps // period
        title = ("DDP: gradients all-reduced in every step (orange), the copies never drift"
                 if kind == "ddp" else f"local SGD, period {period}: local steps, parameters averaged every "
                                       f"{period} steps (purple)")
        ax.set_title(f"{title}  -  {sent} exchanges in {steps} steps", fontsize=9, loc="left")
    axes[1].set_xticks([s + 0.35 for s in range(steps)], [str(s + 1) for s in range(steps)])
    axes[1].set_xlabel("optimizer step (f+b: forward and backward on the rank's shard of the batch)")
    fig.tight_layout()
    return fig


def export_routes() -> plt.Figure:
    """From `best.pt` to predictions: the export formats (validated against eager fp32 before they are kept)
    and the inference routes that `cifar-lab bench inference` times side by side."""
    fig, ax = _canvas(22, 11, size=(11, 5.4))
    ckpt = _box(ax, 0.3, 4.9, 3.4, 1.6, "best.pt\nweights, config,\nclass names", GREY, size=8)
    eager = _box(ax, 5.2, 4.9, 3.0, 1.6, "eager model\nfp32, eval mode\n(Predictor)", BLUE, size=8)
    _arrow(ax, (3.7, ckpt[1]), (5.2, eager[1]), "load_model", offset=(0, 0.1))
    routes = [
        ("channels-last (NHWC)", BLUE), ("autocast bf16 / fp16", BLUE),
        ("torch.compile, Inductor\n(+ freezing on CPU)", BLUE),
    ]
    for index, (name, color) in enumerate(routes):
        y = 8.6 - index * 1.45
        c = _box(ax, 11.0, y, 4.4, 1.1, name, color, size=8)
        _arrow(ax, (8.2, eager[1] + 0.3), (11.0, c[1]))
    formats = [("ONNX (.onnx)\ndynamic batch", ORANGE), ("TorchScript (.pt)", ORANGE),
               ("torch.export (.pt2)", ORANGE)]
    for index, (name, color) in enumerate(formats):
        y = 4.1 - index * 1.4
        c = _box(ax, 11.0, y, 4.4, 1.1, name, color, size=8)
        _arrow(ax, (8.2, eager[1] - 0.3), (11.0, c[1]))
    ax.text(6.7, 2.4, "export, then\ncheck against\neager fp32", fontsize=8, ha="center")
    ort = _box(ax, 17.2, 4.1, 4.6, 1.1, "ONNX Runtime, fp32", GREEN, size=8)
    int8 = _box(ax, 17.2, 2.3, 4.6, 1.4, "ONNX Runtime int8\nstatic QDQ, calibrated on\nN images (VNNI kernels)",
                GREEN, size=8)
    _arrow(ax, (15.4, 4.65), (17.2, ort[1]))
    _arrow(ax, (15.4, 4.5), (17.2, int8[1]))
    _box(ax, 17.2, 7.3, 4.6, 2.2, "timed side by side:\nbatch-1 latency (p50, p95)\nthroughput, top-1 on the\n"
                                  "test split, file size", PURPLE, size=8)
    ax.text(0.3, 10.3, "From checkpoint to predictions: export formats (orange) and inference routes",
            fontsize=12, weight="bold")
    ax.text(0.3, 0.2, "Every exported file is compared with the eager fp32 model on the same inputs before it is "
                      "kept;\nint8 is judged by its accuracy on the test split.", fontsize=9)
    return fig
