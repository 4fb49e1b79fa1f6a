"""One recipe trained over several seeds, and the record a published accuracy is judged on.

torchvision's classification references and airbench report the accuracy of the final epoch, and a figure
compared with another one is worth its spread over seeds. `train_seeds(config, [0, 1, 2], out_dir)` trains
`config` once per seed (into `out_dir/seed<N>`, or `out_dir` itself for a single seed) and returns the runs
with their `record`, the dict `reproduce.CLAIMS` reads:

- `final_acc`: the final epoch's test accuracy, mean over the seeds (what a claim judges);
- `final_acc_std`: its sample standard deviation over the seeds (0.0 for one seed);
- `best_acc`: the best epoch's test accuracy, mean over the seeds (shown beside, never judged: the best
  epoch is chosen on the test split);
- `epochs`: the epochs every seed trained (the fewest of them);
- `seeds`: the seeds, a list;
- `dataset`: the dataset they trained on (the config's name: "cifar10", "synthetic", ...);
- `device`: where the runs trained (the trainer's device name: a CUDA device's name, "Apple MPS" or "cpu (...)");
- every other number of the runs' `summary.json`, mean over the seeds (top-5, activation rate, compute, time).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError


@dataclass
class SeedRuns:
    results: list          # engine RunResult per seed, in the order of `seeds`
    record: dict           # the judged record (see the module docstring)

    @property
    def first(self):
        """The first seed's run: its curves, confusion matrix and model are what a chapter plots."""
        return self.results[0]


def train_seeds(config, seeds, out_dir) -> SeedRuns:
    """Train `config` once per seed of `seeds` (the config's own seed is replaced) and summarise the runs."""
    from dataclasses import replace

    from ..engine import train

    seeds = [int(seed) for seed in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"seeds must be distinct integers, at least one (got {seeds}); e.g. seeds=[0, 1, 2]")
    folders = [seed_folder(out_dir, seed, seeds) for seed in seeds]
    results = [train(replace(config, seed=seed), folder) for seed, folder in zip(seeds, folders)]
    return SeedRuns(results, record([result.summary for result in results], seeds))


def seed_folder(out_dir, seed, seeds) -> Path:
    """Where `train_seeds` puts the run of `seed` among `seeds`: `out_dir/seed<N>`, or `out_dir` for one seed
    (`seed` may be a placeholder such as "{seed}", for a path filled in per run)."""
    return Path(out_dir) if len(list(seeds)) == 1 else Path(out_dir) / f"seed{seed}"


def record(summaries: list[dict], seeds: list[int]) -> dict:
    """The record of several runs of one recipe (the keys of the module docstring)."""
    finals = [summary["final_acc"] for summary in summaries]
    numbers = {key for summary in summaries for key, value in summary.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)}
    found = {key: statistics.fmean(summary[key] for summary in summaries) for key in sorted(numbers)
             if all(isinstance(summary.get(key), (int, float)) for summary in summaries)}
    found.update(
        final_acc=statistics.fmean(finals),
        final_acc_std=statistics.stdev(finals) if len(finals) > 1 else 0.0,
        best_acc=statistics.fmean(summary["best_acc"] for summary in summaries),
        epochs=min(summary["epochs"] for summary in summaries),
        seeds=list(seeds),
        device=summaries[0].get("device"),
        dataset=summaries[0].get("dataset"),
    )
    return found
