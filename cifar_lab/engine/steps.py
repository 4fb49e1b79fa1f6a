"""What one training batch does. `TrainStep` declares the interface the training loop drives; `DenseStep`
trains on every sample, and AST's `SparseStep` (`engine/sparse_step.py`) extends it.

A step owns the optimizer's cadence: it calls `optimizer.step()` once per `grad_accum` micro-batches and
then moves the learning-rate schedule. The schedule is planned in the optimizer steps of dense training
(`planned_optimizer_steps`) and follows the data: after each optimizer step it stands at the point of the
epoch the run has reached. Dense training moves it by exactly one per optimizer step. Packed AST takes about
one optimizer step per 1/target scoring batches, so each step moves it by several, and the schedule ends
exactly at the end of training whatever the activation rate (a count predicted from the target would end
early or late as the controller settles). A step never reads a value back to the host in the hot path: losses and counts
accumulate in device tensors that the loop reads once per epoch (and every `log_every` batches for the
progress bar).

Under local SGD (`dist.strategy=local_sgd`) the ranks' models drift apart between periodic averages; the
end of an epoch averages them once more (`distributed.average_model`), so that the epoch is evaluated, and
its checkpoint saved, as one model, the same on every rank.
"""
from __future__ import annotations

import abc
import contextlib
import math
from typing import Optional

import torch
import torch.nn as nn

from .. import distributed
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
    """The length of the learning-rate schedule: the optimizer steps dense training of this config takes, one
    per `grad_accum` batches (the last, partial group of an epoch steps too).

    The count is in dense steps for every step kind, packed AST and Selective Backprop included, on purpose: the
    schedule is a position in the data (`DenseStep.follow_schedule`), which a packed run moves by several units
    per optimizer step, and which stands at exactly this count when the last epoch ends, however many optimizer
    steps the selected samples made. A count of the packed run's own optimizer steps, predicted from the
    target rate, would end the schedule early or late as the activation rate settles."""
    return max(1, config.epochs * math.ceil(batches_per_epoch / config.grad_accum))


class DenseStep(TrainStep):
    """Forward, backward and (every `grad_accum` batches) an optimizer and schedule step, on the whole batch."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, scaler, config, device: torch.device,
                 precision: str, scheduler=None, batches_per_epoch: Optional[int] = None):
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler              # needs `batches_per_epoch` to follow the data
        self.batches_per_epoch = batches_per_epoch
        self.scaler = scaler
        self.config = config
        self.device = device
        self.precision = precision
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.micro_batches = 0
        self.optimizer_steps = 0        # over the whole run (resumed runs continue the count)
        self.world = distributed.world_size()
        self.comm = None                # a distributed.CommCounter when the model is wrapped in DDP
        self.unsynced = False           # the last backward ran under DDP's no_sync
        # local SGD's ranks hold models of their own between averages: one average more ends every epoch
        self.average_at_epoch_end = self.world > 1 and config.dist.strategy == "local_sgd"
        self.start_epoch(0)

    def autocast(self):
        return autocast(self.device, self.precision)

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.loss_sum = torch.zeros((), device=self.device)
        self.correct = torch.zeros((), device=self.device, dtype=torch.long)
        self.samples_trained = 0        # samples that went through forward and backward this epoch
        self.batches_seen = 0           # batches the loader has given this epoch
        self.epoch_start_steps = self.optimizer_steps
        self.epoch_start_bytes = self.comm.bytes if self.comm is not None else 0

    def optimize(self, images: torch.Tensor, labels: torch.Tensor, weight: float = 1.0,
                 count: bool = True) -> None:
        """Forward and backward on exactly these samples; count them; step every `grad_accum` calls.

        `weight` multiplies this rank's mean loss before backward (AST under DDP normalises by the global
        number of active samples with it); `count=False` leaves the epoch's loss and accuracy sums alone.
        Under DDP, micro-batches that do not step run under `no_sync`: their gradients stay local and are
        all-reduced, summed, with the backward of the micro-batch that steps (PyTorch docs, DDP `no_sync`).
        """
        self.model.train()
        stepping = (self.micro_batches + 1) % self.config.grad_accum == 0
        local = not stepping and hasattr(self.model, "no_sync")
        with self.model.no_sync() if local else contextlib.nullcontext():
            with self.autocast():
                logits = self.model(images)
            loss = self.criterion(logits.float(), labels)
            scaled = (loss if weight == 1.0 else loss * weight) / self.config.grad_accum
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        self.unsynced = local
        self.micro_batches += 1
        if self.micro_batches % self.config.grad_accum == 0:
            self.apply_gradients()
        if count:
            self.loss_sum += loss.detach() * labels.shape[0]
            self.correct += (logits.detach().argmax(1) == labels).sum()
            self.samples_trained += labels.shape[0]

    def apply_gradients(self) -> None:
        if self.unsynced:  # a partial group ended the epoch (or the time budget) under no_sync
            distributed.average_gradients(self.model.parameters())
            self.unsynced = False
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
        self.follow_schedule()

    def follow_schedule(self) -> None:
        """Move the schedule to where the run stands, in dense optimizer steps (never back)."""
        if self.scheduler is None:
            return
        per_epoch = math.ceil(self.batches_per_epoch / self.config.grad_accum)
        into_epoch = min(math.ceil(self.batches_seen / self.config.grad_accum), per_epoch)
        while self.scheduler.last_epoch < self.epoch * per_epoch + into_epoch:
            self.scheduler.step()

    def train_batch(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.batches_seen += 1
        self.optimize(images, labels)

    def running(self) -> dict:
        seen = max(1, self.samples_trained)
        return {"loss": f"{float(self.loss_sum) / seen:.3f}", "acc": f"{float(self.correct) / seen:.3f}"}

    def end_epoch(self) -> dict:
        if self.micro_batches:  # the epoch's last, partial group of accumulated gradients
            self.apply_gradients()
        self.follow_schedule()  # also when the epoch's last batches took no optimizer step (packed AST)
        if self.average_at_epoch_end:
            distributed.average_model(getattr(self.model, "module", self.model), self.comm)
        loss_sum, correct, trained = float(self.loss_sum), float(self.correct), self.samples_trained
        if self.world > 1:  # the epoch's figures over all ranks' samples
            totals = torch.tensor([loss_sum, correct, float(trained)], dtype=torch.float64, device=self.device)
            loss_sum, correct, trained = distributed.all_reduce_sum(totals).tolist()
            trained = int(trained)
        seen = max(1, trained)
        row = {"train_loss": loss_sum / seen, "train_acc": correct / seen, "samples_trained": trained,
               "optimizer_steps": self.optimizer_steps - self.epoch_start_steps}
        if self.comm is not None:
            sent = self.comm.bytes - self.epoch_start_bytes
            row.update(comm_bytes=sent, comm_bytes_per_step=sent / max(1, row["optimizer_steps"]))
        return row

    def summary(self, history: list[dict]) -> dict:
        return {"optimizer_steps": self.optimizer_steps}

    def artifacts(self, out_dir) -> dict:
        return {}

    def state_dict(self) -> dict:
        return {"micro_batches": self.micro_batches, "optimizer_steps": self.optimizer_steps}

    def load_state_dict(self, state: dict) -> None:
        self.micro_batches = state.get("micro_batches", 0)
        self.optimizer_steps = state.get("optimizer_steps", 0)
