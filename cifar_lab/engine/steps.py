"""What one training batch does. `TrainStep` declares the interface the training loop drives; `DenseStep`
trains on every sample, and AST's `SparseStep` (`engine/sparse_step.py`) extends it.

A step owns the optimizer's cadence: it calls `optimizer.step()` once per `grad_accum` micro-batches and
steps the learning-rate schedule right after, so a schedule planned in optimizer steps ends where it should
whatever the accumulation. A step never reads a value back to the host in the hot path: losses and counts
accumulate in device tensors that the loop reads once per epoch (and every `log_every` batches for the
progress bar).
"""
from __future__ import annotations

import abc
import math
from typing import Optional

import torch
import torch.nn as nn

from .runtime import autocast


class TrainStep(abc.ABC):
    """The interface between the training loop and what a batch does."""

    @abc.abstractmethod
    def start_epoch(self, epoch: int) -> None: ...

    @abc.abstractmethod
    def train_batch(self, images: torch.Tensor, labels: torch.Tensor) -> None: ...

    @abc.abstractmethod
    def running(self) -> dict:
        """Readings for the progress bar (a host sync: call it rarely)."""

    @abc.abstractmethod
    def end_epoch(self) -> dict:
        """Finish the epoch (apply leftover gradients) and return its row of metrics."""

    @abc.abstractmethod
    def summary(self, history: list[dict]) -> dict:
        """Run-level fields for summary.json."""

    @abc.abstractmethod
    def artifacts(self, out_dir) -> dict:
        """Extra results of the run (written into `out_dir` when given), for `RunResult.extra`."""

    @abc.abstractmethod
    def state_dict(self) -> dict: ...

    @abc.abstractmethod
    def load_state_dict(self, state: dict) -> None: ...


def planned_optimizer_steps(config, batches_per_epoch: int) -> int:
    """Optimizer steps the whole run takes, which the learning-rate schedule is planned over.

    One step per `grad_accum` batches (the last, partial group of an epoch steps too). Packed AST trains
    only the selected share of each epoch, in full batches: that count is predicted from the target.
    """
    per_epoch = math.ceil(batches_per_epoch / config.grad_accum)
    ast = config.ast
    if not (ast.enabled and ast.pack):
        return max(1, config.epochs * per_epoch)
    packed_batches = math.ceil(ast.target * batches_per_epoch)
    sparse_epochs = max(0, config.epochs - ast.dense_epochs)
    return max(1, min(config.epochs, ast.dense_epochs) * per_epoch
               + sparse_epochs * math.ceil(packed_batches / config.grad_accum))


class DenseStep(TrainStep):
    """Forward, backward and (every `grad_accum` batches) an optimizer and schedule step, on the whole batch."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, scaler, config, device: torch.device,
                 precision: str, scheduler=None, planned_steps: Optional[int] = None):
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.planned_steps = planned_steps
        self.scaler = scaler
        self.config = config
        self.device = device
        self.precision = precision
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.micro_batches = 0
        self.optimizer_steps = 0        # over the whole run (resumed runs continue the count)
        self.start_epoch(0)

    def autocast(self):
        return autocast(self.device, self.precision)

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.loss_sum = torch.zeros((), device=self.device)
        self.correct = torch.zeros((), device=self.device, dtype=torch.long)
        self.samples_trained = 0        # samples that went through forward and backward this epoch
        self.epoch_start_steps = self.optimizer_steps

    def optimize(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Forward and backward on exactly these samples; count them; step every `grad_accum` calls."""
        self.model.train()
        with self.autocast():
            logits = self.model(images)
        loss = self.criterion(logits.float(), labels)
        scaled = loss / self.config.grad_accum
        (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        self.micro_batches += 1
        if self.micro_batches % self.config.grad_accum == 0:
            self.apply_gradients()
        self.loss_sum += loss.detach() * labels.shape[0]
        self.correct += (logits.detach().argmax(1) == labels).sum()
        self.samples_trained += labels.shape[0]

    def apply_gradients(self) -> None:
        if self.config.grad_clip > 0:
            if self.scaler is not None:
                self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.micro_batches = 0
        self.optimizer_steps += 1
        # A predicted plan (packed AST) may be shorter than the run: hold the schedule's final value then.
        if self.scheduler is not None and (self.planned_steps is None or self.optimizer_steps <= self.planned_steps):
            self.scheduler.step()

    def train_batch(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.optimize(images, labels)

    def running(self) -> dict:
        seen = max(1, self.samples_trained)
        return {"loss": f"{float(self.loss_sum) / seen:.3f}", "acc": f"{float(self.correct) / seen:.3f}"}

    def end_epoch(self) -> dict:
        if self.micro_batches:  # the epoch's last, partial group of accumulated gradients
            self.apply_gradients()
        seen = max(1, self.samples_trained)
        return {"train_loss": float(self.loss_sum) / seen, "train_acc": float(self.correct) / seen,
                "samples_trained": self.samples_trained,
                "optimizer_steps": self.optimizer_steps - self.epoch_start_steps}

    def summary(self, history: list[dict]) -> dict:
        return {"optimizer_steps": self.optimizer_steps}

    def artifacts(self, out_dir) -> dict:
        return {}

    def state_dict(self) -> dict:
        return {"micro_batches": self.micro_batches, "optimizer_steps": self.optimizer_steps}

    def load_state_dict(self, state: dict) -> None:
        self.micro_batches = state.get("micro_batches", 0)
        self.optimizer_steps = state.get("optimizer_steps", 0)
