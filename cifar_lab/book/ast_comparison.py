"""The AST chapter's experiment: dense training, AST (packed and unpacked), a random subset at the same rate,
and dense training given AST's wall-clock, on the same data and model, over several seeds.

`compare(preset, overrides, seeds, out_dir)` runs the five variants per seed with the one training loop and
returns a `Comparison`: one tidy row per (seed, variant), the first seed's histories and AST traces, and the
score stream recorded from its packed AST run. `records` turns it into typed records (one per variant and
quantity of `QUANTITIES`, labelled by variant), with the first seed's curves and the score stream as extras.
Over records, from this run or committed, `spread_table` gives mean ± standard deviation per variant and
`answers` the chapter's questions as `stats.compare` verdicts, so that what the book says follows from whatever
the runs measured; `score_stream` gives the recorded stream back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pandas as pd
import torch

from .. import presets
from ..engine import train
from . import stats
from .record import (ACTIVATION_RATE, BEST_ACCURACY, COMPUTE_VS_DENSE, COUNT, FINAL_ACCURACY, FRACTION, SECONDS,
                     TRAINING_TIME, Record, RecordSet, provenance_fields)

VARIANTS = ("dense", "AST packed", "AST unpacked", "random subset", "dense, AST's time")
# a row's number -> (the measured quantity of its record, unit)
QUANTITIES = {
    "final_acc": (FINAL_ACCURACY, FRACTION),
    "best_acc": (BEST_ACCURACY, FRACTION),
    "train_seconds": (TRAINING_TIME, SECONDS),
    "optimizer_steps": ("optimizer steps", COUNT),
    "samples_trained": ("samples trained", COUNT),
    "activation_rate": (ACTIVATION_RATE, FRACTION),
    "compute_vs_dense_flops": (COMPUTE_VS_DENSE, FRACTION),
    "compute_vs_dense_model": ("compute vs dense (1:3 model)", FRACTION),
}
NUMBERS = tuple(QUANTITIES)
SCORE_STREAM = "score_stream"   # in the extras of "AST packed": the first seed's recorded scores
# The CPU-scale experiment on real data keeps labels of its own ("dense on Fashion-MNIST"): a chapter's committed
# records hold it beside the variants of a CIFAR or smoke run, and claims about CIFAR-10 never read it.
ON_DATASET = {"fashion_mnist": " on Fashion-MNIST"}


def suffix(dataset: Optional[str]) -> str:
    """What the labels of a comparison on `dataset` add to the variants' names ("" for CIFAR and smoke runs)."""
    return ON_DATASET.get(dataset or "", "")


@dataclass
class Comparison:
    rows: pd.DataFrame                               # one row per (seed, variant)
    histories: dict = field(default_factory=dict)    # first seed: variant -> per-epoch rows
    traces: dict = field(default_factory=dict)       # first seed: AST variant -> per-batch controller trace
    scores: Optional[torch.Tensor] = None            # first seed's packed AST run: recorded score stream
    batches_per_epoch: int = 0                       # of the runs (what an epoch of the score stream is)
    recipe_epochs: Optional[int] = None


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
        recipe_epochs=presets.resolve(preset, overrides).epochs,
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
        "dataset": summary.get("dataset"), "data_source": summary.get("data_source"),
        "train_samples": summary.get("train_samples"), "test_samples": summary.get("test_samples"),
        "final_acc": summary["final_acc"], "best_acc": summary["best_acc"],
        "train_seconds": summary["train_seconds"], "optimizer_steps": summary["optimizer_steps"],
        "samples_trained": sum(row["samples_trained"] for row in result.history),
        "activation_rate": summary.get("activation_rate", 1.0),
        # Dense variants spend exactly what they train; the dense run is the unit.
        "compute_vs_dense_flops": summary.get("compute_vs_dense_flops", 1.0),
        "compute_vs_dense_model": summary.get("compute_vs_dense_model", 1.0),
    }


