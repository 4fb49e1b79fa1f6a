"""The book's real-data runs at CPU scale: Fashion-MNIST trainings whose results the chapters show.

`training_records(label, preset, seeds, overrides, out_dir)` trains a preset once per seed with the one engine
and returns its typed records (`seeds.records`: final and best test accuracy, superclass accuracy, training
seconds, each per seed) and its extras: every seed's learning curve and, for the first seed, the confusion
matrix and the mistakes it makes most often with example images (see `cifar_lab.mistakes`). `train_presets`
does it for a chapter's plan of named variants. A chapter keeps what it measured in its `out_dir/records.json`
(`record.Collector`); when it does not train, it shows the committed record of its last edition instead
(`record.committed`), saying so, and never copies it into its own records.

`summary_table`, `versus` (two entries compared by `stats.compare`, in words) and `curves` read a
`record.RecordSet`; `processes_records` turns chapter 8's runs (`bench.ddp.same_global_batch`) into records of the
same kind; `runs_metrics` gives the `fmnist` entry of a chapter's metrics.json, for measured runs only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from .. import mistakes, presets, provenance
from ..data import fashion_mnist
from . import stats
from .record import BEST_ACCURACY, FINAL_ACCURACY, FINAL_SUPERCLASS_ACCURACY, TRAINING_TIME, Record, RecordSet, labels
from .seeds import records as seed_records
from .seeds import train_seeds

HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr")


def history_of(rows: Sequence[dict]) -> list[dict]:
    """The per-epoch numbers a record's curves keep, from a run's history (or metrics.csv rows, as text)."""
    def number(key, value):
        if value in (None, ""):
            return None
        return int(value) if key == "epoch" else float(value)

    return [{key: number(key, row.get(key)) for key in HISTORY_KEYS} for row in rows]


def training_records(label: str, preset: str, seeds: Sequence[int], overrides: dict, out_dir,
                     command: Optional[str] = None, confusions: int = 6,
                     per_pair: int = 4) -> tuple[list[Record], dict]:
    """Train `preset` with `overrides` once per seed (`seeds.train_seeds`) into `out_dir`: the records of
    `label` and its extras ({label: curves, confusion matrix, mistakes})."""
    config = presets.resolve(preset, overrides)
    runs = train_seeds(config, seeds, out_dir)
    shown = {k: v for k, v in overrides.items() if k not in ("data_root", "progress")}
    found = runs.records(label, command, details={"preset": preset, "overrides": shown})
    first = runs.first
    names = first.data.class_names
    pairs = mistakes.top_confusions(first.evaluation["confusion"], names, confusions)
    truth, predicted, confidence = mistakes.predictions(first.model, first.data.test_loader,
                                                        next(first.model.parameters()).device)
    test_images = first.data.test_split.images
    # The pictures are shown as published: the padding that brought them to the model's size comes off.
    crop = max(0, int(test_images.shape[-1]) - fashion_mnist.SIDE) // 2 if config.dataset == fashion_mnist.NAME else 0
    extras = {
        "runs": [{"seed": seed, "history": history_of(result.history)}
                 for seed, result in zip(runs.seeds, runs.results)],
        "class_names": list(names), "confusion": first.evaluation["confusion"].tolist(),
        "per_class": list(first.evaluation["per_class"]),
        "top_confusions": pairs.drop(columns=["true_id", "pred_id"]).to_dict(orient="records"),
        "mistakes": mistakes.examples(test_images, truth, predicted, confidence, pairs, per_pair, crop=crop),
    }
    return found, {label: extras}


def train_presets(plan: dict[str, dict], out_dir, data_root: Optional[str] = None,
                  command: Optional[str] = None) -> tuple[list[Record], dict]:
    """`training_records` for every entry of `plan` into `out_dir/<name>`: all their records and extras. An entry
    is {"seeds": [...], "overrides": {...}} and trains the preset of its name, or names its preset with
    "preset" (variants of one preset: {"label smoothing 0.1": {"preset": "fmnist-simplecnn", "overrides":
    {"label_smoothing": 0.1}, "seeds": [0, 1, 2]}})."""
    common = {"progress": False, "save_checkpoints": False, **({"data_root": data_root} if data_root else {})}
    found, extras = [], {}
    for name, step in plan.items():
        records, more = training_records(name, step.get("preset", name), step["seeds"],
                                         {**common, **step.get("overrides", {})},
                                         Path(out_dir) / name.replace(" ", "_"), command)
        found += records
        extras.update(more)
    return found, extras


def processes_records(result: dict, command: Optional[str] = None) -> tuple[list[Record], dict]:
    """The records of `bench.ddp.same_global_batch`'s runs: one label per process count
    (`bench.ddp.processes_label`), each with its per-seed accuracies and training time, and its curves."""
    found, extras = [], {}
    environment = provenance.collect()   # the runs were started from this process, at its commit
    recipe = presets.resolve(result["preset"], {}).epochs
    # every process count drew from the images one process reads (each of several reads a shard of them)
    one = min(result["entries"].values(), key=lambda entry: entry["processes"])
    train_images = one["runs"][0]["summary"].get("train_samples")
    for label, entry in result["entries"].items():
        runs = entry["runs"]
        details = {"preset": result["preset"], "overrides": result.get("overrides", {}),
                   "processes": entry["processes"], "batch_per_process": entry["batch_per_process"],
                   "global_batch": result["global_batch"], "threads_per_process": result.get("threads_per_process")}
        found += seed_records(label, [run["summary"] for run in runs], [run["seed"] for run in runs],
                              environment=environment, command=command, recipe_epochs=recipe, details=details,
                              train_images=train_images)
        extras[label] = {"runs": [{"seed": run["seed"], "history": history_of(run["history"])} for run in runs]}
    return found, extras


def summary_table(shown: RecordSet) -> "pd.DataFrame":
    """One row per label: final test accuracy (mean ± standard deviation over seeds, and its 95 % interval),
    the best epoch's (shown, never judged), epochs trained of the recipe's, and the seeds."""
    import pandas as pd

    rows = {}
    for label in shown.labels:
        final = shown.get(label, FINAL_ACCURACY)
        summary = final.summary
        best = shown.get(label, BEST_ACCURACY).summary.mean if shown.has(label, BEST_ACCURACY) else None
        recipe = f" of {final.recipe_epochs:,}" if final.recipe_epochs else ""
        rows[label] = {
            "final test accuracy": f"{summary.mean:.4f}" + (f" ± {summary.std:.4f}" if summary.std is not None
                                                             else " (1 seed)"),
            "95 % interval": f"{summary.low:.4f}-{summary.high:.4f}" if summary.low is not None else "—",
            "best epoch's accuracy": "—" if best is None else f"{best:.4f}",
            "epochs (of the recipe's)": f"{final.fewest_epochs}{recipe}",
            "seeds": final.n,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def versus(shown: RecordSet, ours: str, other: str, measured: str = FINAL_ACCURACY) -> stats.Comparison:
    """Entry `ours` against entry `other` on `measured`, over their seeds (`stats.compare`)."""
    higher = measured != TRAINING_TIME
    return stats.compare(shown.get(ours, measured).values, shown.get(other, measured).values, higher_is_better=higher)


def versus_sentence(shown: RecordSet, ours: str, other: str, measured: str = FINAL_ACCURACY) -> str:
    """`versus` in words: both means, the difference, its 95 % interval and n, and the verdict."""
    return versus(shown, ours, other, measured).sentence(ours, other, what=measured)


def curves(shown: RecordSet, chosen: Optional[Sequence[str]] = None) -> dict:
    """{label: {"runs": [{"seed", "history"}]}} of the labels `chosen` (all by default), what
    `plots.curves_by_entry` draws; `curves(...)[label]["runs"]` is what `plots.curves_over_seeds` draws."""
    return {label: {"runs": shown.extras[label]["runs"]} for label in (chosen or shown.labels)
            if label in shown.extras}


def runs_metrics(shown: RecordSet) -> Optional[dict]:
    """The `fmnist` entry of a chapter's metrics.json from the runs this execution measured: per label, the
    mean final accuracy over its seeds, its spread, the best accuracy (shown, never judged), the epochs trained,
    the recipe's epochs and the seeds; `real_data` says whether they all trained on the real files. None for a
    committed record: this execution measured nothing, so it reports nothing."""
    if shown.source != "run":
        return None
    runs = {}
    for label in labels(shown.records):
        final = shown.get(label, FINAL_ACCURACY)
        summary = final.summary
        runs[label] = {"final_acc": summary.mean, "final_acc_std": summary.std or 0.0,
                       "best_acc": shown.get(label, BEST_ACCURACY).summary.mean if shown.has(label, BEST_ACCURACY)
                       else None,
                       "epochs": final.fewest_epochs, "recipe_epochs": final.recipe_epochs, "seeds": list(final.seeds)}
        if shown.has(label, FINAL_SUPERCLASS_ACCURACY):
            runs[label]["final_superclass_acc"] = shown.get(label, FINAL_SUPERCLASS_ACCURACY).summary.mean
    real = all(r.dataset == fashion_mnist.NAME for r in shown.records)
    return {"real_data": real, "runs": runs}
