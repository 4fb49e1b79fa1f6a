"""Tables over real-data records (`record.RecordSet`): the fine and superclass accuracy of several variants
(chapter 4) and a model zoo's accuracy beside its size and batch-1 latency (chapter 5).

Both read the per-seed values the records keep, so every mean comes with its spread over the same seeds
(`stats.summarize`: the sample standard deviation, NaN with one seed).
"""
from __future__ import annotations

import pandas as pd

from ..errors import UsageError
from . import stats
from .record import FINAL_ACCURACY, FINAL_SUPERCLASS_ACCURACY, RecordSet


def _std(summary: stats.Summary) -> float:
    return float("nan") if summary.std is None else summary.std


def fine_and_superclass(shown: RecordSet) -> pd.DataFrame:
    """One row per label: final fine (top-1) and superclass accuracy, mean and standard deviation over its
    seeds (NaN with one seed), and the gap between them, the share of test images whose class is wrong but
    whose superclass is right (each seed's own gap, averaged)."""
    rows = {}
    for label in shown.labels:
        if not shown.has(label, FINAL_SUPERCLASS_ACCURACY):
            raise UsageError(f"the records of {label!r} hold no {FINAL_SUPERCLASS_ACCURACY}; train it again with a "
                             f"dataset that has superclasses (fashion_mnist, cifar100)")
        fine, coarse = shown.get(label, FINAL_ACCURACY), shown.get(label, FINAL_SUPERCLASS_ACCURACY)
        if fine.seeds != coarse.seeds:
            raise UsageError(f"the records of {label!r} ran different seeds for the two accuracies")
        fine_summary, coarse_summary = fine.summary, coarse.summary
        gap = stats.summarize([c - f for c, f in zip(coarse.values, fine.values)])
        rows[label] = {"fine accuracy": fine_summary.mean, "fine std": _std(fine_summary),
                       "superclass accuracy": coarse_summary.mean, "superclass std": _std(coarse_summary),
                       "gap": gap.mean, "seeds": fine.n}
    return pd.DataFrame.from_dict(rows, orient="index")


def accuracy_and_latency(shown: RecordSet, sizes: pd.DataFrame, latency: pd.DataFrame) -> pd.DataFrame:
    """One row per trained model (the labels of `shown`, which name the models): parameters (`M params` of
    `sizes`), batch-1 median latency (`p50_ms` of `latency`), and the final test accuracy, mean (`top1`) and
    standard deviation (`top1 std`) over its seeds; the columns `plots.accuracy_against_latency` reads. Sorted
    by accuracy, best first."""
    missing = sorted(set(shown.labels) - set(sizes.index) | set(shown.labels) - set(latency.index))
    if missing:
        raise UsageError(f"no size or latency for {', '.join(missing)}: measure every model the record holds")
    rows = {}
    for label in shown.labels:
        summary = shown.get(label, FINAL_ACCURACY).summary
        rows[label] = {"top1": summary.mean, "top1 std": _std(summary), "seeds": summary.n}
    accuracy = pd.DataFrame.from_dict(rows, orient="index")
    table = sizes[["M params"]].join(latency[["p50_ms"]], how="inner").join(accuracy, how="inner")
    return table.astype({"M params": float, "p50_ms": float}).sort_values("top1", ascending=False)
