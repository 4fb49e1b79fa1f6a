"""One recipe trained over several seeds, and the records a published accuracy is judged on.

torchvision's classification references and airbench report the accuracy of the final epoch, and a figure
compared with another one is worth its spread over seeds. `train_seeds(config, [0, 1, 2], out_dir)` trains
`config` once per seed (into `out_dir/seed<N>`, or `out_dir` itself for a single seed) and returns the runs.

`records(label, summaries, seeds, ...)` turns the runs' summaries into typed `record.Record`s, one per measured
quantity: the final epoch's test accuracy (`record.FINAL_ACCURACY`, what a claim judges), the best epoch's
(`record.BEST_ACCURACY`: chosen on the test split, shown beside and never judged), the final superclass accuracy
where the dataset has superclasses, and the training seconds; each with the seeds, the epochs and optimizer steps
of every seed, the data it ran on and the provenance. `SeedRuns.records` does it for `train_seeds`' runs.

`record(summaries, seeds)` is the same runs as one dict of means (the `runs.<preset>` entry of a chapter's
metrics.json): `final_acc` and its sample standard deviation `final_acc_std` (0.0 for one seed), `best_acc`,
`epochs` (the fewest any seed trained), `seeds`, `dataset`, `device`, and the mean of every other number of the
summaries. Means and deviations come from `cifar_lab.book.stats`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from .. import provenance
from ..errors import UsageError
from . import stats
from .record import (BEST_ACCURACY, FINAL_ACCURACY, FINAL_SUPERCLASS_ACCURACY, FRACTION, SECONDS, TRAINING_TIME,
                     Record, provenance_fields)

# summary.json key -> (measured quantity, unit) of the records every training over seeds gives
QUANTITIES = {
    "final_acc": (FINAL_ACCURACY, FRACTION),
    "best_acc": (BEST_ACCURACY, FRACTION),
    "final_superclass_acc": (FINAL_SUPERCLASS_ACCURACY, FRACTION),
    "train_seconds": (TRAINING_TIME, SECONDS),
}


@dataclass
class SeedRuns:
    results: list          # engine RunResult per seed, in the order of `seeds`
    seeds: list            # the seeds, in that order

    @property
    def first(self):
        """The first seed's run: its curves, confusion matrix and model are what a chapter plots."""
        return self.results[0]

    @property
    def summaries(self) -> list[dict]:
        return [result.summary for result in self.results]

    @property
    def record(self) -> dict:
        """The runs as a dict of means (`record`), for a chapter's metrics.json."""
        return record(self.summaries, self.seeds)

    def records(self, label: str, command: Optional[str] = None, details: Optional[dict] = None,
                more: Optional[dict] = None) -> list[Record]:
        """The typed records of these runs under `label` (`records`), stamped with the first run's
        environment.json (or this process's provenance for runs without a folder)."""
        first = self.first
        environment = (provenance.read(first.out_dir) if first.out_dir is not None else None) \
            or provenance.collect()
        return records(label, self.summaries, self.seeds, environment=environment, command=command,
                       run_folder=first.out_dir, recipe_epochs=recipe_epochs(first.config), details=details,
                       more=more)


def recipe_epochs(config) -> Optional[int]:
    """The epochs the config's preset asks for, before any override (None without a preset)."""
    from .. import presets

    if not config.preset:
        return None
    try:
        return presets.resolve(config.preset).epochs
    except UsageError:
        return None


def train_seeds(config, seeds, out_dir) -> SeedRuns:
    """Train `config` once per seed of `seeds` (the config's own seed is replaced) and keep the runs."""
    from dataclasses import replace

    from ..engine import train

    seeds = check_seeds(seeds)
    folders = [seed_folder(out_dir, seed, seeds) if out_dir is not None else None for seed in seeds]
    results = [train(replace(config, seed=seed), folder) for seed, folder in zip(seeds, folders)]
    return SeedRuns(results, seeds)


def check_seeds(seeds) -> list[int]:
    seeds = [int(seed) for seed in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"seeds must be distinct integers, at least one (got {seeds}); e.g. seeds=[0, 1, 2]")
    return seeds


def seed_folder(out_dir, seed, seeds) -> Path:
    """Where `train_seeds` puts the run of `seed` among `seeds`: `out_dir/seed<N>`, or `out_dir` for one seed
    (`seed` may be a placeholder such as "{seed}", for a path filled in per run)."""
    return Path(out_dir) if len(list(seeds)) == 1 else Path(out_dir) / f"seed{seed}"


def records(label: str, summaries: Sequence[dict], seeds: Sequence[int], *, environment: Optional[dict],
            command: Optional[str], run_folder=None, recipe_epochs: Optional[int] = None,
            details: Optional[dict] = None, train_images: Optional[int] = None,
            more: Optional[dict] = None) -> list[Record]:
    """One `Record` per quantity of `QUANTITIES` (and of `more`, summary key -> (measured, unit)) that every
    summary holds, over `seeds` (one summary each, in that order). `train_images` overrides the summaries'
    `train_samples` (the images of one rank's shard are not the images the runs drew from)."""
    seeds = check_seeds(seeds)
    if len(summaries) != len(seeds):
        raise UsageError(f"record {label!r}: {len(summaries)} runs for {len(seeds)} seeds")
    first = summaries[0]
    steps = [summary.get("optimizer_steps") for summary in summaries]
    common = dict(
        seeds=seeds, dataset=first.get("dataset"), data_source=first.get("data_source"),
        train_images=train_images if train_images is not None else first.get("train_samples"),
        test_images=first.get("test_samples"),
        epochs=[summary["epochs"] for summary in summaries], recipe_epochs=recipe_epochs,
        optimizer_steps=steps if all(isinstance(s, int) for s in steps) else (),
        **provenance_fields(environment, command, run_folder), details=dict(details or {}))
    if first.get("device"):
        common["device"] = first["device"]   # the device the runs trained on, not the notebook's
    found = []
    for key, (measured, unit) in {**QUANTITIES, **(more or {})}.items():
        values = [summary.get(key) for summary in summaries]
        if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values):
            found.append(Record(label=label, measured=measured, unit=unit, values=values, **common))
    return found


def record(summaries: list[dict], seeds: list[int]) -> dict:
    """The runs of one recipe as one dict of means (the keys of the module docstring)."""
    finals = stats.summarize([summary["final_acc"] for summary in summaries])
    numbers = {key for summary in summaries for key, value in summary.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)}
    found = {key: stats.summarize([summary[key] for summary in summaries]).mean for key in sorted(numbers)
             if all(isinstance(summary.get(key), (int, float)) for summary in summaries)}
    found.update(
        final_acc=finals.mean,
        final_acc_std=finals.std if finals.std is not None else 0.0,
        best_acc=stats.summarize([summary["best_acc"] for summary in summaries]).mean,
        epochs=min(summary["epochs"] for summary in summaries),
        seeds=list(seeds),
        device=summaries[0].get("device"),
        dataset=summaries[0].get("dataset"),
    )
    return found
