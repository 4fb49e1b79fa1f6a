"""Evaluation: loss, top-1, top-5, per-class accuracy, confusion matrix, and superclass accuracy."""
from __future__ import annotations

import math
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

    Nothing float64 lives on the device (Apple's MPS has no float64): the counts are int64 on the device, and
    the loss is summed per batch in float32 there, then totalled in double precision on the host (`LossSum`).
    """
    import contextlib

    model.eval()
    autocast_ctx = autocast_ctx or contextlib.nullcontext
    loss_sum = LossSum(device)
    top5 = torch.zeros((), device=device, dtype=torch.long)
    confusion = torch.zeros(num_classes * num_classes, device=device, dtype=torch.long)
    for images, labels in loader:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with autocast_ctx():
            logits = model(images)
        logits = logits.float()
        loss_sum.add(F.cross_entropy(logits, labels, reduction="sum"))
        k = min(5, num_classes)
        top5 += (logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1).sum()
        confusion += torch.bincount(labels * num_classes + logits.argmax(1), minlength=num_classes ** 2)
    loss_total = loss_sum.host_total()
    if reduce is not None:
        loss_tensor = loss_sum.total()
        for tensor in (loss_tensor, top5, confusion):
            reduce(tensor)
        loss_total = float(loss_tensor)
    confusion = confusion.view(num_classes, num_classes).cpu()
    total = int(confusion.sum())
    per_class_total = confusion.sum(1).clamp(min=1)
    result = {
        "loss": loss_total / max(1, total),
        "top1": float(confusion.diag().sum()) / max(1, total),
        "top5": float(top5) / max(1, total),
        "per_class": [hit / count for hit, count in zip(confusion.diag().tolist(), per_class_total.tolist())],
        "confusion": confusion,
        "samples": total,
    }
    if coarse_of_fine is not None:
        result["superclass_top1"] = superclass_accuracy(confusion, coarse_of_fine.cpu())
    return result


class LossSum:
    """A sum of per-batch float32 loss sums on the device, totalled in double precision on the host.

    The batch sums wait in a list of device tensors (no host sync per batch) and are read, a few hundred at a
    time, into a Python float with `math.fsum` (exactly rounded). No float64 tensor is created anywhere, so the
    same code runs on Apple's MPS, which has no float64.
    """

    FLUSH_EVERY = 256

    def __init__(self, device):
        self.device = torch.device(device)
        self.pending: list[torch.Tensor] = []
        self.host = 0.0

    def add(self, batch_sum: torch.Tensor) -> None:
        self.pending.append(batch_sum.detach().to(torch.float32).reshape(1))
        if len(self.pending) >= self.FLUSH_EVERY:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.host = math.fsum([self.host, *torch.cat(self.pending).tolist()])
            self.pending = []

    def host_total(self) -> float:
        self._flush()
        return self.host

    def total(self) -> torch.Tensor:
        """The sum as a float32 tensor on the device (what an all-reduce across ranks takes)."""
        self._flush()
        return torch.tensor(self.host, dtype=torch.float32, device=self.device)


def superclass_accuracy(confusion: torch.Tensor, coarse_of_fine: torch.Tensor) -> float:
    """Accuracy when a prediction counts as right if it lands in the true class's superclass."""
    same = coarse_of_fine[:, None] == coarse_of_fine[None, :]
    return float(confusion[same].sum()) / max(1, int(confusion.sum()))


def coarse_confusion(confusion: torch.Tensor, coarse_of_fine: torch.Tensor) -> torch.Tensor:
    """Fold a fine confusion matrix into superclass x superclass counts."""
    groups = int(coarse_of_fine.max()) + 1
    onehot = F.one_hot(coarse_of_fine, groups).to(confusion.dtype)
    return onehot.T @ confusion @ onehot
