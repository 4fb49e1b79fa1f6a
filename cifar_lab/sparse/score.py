"""Significance of each sample in a batch: how much there is still to learn from it (step 1 of the gate).

s_i = w_l * min(l_i / mean(l), 2) / 2 + w_v * min(v_i / mean(v), 2) / 2, with l_i the per-sample cross-entropy
and v_i the standard deviation of image i over all its C×H×W values. Both terms are normalised by their batch
mean, so the score is scale-free (the loss falls a hundredfold over training, the score does not) and lies in
[0, 1] with a batch mean near 0.5 when w_l + w_v = 1.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Guards the batch means against an all-zero batch (a perfectly fitted batch, a blank image batch).
_EPS = 1e-12


def batch_normalised(values: torch.Tensor) -> torch.Tensor:
    """values / mean(values), clamped to [0, 2] and halved: 1 for a sample twice the mean or more."""
    return torch.clamp(values / values.mean().clamp_min(_EPS), max=2.0) / 2.0


def image_intensity(images: torch.Tensor) -> torch.Tensor:
    """Per-image standard deviation over C×H×W (any memory format; std does not care about the order)."""
    return images.float().std(dim=tuple(range(1, images.dim())))


def significance(losses: torch.Tensor, intensity: torch.Tensor, loss_weight: float = 0.7,
                 intensity_weight: float = 0.3) -> torch.Tensor:
    return loss_weight * batch_normalised(losses.float()) + intensity_weight * batch_normalised(intensity)


def score_batch(logits: torch.Tensor, labels: torch.Tensor, images: torch.Tensor, loss_weight: float = 0.7,
                intensity_weight: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    """(significance, per-sample loss) of a batch from its scoring forward pass."""
    losses = F.cross_entropy(logits.float(), labels, reduction="none")
    return significance(losses, image_intensity(images), loss_weight, intensity_weight), losses
