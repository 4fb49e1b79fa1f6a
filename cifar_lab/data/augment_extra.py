"""The CIFAR-100 and NaiveNet augmentation policies: Cutout, and affine + colour jitter, batched on the device.

`crop_flip_cutout` (seed 002): pad-4 random crop, horizontal flip, then with probability 0.5 one 16x16 hole
filled with the dataset mean. The mean fill happens before normalisation, so after normalisation the hole is
exactly 0 - "no information" rather than a black square. A policy sees uint8 images only, so it cannot know
the mean by itself: the policy object has a `bind(mean=..., std=...)` method, and the device loader binds the
statistics it normalises with (the training split's channel means under `normalization=dataset`). Called
unbound (in a notebook, on a bare batch) it fills with the batch's own channel mean, which for a batch of 128
CIFAR images lies within about one grey level of the dataset mean.
The hole lies fully inside the image, as the seed's albumentations `CoarseDropout` places it (the Cutout
paper lets the centre go anywhere and clips the hole at the border, so its holes are often smaller).

`naivenet` (seed 004): crop, flip, a random affine map (rotation within +-10 degrees, horizontal shear within
+-5 degrees) and colour jitter (brightness, contrast, saturation within +-20 %). Every image draws its own
parameters - torchvision's functional ops would apply one draw to a whole batch - so the affine maps are
built as one batch of 2x3 matrices for `grid_sample`. The seed upscales to 128 px first and rotates then; here
the 32 px image is transformed and the loader upscales afterwards (`input_size=128`): the same family of
images, sixteen times fewer pixels to resample.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from .augment import random_crop_flip, register


def cutout(images: torch.Tensor, generator: torch.Generator, size: int = 16, p: float = 0.5,
           fill: Optional[torch.Tensor] = None) -> torch.Tensor:
    """One `size`x`size` hole per image with probability `p`, filled with `fill` (uint8 per channel; default:
    the batch's channel mean). Returns a new tensor."""
    b, c, h, w = images.shape
    device = images.device
    if fill is None:
        fill = images.float().mean(dim=(0, 2, 3)).round().to(torch.uint8)
    apply = torch.rand(b, device=device, generator=generator) < p
    top = torch.randint(0, h - size + 1, (b,), device=device, generator=generator)
    left = torch.randint(0, w - size + 1, (b,), device=device, generator=generator)
    rows = torch.arange(h, device=device)[None, :]
    cols = torch.arange(w, device=device)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + size)          # [B, H]
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + size)        # [B, W]
    hole = (in_rows[:, :, None] & in_cols[:, None, :]) & apply[:, None, None]  # [B, H, W]
    return torch.where(hole[:, None], fill.to(device).view(1, c, 1, 1), images)


class CropFlipCutout:
    """The `crop_flip_cutout` policy; `bind` fixes the fill to the normalisation mean."""

    def __init__(self, fill: Optional[Sequence[float]] = None, size: int = 16, p: float = 0.5):
        self.fill = fill   # per-channel mean on the 0-1 scale, or None for the batch mean
        self.size = size
        self.p = p

    def bind(self, mean: Sequence[float], std: Sequence[float] = ()) -> "CropFlipCutout":
        return CropFlipCutout(fill=tuple(mean), size=self.size, p=self.p)

    def fill_uint8(self, device) -> Optional[torch.Tensor]:
        if self.fill is None:
            return None
        return (torch.tensor(self.fill, device=device) * 255.0).round().clamp(0, 255).to(torch.uint8)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        images = random_crop_flip(images, generator)
        return cutout(images, generator, self.size, self.p, self.fill_uint8(images.device))


register("crop_flip_cutout")(CropFlipCutout())


def random_affine(images: torch.Tensor, generator: torch.Generator, degrees: float = 10.0,
                  shear: float = 5.0) -> torch.Tensor:
    """Rotate by U(-degrees, degrees) and shear horizontally by U(-shear, shear) degrees about the centre,
    each image its own draw; uncovered corners become 0 (black), as with torchvision's default fill."""
    b = images.shape[0]
    device = images.device
    angle = (torch.rand(b, device=device, generator=generator) * 2 - 1) * math.radians(degrees)
    skew = torch.tan((torch.rand(b, device=device, generator=generator) * 2 - 1) * math.radians(shear))
    cos, sin = torch.cos(angle), torch.sin(angle)
    # forward map = rotation @ shear; grid_sample needs where each output pixel comes from: its inverse.
    rotation = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)        # [B, 2, 2]
    ones, zeros = torch.ones_like(skew), torch.zeros_like(skew)
    shearing = torch.stack([torch.stack([ones, skew], 1), torch.stack([zeros, ones], 1)], 1)    # [B, 2, 2]
    inverse = torch.linalg.inv(rotation @ shearing)
    theta = torch.cat([inverse, torch.zeros(b, 2, 1, device=device)], dim=2)                    # [B, 2, 3]
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    warped = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return warped.round_().clamp_(0, 255).to(torch.uint8)


def color_jitter(images: torch.Tensor, generator: torch.Generator, brightness: float = 0.2,
                 contrast: float = 0.2, saturation: float = 0.2) -> torch.Tensor:
    """Per-image brightness, contrast and saturation factors drawn from [1 - x, 1 + x] (hue left alone)."""
    b = images.shape[0]
    device = images.device

    def factor(strength: float) -> torch.Tensor:
        return 1 + (torch.rand(b, 1, 1, 1, device=device, generator=generator) * 2 - 1) * strength

    x = images.float() * factor(brightness)
    luma = torch.tensor([0.299, 0.587, 0.114], device=device).view(1, 3, 1, 1)
    grey = (x * luma).sum(1, keepdim=True)
    x = (x - grey.mean(dim=(2, 3), keepdim=True)) * factor(contrast) + grey.mean(dim=(2, 3), keepdim=True)
    grey = (x * luma).sum(1, keepdim=True)
    x = (x - grey) * factor(saturation) + grey
    return x.round_().clamp_(0, 255).to(torch.uint8)


@register("naivenet")
def naivenet_policy(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return color_jitter(random_affine(random_crop_flip(images, generator), generator), generator)
