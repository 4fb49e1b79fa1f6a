"""The book's real-data runs at CPU scale: Fashion-MNIST trainings whose results the chapters show.

`training_record(preset, seeds, overrides, out_dir)` trains a preset once per seed with the one engine and
returns a record (a plain dict): what ran, every seed's final and best test accuracy and learning curve, their
mean and standard deviation, and for the first seed the confusion matrix and the mistakes it makes most often
with example images (see `cifar_lab.mistakes`). `save` writes a record under `book/results/` with the command
that made it and its provenance; `load` reads it back, so that a chapter shows a committed record when it is not
run at CPU scale itself. `runs_metrics` turns records into the `fmnist.runs.<preset>` entries of a chapter's
metrics.json that `cifar_lab.reproduce` judges.
"""
from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Optional, Sequence

from .. import mistakes, presets
from .seeds import train_seeds
from ..data import fashion_mnist
from ..io import atomic_write_text
from ..measure import compare_means

SUMMARY_NUMBERS = ("final_acc", "best_acc", "epochs", "train_seconds", "final_superclass_acc")
HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr")


def training_record(preset: str, seeds: Sequence[int], overrides: dict, out_dir, confusions: int = 6,
                    per_pair: int = 4) -> dict:
    """Train `preset` with `overrides` once per seed (`seeds.train_seeds`) into `out_dir`; the record of what
    they reached."""
    runs = train_seeds(presets.resolve(preset, overrides), seeds, out_dir)
    judged, first = runs.record, runs.first
    record = {"preset": preset, "overrides": {k: v for k, v in overrides.items() if k != "data_root"},
              "seeds": judged["seeds"], "dataset": judged["dataset"], "data_source": first.data.info.get("source"),
              "final_acc_mean": judged["final_acc"], "final_acc_std": judged["final_acc_std"],
              "best_acc_mean": judged["best_acc"], "epochs": judged["epochs"],
              "runs": [{"seed": seed, **{key: result.summary.get(key) for key in SUMMARY_NUMBERS},
                        "history": [{key: row.get(key) for key in HISTORY_KEYS} for row in result.history]}
                       for seed, result in zip(judged["seeds"], runs.results)]}
    if "final_superclass_acc" in judged:
        record["final_superclass_acc_mean"] = judged["final_superclass_acc"]
    evaluation = first.evaluation
    names = first.data.class_names
    pairs = mistakes.top_confusions(evaluation["confusion"], names, confusions)
    labels, predicted, confidence = mistakes.predictions(first.model, first.data.test_loader,
                                                         next(first.model.parameters()).device)
    test_images = first.data.test_split.images
    # The pictures are shown as published: the padding that brought them to the model's size comes off.
    crop = max(0, int(test_images.shape[-1]) - fashion_mnist.SIDE) // 2 if record["dataset"] == fashion_mnist.NAME else 0
    record.update(
        class_names=names, confusion=evaluation["confusion"].tolist(), per_class=evaluation["per_class"],
        top_confusions=pairs.drop(columns=["true_id", "pred_id"]).to_dict(orient="records"),
        mistakes=mistakes.examples(test_images, labels, predicted, confidence, pairs, per_pair, crop=crop))
    return record


def train_presets(plan: dict[str, dict], out_dir, data_root: Optional[str] = None) -> dict:
    """`training_record` for every entry of `plan` into `out_dir/<name>`; {"records": {name: record}}, what
    `save` keeps and a chapter renders. An entry is {"seeds": [...], "overrides": {...}} and trains the preset
    of its name, or names its preset with "preset" (variants of one preset: {"label smoothing 0.1":
    {"preset": "fmnist-simplecnn", "overrides": {"label_smoothing": 0.1}, "seeds": [0, 1, 2]}})."""
    common = {"progress": False, "save_checkpoints": False, **({"data_root": data_root} if data_root else {})}
    return {"records": {name: training_record(step.get("preset", name), step["seeds"],
                                              {**common, **step.get("overrides", {})},
                                              Path(out_dir) / name.replace(" ", "_"))
                        for name, step in plan.items()}}


