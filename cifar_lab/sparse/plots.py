"""Figures of the AST chapter: the controller over training, gain sets side by side, energy and compute.

Inputs are what the engine produces: the per-batch trace (`RunResult.extra["ast_trace"]` or a run's
`ast_trace.csv`), per-epoch history rows, and the simulator's `SimTrace`.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd


def trace_frame(trace) -> pd.DataFrame:
    """The per-batch trace as a DataFrame (from the dict of columns, a DataFrame or an ast_trace.csv path)."""
    if isinstance(trace, pd.DataFrame):
        return trace
    if isinstance(trace, dict):
        return pd.DataFrame(trace)
    return pd.read_csv(trace)


def controller_axes(ax_theta, ax_rate, trace, target: float, title: str = "") -> None:
    frame = trace_frame(trace)
    ax_theta.plot(frame["theta"].to_numpy(), color="tab:purple")
    ax_theta.set_ylabel("threshold θ")
    ax_theta.set_title(title)
    ax_rate.plot(frame["rate"].to_numpy(), color="tab:gray", alpha=0.5, lw=0.8, label="per batch")
    ax_rate.plot(frame["ema"].to_numpy(), color="tab:blue", label="EMA (α 0.3)")
    ax_rate.axhline(target, color="tab:red", ls="--", lw=1, label=f"target {target:g}")
    ax_rate.set_ylabel("activation rate")
    ax_rate.set_xlabel("batch")
    ax_rate.legend(loc="upper right", fontsize=8)


def controller_trace(trace, target: float, title: str = "") -> plt.Figure:
    """θ (top) and the activation rate per batch with its EMA (bottom) over training."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    controller_axes(top, bottom, trace, target, title)
    fig.tight_layout()
    return fig


def gain_sets_side_by_side(traces: dict, target: float) -> plt.Figure:
    """One column per gain set (name -> trace), θ above activation, same axes limits."""
    fig, axes = plt.subplots(2, len(traces), figsize=(5 * len(traces), 5), sharex=True, sharey="row",
                             squeeze=False)
    for column, (name, trace) in enumerate(traces.items()):
        controller_axes(axes[0, column], axes[1, column], trace, target, name)
    fig.tight_layout()
    return fig


def energy_and_compute(histories: dict) -> plt.Figure:
    """Per epoch: energy savings by the AST paper's formula (left), and compute against dense training
    (right), counted in FLOPs (solid) and by the forward-pass-equivalent model (dashed)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    for index, (name, history) in enumerate(histories.items()):
        frame = pd.DataFrame(list(history))
        if "energy_savings_seed_formula" not in frame:
            continue
        color = f"C{index}"
        left.plot(frame["epoch"], frame["energy_savings_seed_formula"], marker="o", color=color, label=name)
        right.plot(frame["epoch"], frame["compute_vs_dense_flops"], marker="o", color=color, label=f"{name} (FLOPs)")
        right.plot(frame["epoch"], frame["compute_vs_dense_model"], ls="--", color=color, alpha=0.6,
                   label=f"{name} (1:3 model)")
    left.set(xlabel="epoch", ylabel="energy savings (AST paper's formula)", ylim=(0, 1))
    right.axhline(1.0, color="black", lw=1, ls=":", label="dense")
    right.set(xlabel="epoch", ylabel="compute vs dense (scoring included)", ylim=(0, 1.1))
    left.legend(fontsize=8)
    right.legend(fontsize=7)
    fig.tight_layout()
    return fig


def simulated_traces(sim_traces: dict, target: float) -> plt.Figure:
    """Simulator traces (name -> SimTrace) in the same layout as `gain_sets_side_by_side`."""
    tables = {name: {"theta": t.theta.tolist(), "rate": t.rate.tolist(), "ema": t.ema.tolist()}
              for name, t in sim_traces.items()}
    return gain_sets_side_by_side(tables, target)


def smoothed_rates(sim_traces: dict, target: float, window: int = 50) -> plt.Figure:
    """The activation rate of each simulated trace (name -> SimTrace), averaged over `window` batches."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for name, trace in sim_traces.items():
        ax.plot(trace.rate.unfold(0, window, window).mean(1).numpy(), label=f"{name} gains")
    ax.axhline(target, color="black", lw=0.8, ls="--", label=f"target {target:g}")
    ax.set(xlabel=f"batch / {window}", ylabel="activation rate")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_against_compute(points: pd.DataFrame, title: str = "") -> plt.Figure:
    """Test accuracy (mean over seeds, bars: one standard deviation) against training FLOPs with the scoring
    pass (left, log scale) and against samples back-propagated (right), one line per variant; a variant with a
    single point (dense training at AST's compute) is drawn as a marker. `points` is
    `book.selection_curves.points`."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for index, (name, mine) in enumerate(points.groupby("variant", sort=False)):
        mine = mine.sort_values("training_flops")
        style = dict(color=f"C{index}", marker="o" if len(mine) > 1 else "*", ms=5 if len(mine) > 1 else 14,
                     capsize=2, label=name, ls="-" if len(mine) > 1 else "none")
        left.errorbar(mine["training_flops"], mine["test_acc"], yerr=mine["std"], **style)
        right.errorbar(mine["samples_backpropagated"], mine["test_acc"], yerr=mine["std"], **style)
    left.set(xscale="log", xlabel="training FLOPs (scoring pass included)", ylabel="test accuracy")
    right.set(xscale="log", xlabel="samples back-propagated")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.xaxis.set_minor_formatter(plt.NullFormatter())   # labelled minor ticks of a log axis overlap
    right.legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
