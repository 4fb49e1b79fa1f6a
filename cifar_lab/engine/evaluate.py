"""Evaluation: loss, top-1, top-5, per-class accuracy, confusion matrix, and superclass accuracy."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, num_classes: int, device, autocast_ctx=None,
             coarse_of_fine: Optional[torch.Tensor] = None, reduce=None) -> dict:
    """One pass over `loader`; all counting stays on the device and is read once at the end.

    Several processes: each rank evaluates its own samples (no sample twice) and `reduce` (a sum over ranks,
    `distributed.all_reduce_sum`) adds up the loss sum, the top-5 count and the confusion matrix before
    anything is derived from them, so every figure - top-1, per-class accuracy included - is exactly what
    one process evaluating the whole split counts (the loss up to the rounding of its float32 per-batch sums).
    """
    import contextlib

    model.eval()
    autocast_ctx = autocast_ctx or contextlib.nullcontext
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    top5 = torch.zeros((), device=device, dtype=torch.long)
    confusion = torch.zeros(num_classes * num_classes, device=device, dtype=torch.long)
    for images, labels in loader:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with autocast_ctx():
            logits = model(images)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum")
        k = min(5, num_classes)
        top5 += (logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1).sum()
        confusion += torch.bincount(labels * num_classes + logits.argmax(1), minlength=num_classes ** 2)
    if reduce is not None:
        for tensor in (loss_sum, top5, confusion):
            reduce(tensor)
    confusion = confusion.view(num_classes, num_classes).cpu()
    total = int(confusion.sum())
    per_class_total = confusion.sum(1).clamp(min=1)
    result = {
        "loss": float(loss_sum) / max(1, total),
        "top1": float(confusion.diag().sum()) / max(1, total),
        "top5": float(top5) / max(1, total),
        "per_class": (confusion.diag().double() / per_class_total).tolist(),
        "confusion": confusion,
        "samples": total,
    }
    if coarse_of_fine is not None:
        result["superclass_top1"] = superclass_accuracy(confusion, coarse_of_fine.cpu())
    return result


def superclass_accuracy(confusion: torch.Tensor, coarse_of_fine: torch.Tensor) -> float:
    """Accuracy when a prediction counts as right if it lands in the true class's superclass."""
    same = coarse_of_fine[:, None] == coarse_of_fine[None, :]
    return float(confusion[same].sum()) / max(1, int(confusion.sum()))


def coarse_confusion(confusion: torch.Tensor, coarse_of_fine: torch.Tensor) -> torch.Tensor:
    """Fold a fine confusion matrix into superclass x superclass counts."""
    groups = int(coarse_of_fine.max()) + 1
    onehot = F.one_hot(coarse_of_fine, groups).to(confusion.dtype)
    return onehot.T @ confusion @ onehot
