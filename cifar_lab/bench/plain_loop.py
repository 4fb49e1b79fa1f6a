"""The plain training loop the benchmarks time the engine against: what most PyTorch tutorials write.

Per batch: move it to the device, forward, cross-entropy (with the recipe's label smoothing), zero the
gradients, backward, optimizer step, then the scheduler's step when there is one. The batches come from
wherever the caller draws them (torchvision's `DataLoader` in the benchmarks); there is no gradient
accumulation, no clipping, no device-resident data and no host sync per batch (the loss is summed on the
device and read once, at the end).

`PlainLoop()` is that loop as written: fp32, contiguous memory format. `PlainLoop.informed(device)` is the same
loop with the two switches PyTorch's performance tuning guide advises for convolutional networks, each where
the hardware supports it: bf16 autocast where the device runs bf16 natively (`engine.runtime.resolve_precision`
with "auto") and the channels_last memory format.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Callable, Iterable, Optional

import torch
import torch.nn.functional as F

from ..engine.runtime import autocast, resolve_precision
from ..errors import UsageError

PRECISIONS = ("fp32", "bf16")  # fp16 would need a GradScaler, which the plain loop does not have


@dataclasses.dataclass(frozen=True)
class PlainLoop:
    precision: str = "fp32"
    channels_last: bool = False
    label_smoothing: float = 0.0

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise UsageError(f"the plain loop trains in {' or '.join(PRECISIONS)}, not {self.precision}")

    @classmethod
    def informed(cls, device, label_smoothing: float = 0.0) -> "PlainLoop":
        """The plain loop with bf16 autocast (where native) and channels_last."""
        native = resolve_precision("auto", torch.device(device)) == "bf16"
        return cls("bf16" if native else "fp32", True, label_smoothing)

    def describe(self) -> str:
        return f"plain loop, {self.precision}, {'channels_last' if self.channels_last else 'contiguous'}"

    def record(self) -> dict:
        """The settings as the benchmarks record them."""
        return {"loop": "plain", **dataclasses.asdict(self)}

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model in this loop's memory format."""
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def _inputs(self, images: torch.Tensor, device) -> torch.Tensor:
        images = images.to(device)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def train(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable, device,
              scheduler=None, steps: Optional[int] = None, on_step: Optional[Callable[[], None]] = None) -> dict:
        """Train on `batches` (all of them, or the first `steps`); {"batches", "images", "loss"} (the mean
        training loss over the images)."""
        device = torch.device(device)
        model.train()
        loss_sum = torch.zeros((), device=device)
        count = images_seen = 0
        for images, labels in itertools.islice(batches, steps):
            images, labels = self._inputs(images, device), labels.to(device)
            with autocast(device, self.precision):
                logits = model(images)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            loss_sum += loss.detach() * labels.shape[0]
            count += 1
            images_seen += labels.shape[0]
            if on_step is not None:
                on_step()
        return {"batches": count, "images": images_seen, "loss": float(loss_sum) / max(1, images_seen)}

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, batches: Iterable, device) -> dict:
        """Top-1 accuracy over `batches`: {"correct", "images", "accuracy"}."""
        device = torch.device(device)
        model.eval()
        correct = torch.zeros((), dtype=torch.long, device=device)
        images_seen = 0
        for images, labels in batches:
            with autocast(device, self.precision):
                logits = model(self._inputs(images, device))
            correct += (logits.argmax(1) == labels.to(device)).sum()
            images_seen += labels.shape[0]
        return {"correct": int(correct), "images": images_seen, "accuracy": int(correct) / max(1, images_seen)}
