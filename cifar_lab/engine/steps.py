"""What one training batch does. `DenseStep` trains on every sample; AST (`cifar_lab.ast.step`) extends it.

A step never reads a value back to the host: losses and counts accumulate in device tensors that the
trainer reads once per epoch (and every `log_every` batches for the progress bar).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .runtime import autocast


class DenseStep:
    """Forward, backward and (every `grad_accum` batches) an optimizer step, on the whole batch."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, scaler, config, device: torch.device,
                 precision: str):
        self.model = model
        self.optimizer = optimizer
        self.scaler = scaler
        self.config = config
        self.device = device
        self.precision = precision
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.micro_batches = 0
        self.start_epoch(0)

    def autocast(self):
        return autocast(self.device, self.precision)

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.loss_sum = torch.zeros((), device=self.device)
        self.correct = torch.zeros((), device=self.device, dtype=torch.long)
        self.seen = 0

    def optimize(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Train on exactly these samples; return (summed loss, correct count) as device tensors."""
        self.model.train()
        with self.autocast():
            logits = self.model(images)
        loss = self.criterion(logits.float(), labels)
        scaled = loss / self.config.grad_accum
        (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        self.micro_batches += 1
        if self.micro_batches % self.config.grad_accum == 0:
            self.apply_gradients()
        return loss.detach() * labels.shape[0], (logits.detach().argmax(1) == labels).sum()

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

    def train_batch(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        loss_sum, correct = self.optimize(images, labels)
        self.loss_sum += loss_sum
        self.correct += correct
        self.seen += labels.shape[0]

    def running(self) -> dict:
        """Readings for the progress bar (a host sync: call it rarely)."""
        seen = max(1, self.seen)
        return {"loss": f"{float(self.loss_sum) / seen:.3f}", "acc": f"{float(self.correct) / seen:.3f}"}

    def end_epoch(self) -> dict:
        if self.micro_batches % self.config.grad_accum:  # leftover accumulated gradients
            self.apply_gradients()
            self.micro_batches = 0
        seen = max(1, self.seen)
        return {"train_loss": float(self.loss_sum) / seen, "train_acc": float(self.correct) / seen}

    def summary(self, history: list[dict]) -> dict:
        """Run-level fields for summary.json (AST adds its accounting here)."""
        return {}

    def state_dict(self) -> dict:
        return {"micro_batches": self.micro_batches}

    def load_state_dict(self, state: dict) -> None:
        self.micro_batches = state.get("micro_batches", 0)


def make_step(config, model, optimizer, scaler, device, precision) -> DenseStep:
    if config.ast.enabled:
        from ..ast.step import SparseStep

        return SparseStep(model, optimizer, scaler, config, device, precision)
    return DenseStep(model, optimizer, scaler, config, device, precision)
