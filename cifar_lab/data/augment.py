"""Batched augmentation on uint8 image tensors, on whatever device the batch lives on.

A policy is a function `(images uint8 [B, C, H, W], generator) -> images uint8` registered by name; the
config field `augment` picks one. All randomness comes from the loader's generator, so an epoch is
reproducible from its seed and a resumed run draws the same crops as an uninterrupted one.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Policy = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
_POLICIES: dict[str, Policy] = {}


def register(name: str):
    def wrap(fn: Policy) -> Policy:
        _POLICIES[name] = fn
        return fn
    return wrap


def names() -> list[str]:
    return sorted(_POLICIES)


def get(name: str) -> Policy:
    return _POLICIES[name]


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4,
                     flip: bool = True) -> torch.Tensor:
    """Random crop after zero padding, and a horizontal flip with probability 0.5, for the whole batch at once.

    Two `gather`s (rows, then columns) do crop and flip in one pass; flipping is folded into the column
    index, so no second copy of the batch is made.
    """
    b, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b,), device=device, generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (b,), device=device, generator=generator)
    rows = dy[:, None] + torch.arange(h, device=device)
    cols = dx[:, None] + torch.arange(w, device=device)
    if flip:
        flipped = torch.rand(b, device=device, generator=generator) < 0.5
        cols = torch.where(flipped[:, None], cols.flip(1), cols)
    out = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * padding))
    return out.gather(3, cols[:, None, None, :].expand(b, c, h, w))


@register("none")
def no_augmentation(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return images


@register("crop_flip")
def crop_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return random_crop_flip(images, generator)


class Normalize:
    """uint8 -> float, (x - mean) / std with statistics given on the 0-1 scale (as papers quote them)."""

    def __init__(self, mean, std, device, dtype=torch.float32):
        self.scale = (1.0 / (255.0 * torch.tensor(std, device=device))).view(1, -1, 1, 1).to(dtype)
        self.shift = (torch.tensor(mean, device=device) / torch.tensor(std, device=device)).view(1, -1, 1, 1).to(dtype)
        self.dtype = dtype

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        # x / (255 std) - mean / std, fused into one multiply-subtract.
        return torch.addcmul(-self.shift, images.to(self.dtype), self.scale)