def summary_table(records: dict) -> "pd.DataFrame":
    """One row per entry: final test accuracy (mean ± std over seeds; no spread with one seed), the best
    epoch's (shown, never judged), epochs trained of the preset's recipe, and the seeds."""
    import pandas as pd

    rows = {}
    for name, record in records.items():
        recipe = presets.resolve(record["preset"], {}).epochs
        spread = f" ± {record['final_acc_std']:.4f}" if len(record["seeds"]) > 1 else " (1 seed)"
        rows[name] = {
            "final test accuracy": f"{record['final_acc_mean']:.4f}{spread}",
            "best epoch's accuracy": f"{record['best_acc_mean']:.4f}",
            "epochs (of the recipe's)": f"{record['epochs']} of {recipe:,}",
            "seeds": len(record["seeds"]),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def versus(records: dict, ours: str, other: str, key: str = "final_acc") -> dict:
    """Entry `ours` against entry `other` on `key` ("final_acc" or "final_superclass_acc"), mean over seeds:
    the difference, the seeds' spread and the verdict of `measure.compare_means`, with a sentence that says
    it in words."""
    def mean_std(name: str) -> tuple[float, float]:
        record = records[name]
        if key == "final_acc":
            return record["final_acc_mean"], record["final_acc_std"]
        values = [run[key] for run in record["runs"]]
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    (mean, std), (other_mean, other_std) = mean_std(ours), mean_std(other)
    found = compare_means(mean, std, other_mean, other_std)
    counts = sorted({len(records[ours]["seeds"]), len(records[other]["seeds"])})
    basis = " and ".join(str(count) for count in counts) + (" seeds" if counts != [1] else " seed")
    label = "superclass accuracy" if key == "final_superclass_acc" else "test accuracy"
    verdict = {"better": f"{ours} is better than {other}.", "worse": f"{ours} is worse than {other}.",
               "no clear difference": "no clear difference: the gap is within the spread of the seeds."}
    found["sentence"] = (f"{ours} {mean:.4f} against {other} {other_mean:.4f} (final {label}, mean over "
                         f"{basis}): difference {found['difference']:+.4f}, spread {found['spread']:.4f}; "
                         f"{verdict[found['verdict']]}")
    return found


def runs_metrics(records: dict) -> dict:
    """The `fmnist` entry of a chapter's metrics.json: per entry, the mean final accuracy over its seeds (what
    claims judge), its spread, the best accuracy (shown, never judged), the epochs trained, the epochs of the
    preset's recipe and the seeds."""
    runs = {name: {"final_acc": record["final_acc_mean"], "final_acc_std": record["final_acc_std"],
                   "best_acc": record["best_acc_mean"], "epochs": record["epochs"],
                   "recipe_epochs": presets.resolve(record["preset"], {}).epochs, "seeds": record["seeds"]}
            for name, record in records.items()}
    return {"real_data": all(record.get("dataset") == fashion_mnist.NAME for record in records.values()),
            "runs": runs}


def save(record: dict, folder, name: str, command: str, environment: dict) -> Path:
    """Write `folder/<name>.json`: the record with the command that made it, its provenance and the machine's
    load average at the end (was it quiet?)."""
    path = Path(folder) / f"{name}.json"
    payload = {"command": command, "environment": environment, "load_average_at_end": os.getloadavg(), **record}
    # Compact: the mistakes' pictures are thousands of small numbers.
    atomic_write_text(path, json.dumps(payload, separators=(",", ":")) + "\n")
    return path


def load(path) -> dict:
    """A saved record; a one-line error naming the command that makes it when it is missing."""
    from ..errors import UsageError

    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise UsageError(f"{path} is missing or unreadable: make it with scripts/book.sh --edition cpu") from None


def describe(saved: dict) -> str:
    """Where a record came from, in one paragraph: the command, commit, date, device and how busy the machine
    was; or that the runs were made just now and not saved."""
    environment = saved.get("environment")
    if not environment:
        return "These runs were made by this execution of the chapter (not saved as a record)."
    from .. import provenance

    load = saved.get("load_average_at_end")
    busy = f"; load average {load[0]:.1f} at the end" if load else ""
    return (f"Made by `{saved['command']}` at commit {provenance.short_commit(environment)}"
            f" on "
            f"{str(environment.get('start_utc', '?'))[:16]}, "
            f"{environment.get('device', '?')} ({environment.get('cpu', '?')}){busy}.")