def records(comparison: Comparison, command: Optional[str] = None, environment: Optional[dict] = None,
            run_folder=None) -> tuple[list[Record], dict]:
    """The comparison as typed records: per variant, one record of each quantity of `QUANTITIES` over the
    seeds, labelled by the variant (and `suffix` of the dataset); extras per label: the first seed's curves
    (and for "AST packed" the recorded score stream)."""
    rows = comparison.rows
    ending = suffix(rows.iloc[0].get("dataset")) if len(rows) else ""
    found, extras = [], {}
    for variant in [v for v in VARIANTS if v in set(rows["variant"])]:
        mine = rows[rows["variant"] == variant].sort_values("seed")
        first = mine.iloc[0]
        common = dict(
            seeds=[int(seed) for seed in mine["seed"]], dataset=first.get("dataset"),
            data_source=first.get("data_source"), train_images=_count(first.get("train_samples")),
            test_images=_count(first.get("test_samples")), epochs=[int(e) for e in mine["epochs"]],
            recipe_epochs=comparison.recipe_epochs, optimizer_steps=[int(s) for s in mine["optimizer_steps"]],
            **provenance_fields(environment, command, run_folder))
        common["device"] = first["device"]
        for key, (measured, unit) in QUANTITIES.items():
            found.append(Record(label=variant + ending, measured=measured, unit=unit,
                                values=[float(v) for v in mine[key]], **common))
        if variant in comparison.histories:
            seed = int(first["seed"])
            extras[variant + ending] = {"runs": [{"seed": seed, "history": [
                {k: row.get(k) for k in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr",
                                         "samples_trained", "activation_rate", "compute_vs_dense_flops",
                                         "compute_vs_dense_model")}
                for row in comparison.histories[variant]]}]}
    if comparison.scores is not None and "AST packed" + ending in extras:
        extras["AST packed" + ending][SCORE_STREAM] = stream_extra(comparison.scores, comparison.batches_per_epoch)
    return found, extras


def _count(value) -> Optional[int]:
    return None if value is None or pd.isna(value) else int(value)


def spread_table(shown: RecordSet, ending: str = "") -> pd.DataFrame:
    """Per variant (in the chapter's order; labels ending in `ending`, see `suffix`): mean and standard
    deviation over the seeds of every quantity (`stats.summarize`; the deviation is NaN with one seed)."""
    rows = {}
    for variant in [v for v in VARIANTS if v + ending in shown.labels]:
        row = {}
        for key, (measured, _) in QUANTITIES.items():
            summary = shown.get(variant + ending, measured).summary
            row[f"{key}_mean"] = summary.mean
            row[f"{key}_std"] = float("nan") if summary.std is None else summary.std
        row["seeds"] = shown.get(variant + ending, FINAL_ACCURACY).n
        rows[variant] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    return table[[f"{key}_mean" for key in NUMBERS] + [f"{key}_std" for key in NUMBERS] + ["seeds"]]


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """`spread_table` as text cells "mean ± std" (the mean alone for one seed) with sensible rounding."""
    def cell(name: str, digits: int):   # one seed has no spread: its mean alone
        return [f"{m:.{digits}f}" + ("" if pd.isna(s) else f" ± {s:.{digits}f}")
                for m, s in zip(table[f"{name}_mean"], table[f"{name}_std"])]

    return pd.DataFrame({
        "test accuracy (final)": cell("final_acc", 3), "train seconds": cell("train_seconds", 1),
        "optimizer steps": cell("optimizer_steps", 0), "activation rate": cell("activation_rate", 3),
        "compute vs dense (FLOPs)": cell("compute_vs_dense_flops", 3),
        "compute vs dense (1:3 model)": cell("compute_vs_dense_model", 3), "seeds": table["seeds"],
    }, index=table.index)


QUESTIONS = {   # the chapter's questions: (ours, other), compared on the final test accuracy
    "gate_vs_random": ("AST packed", "random subset"),
    "ast_vs_dense_same_time": ("AST packed", "dense, AST's time"),
    "packed_vs_unpacked": ("AST packed", "AST unpacked"),
}


def answers(shown: RecordSet, ending: str = "") -> dict[str, stats.Comparison]:
    """Does the gate beat a random subset at the same rate, does AST beat dense training given the same time,
    and does packing change the accuracy? Each a `stats.compare` of the final test accuracies over the seeds
    (better or worse only when the 95 % interval of the difference excludes 0)."""
    return {key: stats.compare(shown.get(ours + ending).values, shown.get(other + ending).values)
            for key, (ours, other) in QUESTIONS.items()}


def answer_sentences(shown: RecordSet, ending: str = "") -> list[str]:
    """`answers` in words, one sentence per question."""
    return [comparison.sentence(*QUESTIONS[key], what=FINAL_ACCURACY, digits=4)
            for key, comparison in answers(shown, ending).items()]


def stream_extra(scores: torch.Tensor, batches_per_epoch: int) -> dict:
    """A recorded score stream as the extras keep it (`SCORE_STREAM`); `score_stream` reads it back."""
    return {"batches_per_epoch": batches_per_epoch, "dtype": str(scores.dtype).removeprefix("torch."),
            "scores": scores.tolist()}


def score_stream(shown: RecordSet, ending: str = "", label: Optional[str] = None) -> Optional[tuple[torch.Tensor, int]]:
    """The score stream recorded from the first packed AST run (of the label `label` when given, as the
    compute curves' "AST engine"), and its batches per epoch; None without one."""
    stream = shown.extras.get(label or "AST packed" + ending, {}).get(SCORE_STREAM)
    if not stream:
        return None
    dtype = getattr(torch, stream.get("dtype", "float32"))
    return torch.tensor(stream["scores"], dtype=dtype), int(stream["batches_per_epoch"])
