"""`classes`: which of a dataset's classes a run keeps, read from text such as "5-9" or "5,6,7,8,9".

For a dataset in `CLASS_SUBSET_DATASETS`, the in-memory builder (`data.in_memory.select`) keeps the images
of those classes in both splits and labels them 0..k-1 in ascending order of their ids (`keep_classes`);
`config.validate` checks the text before any data is read.
"""
from __future__ import annotations

import torch

from ..errors import UsageError
from .cifar import CifarSplit

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


def keep_classes(split: CifarSplit, kept: list[int]) -> CifarSplit:
    """The images of the classes `kept` (ascending ids), labelled 0..k-1 in that order (what a k-class head
    predicts). Where the split has superclasses, their map follows: the superclasses of the kept classes,
    renumbered 0..m-1 in order, so that the superclass accuracy still counts a sandal taken for a sneaker as
    right; the superclasses no kept class belongs to are dropped."""
    kept_tensor = torch.tensor(kept, dtype=torch.long)
    relabel = torch.full((len(split.class_names),), -1, dtype=torch.long)
    relabel[kept_tensor] = torch.arange(len(kept))
    index = torch.nonzero(relabel[split.labels] >= 0).flatten()
    labels = relabel[split.labels[index]]
    names = [split.class_names[i] for i in kept]
    extra = {**split.extra, "kept_classes": list(kept)}
    if split.coarse_of_fine is None:
        return CifarSplit(split.images[index], labels, names, source=split.source, extra=extra)
    coarse_of_kept = split.coarse_of_fine[kept_tensor]
    coarse_ids = sorted(set(coarse_of_kept.tolist()))
    renumber = torch.full((int(coarse_of_kept.max()) + 1,), -1, dtype=torch.long)
    renumber[torch.tensor(coarse_ids)] = torch.arange(len(coarse_ids))
    coarse_of_fine = renumber[coarse_of_kept]
    extra["coarse_of_fine"] = coarse_of_fine
    return CifarSplit(split.images[index], labels, names, coarse_labels=coarse_of_fine[labels],
                      coarse_names=[split.coarse_names[i] for i in coarse_ids], source=split.source, extra=extra)
