"""`classes`: which of a dataset's classes a run keeps, read from text such as "5-9" or "5,6,7,8,9".

The builder of a dataset in `CLASS_SUBSET_DATASETS` keeps the images of those classes in both splits and
labels them 0..k-1 in ascending order of their ids (`data.fashion_mnist.keep_classes`); `config.validate`
checks the text before any data is read.
"""
from __future__ import annotations

from ..errors import UsageError

# Datasets whose builder keeps a subset of classes (`classes`), with their class counts.
CLASS_SUBSET_DATASETS = {"fashion_mnist": 10}


def class_ids(dataset: str, classes: str) -> list[int]:
    """The class ids `classes` keeps, ascending (label i of the run is the i-th of them); [] = all.

    Accepts ids and ranges separated by commas: "5-9", "5,6,7,8,9", "0-2,7". A one-line UsageError for text
    that is none of these, an id outside the dataset's classes, or a dataset that cannot keep a subset.
    """
    text = classes.strip()
    if not text:
        return []
    if dataset not in CLASS_SUBSET_DATASETS:
        raise UsageError(f"classes={classes} is supported for dataset "
                         f"{', '.join(CLASS_SUBSET_DATASETS)} only, not {dataset}; remove the setting")
    count = CLASS_SUBSET_DATASETS[dataset]
    ids: list[int] = []
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.strip().isdigit() or (dash and not high.strip().isdigit()):
            raise UsageError(f"classes={classes!r} is not a list of class ids; write ids and ranges such "
                             f"as 5-9 or 5,6,7,8,9")
        first, last = int(low), int(high) if dash else int(low)
        if first > last:
            raise UsageError(f"classes={classes!r}: the range {part.strip()} runs backwards; write it "
                             f"as {last}-{first}")
        ids += range(first, last + 1)
    if len(set(ids)) != len(ids):
        raise UsageError(f"classes={classes!r} names a class twice; name each class once")
    if max(ids) >= count:
        raise UsageError(f"classes={classes!r}: {dataset} has classes 0-{count - 1}, not "
                         f"{max(ids)}")
    if len(ids) < 2:
        raise UsageError(f"classes={classes!r} keeps one class; a classifier needs at least 2")
    return sorted(ids)
