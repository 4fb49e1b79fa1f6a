"""Tables over `cifar_lab.real_data` records: the fine and superclass accuracy of several variants (chapter 4)
and a model zoo's accuracy beside its size and batch-1 latency (chapter 5).

Both read the per-seed numbers a record keeps (`runs[i]["final_acc"]`, `runs[i]["final_superclass_acc"]`),
so every mean comes with its spread over the same seeds.
"""
from __future__ import annotations

import statistics

import pandas as pd

from ..errors import UsageError


def _per_seed(record: dict, key: str, name: str) -> list[float]:
    values = [run.get(key) for run in record["runs"]]
    if any(value is None for value in values):
        raise UsageError(f"the record of '{name}' has no {key} for every seed; train it again with a dataset "
                         f"that has superclasses (fashion_mnist, cifar100)")
    return [float(value) for value in values]


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else float("nan")


def fine_and_superclass(records: dict) -> pd.DataFrame:
    """One row per entry: final fine (top-1) and superclass accuracy, mean and standard deviation over its
    seeds (NaN with one seed), and the gap between them, the share of test images whose class is wrong but
    whose superclass is right."""
    rows = {}
    for name, record in records.items():
        fine = _per_seed(record, "final_acc", name)
        coarse = _per_seed(record, "final_superclass_acc", name)
        rows[name] = {"fine accuracy": statistics.fmean(fine), "fine std": _std(fine),
                      "superclass accuracy": statistics.fmean(coarse), "superclass std": _std(coarse),
                      "gap": statistics.fmean(c - f for c, f in zip(coarse, fine)), "seeds": len(fine)}
    return pd.DataFrame.from_dict(rows, orient="index")


def accuracy_and_latency(records: dict, sizes: pd.DataFrame, latency: pd.DataFrame) -> pd.DataFrame:
    """One row per trained model: parameters (`M params` of `sizes`), batch-1 median latency (`p50_ms` of
    `latency`), and the final test accuracy, mean (`top1`) and standard deviation (`top1 std`) over its seeds;
    the columns `plots.accuracy_against_latency` reads. Sorted by accuracy, best first."""
    missing = sorted(set(records) - set(sizes.index) | set(records) - set(latency.index))
    if missing:
        raise UsageError(f"no size or latency for {', '.join(missing)}: measure every model the record holds")
    accuracy = pd.DataFrame.from_dict(
        {name: {"top1": record["final_acc_mean"], "top1 std": _std(_per_seed(record, "final_acc", name)),
                "seeds": len(record["seeds"])} for name, record in records.items()}, orient="index")
    table = sizes[["M params"]].join(latency[["p50_ms"]], how="inner").join(accuracy, how="inner")
    return table.astype({"M params": float, "p50_ms": float}).sort_values("top1", ascending=False)
