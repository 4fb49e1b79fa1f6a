"""The AST chapter's experiment: dense training, AST (packed and unpacked), a random subset at the same rate,
and dense training given AST's wall-clock, on the same data and model, over several seeds.

`compare(preset, overrides, seeds, out_dir)` runs the five variants per seed with the one training loop and
returns a `Comparison`: one tidy row per (seed, variant), the first seed's histories and AST traces, and the
score stream recorded from its packed AST run. `spread_table` gives mean ± standard deviation per variant
and `answers` the chapter's two questions, worded from the numbers, so that what the book says follows from
whatever the runs measured. `save_record`/`load_record` keep a run of it as a small results file.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pandas as pd
import torch

from .. import presets
from ..engine import train
from ..io import atomic_write, atomic_write_text
from ..measure import compare_means

VARIANTS = ("dense", "AST packed", "AST unpacked", "random subset", "dense, AST's time")
NUMBERS = ("final_acc", "best_acc", "train_seconds", "optimizer_steps", "samples_trained", "activation_rate",
           "compute_vs_dense_flops", "compute_vs_dense_model")


@dataclass
class Comparison:
    rows: pd.DataFrame                               # one row per (seed, variant)
    histories: dict = field(default_factory=dict)    # first seed: variant -> per-epoch rows
    traces: dict = field(default_factory=dict)       # first seed: AST variant -> per-batch controller trace
    scores: Optional[torch.Tensor] = None            # first seed's packed AST run: recorded score stream
    batches_per_epoch: int = 0                       # of the runs (what an epoch of the score stream is)


def compare(preset: str, overrides: dict, seeds, out_dir, record_scores: int = 0) -> Comparison:
    """Train the five variants of `preset` (an AST preset) for every seed into `out_dir/seed<N>/<variant>`."""
    out = Path(out_dir)
    # An untimed epoch first, so that one-time costs (kernel selection, allocator, data on disk) do not land
    # in the first variant's time.
    train(presets.resolve(preset, {**overrides, "epochs": 1, "train_subset": 256, "test_subset": 64}, ast=False),
          out / "warm_up")
    rows, first = [], {}
    for index, seed in enumerate(seeds):
        base = {**overrides, "seed": seed}
        folder = out / f"seed{seed}"
        runs = {"dense": train(presets.resolve(preset, base, ast=False), folder / "dense")}
        record = record_scores if index == 0 else 0
        runs["AST packed"] = train(presets.resolve(preset, {**base, "ast.pack": True, "ast.record_scores": record}),
                                   folder / "ast_packed")
        runs["AST unpacked"] = train(presets.resolve(preset, {**base, "ast.pack": False}), folder / "ast_unpacked")
        runs["random subset"] = train(presets.resolve(preset, {**base, "ast.selection": "random"}),
                                      folder / "random_subset")
        # Stopped once it has trained as long as the packed AST run did (the budget is checked every batch).
        budget = {**base, "time_budget_s": runs["AST packed"].summary["train_seconds"]}
        runs["dense, AST's time"] = train(presets.resolve(preset, budget, ast=False), folder / "dense_same_time")
        rows += [row_of(seed, name, result) for name, result in runs.items()]
        if index == 0:
            first = runs
    return Comparison(
        rows=pd.DataFrame(rows),
        histories={name: result.history for name, result in first.items()},
        traces={name: result.extra["ast_trace"] for name, result in first.items() if "ast_trace" in result.extra
                and name != "random subset"},
        scores=first["AST packed"].extra.get("ast_scores") if first else None,
        batches_per_epoch=len(first["AST packed"].data.train_loader) if first else 0,
    )


def row_of(seed: int, variant: str, result) -> dict:
    summary = result.summary
    return {
        "seed": seed, "variant": variant, "epochs": summary["epochs"], "device": summary["device"],
        "final_acc": summary["final_acc"], "best_acc": summary["best_acc"],
        "train_seconds": summary["train_seconds"], "optimizer_steps": summary["optimizer_steps"],
        "samples_trained": sum(row["samples_trained"] for row in result.history),
        "activation_rate": summary.get("activation_rate", 1.0),
        # Dense variants spend exactly what they train; the dense run is the unit.
        "compute_vs_dense_flops": summary.get("compute_vs_dense_flops", 1.0),
        "compute_vs_dense_model": summary.get("compute_vs_dense_model", 1.0),
    }


def spread_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per variant (in the chapter's order): mean and standard deviation over the seeds of every number."""
    grouped = rows.groupby("variant", sort=False)[list(NUMBERS)]
    table = grouped.mean().add_suffix("_mean").join(grouped.std(ddof=1).add_suffix("_std"))
    table["seeds"] = grouped.size()
    return table.reindex([v for v in VARIANTS if v in table.index])


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """`spread_table` as text cells "mean ± std" with sensible rounding, for the book."""
    def cell(name: str, digits: int):
        std = table[f"{name}_std"].fillna(0.0)
        return [f"{m:.{digits}f} ± {s:.{digits}f}" for m, s in zip(table[f"{name}_mean"], std)]

    return pd.DataFrame({
        "test accuracy (final)": cell("final_acc", 3), "train seconds": cell("train_seconds", 1),
        "optimizer steps": cell("optimizer_steps", 0), "activation rate": cell("activation_rate", 3),
        "compute vs dense (FLOPs)": cell("compute_vs_dense_flops", 3),
        "compute vs dense (1:3 model)": cell("compute_vs_dense_model", 3), "seeds": table["seeds"],
    }, index=table.index)


def answers(rows: pd.DataFrame) -> dict:
    """Does the gate beat a random subset at the same rate, and does AST beat dense training given the same
    time? A difference counts only when it exceeds the seeds' spread (the larger standard deviation of the
    two; with one seed every difference counts and the answer says it rests on one run)."""
    table = spread_table(rows)

    def versus(ours: str, other: str) -> dict:
        return compare_means(table.loc[ours, "final_acc_mean"], table.loc[ours, "final_acc_std"],
                             table.loc[other, "final_acc_mean"], table.loc[other, "final_acc_std"])

    seeds = int(table["seeds"].min())
    return {"seeds": seeds, "gate_vs_random": versus("AST packed", "random subset"),
            "ast_vs_dense_same_time": versus("AST packed", "dense, AST's time"),
            "packed_vs_unpacked": versus("AST packed", "AST unpacked")}


def save_record(folder, name: str, comparison: Comparison, command: str, environment: dict) -> Path:
    """Write `folder/<name>.json` (rows, command, provenance) and, when there is one, the recorded score
    stream as `folder/<name>_scores.pt`."""
    folder = Path(folder)
    record = {"command": command, "environment": environment, "load_average_at_end": os.getloadavg(),
              "batches_per_epoch": comparison.batches_per_epoch,
              "rows": json.loads(comparison.rows.to_json(orient="records"))}
    if comparison.scores is not None:
        atomic_write(folder / f"{name}_scores.pt", lambda handle: torch.save(comparison.scores, handle))
        record["scores_file"] = f"{name}_scores.pt"
    path = folder / f"{name}.json"
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    return path


def load_record(path) -> tuple[dict, pd.DataFrame, Optional[torch.Tensor]]:
    """A saved record: its metadata (command, environment), the rows, and the score stream if saved."""
    path = Path(path)
    record = json.loads(path.read_text())
    scores = None
    if record.get("scores_file"):
        scores = torch.load(path.parent / record["scores_file"], weights_only=True)
    return record, pd.DataFrame(record["rows"]), scores
