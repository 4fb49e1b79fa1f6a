"""Optimizers and learning-rate schedules, every schedule planned over and stepped once per optimizer step."""
from __future__ import annotations

import math

import torch


def build_optimizer(config, model: torch.nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               nesterov=config.nesterov and config.momentum > 0, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def lr_factor(schedule: str, step: int, total_steps: int, warmup_steps: int) -> float:
    """Multiplier of the base lr after `step` optimizer steps (cosine decays to 0 at `total_steps`)."""
    if schedule == "constant":
        return 1.0
    if schedule == "warmup_cosine" and step < warmup_steps:
        return step / max(1, warmup_steps)  # linear from 0, per optimizer step
    start = warmup_steps if schedule == "warmup_cosine" else 0
    progress = min(1.0, (step - start) / max(1, total_steps - start))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(config, optimizer, total_steps: int):
    """The schedule over `total_steps` optimizer steps of the whole run."""
    total = max(1, total_steps)
    if config.schedule == "onecycle":
        # OneCycleLR reaches its final value at step total_steps - 1; one more keeps the last step inside it.
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.onecycle_max_lr or config.lr, total_steps=total + 1,
            pct_start=config.onecycle_pct_start)
    warmup = int(round(config.lr_warmup_epochs * total / max(1, config.epochs)))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(config.schedule, step, total, warmup))
