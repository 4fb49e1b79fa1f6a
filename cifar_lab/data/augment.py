"""Batched augmentation on uint8 image tensors, on whatever device the batch lives on: every policy of the book.

A policy is a callable `(images uint8 [B, C, H, W], generator) -> images uint8`. `POLICIES` maps each name
(the config field `augment`) to a factory that takes the normalisation mean, because Cutout fills its holes
with it; `build(name, mean)` returns the policy. All randomness comes from the loader's generator, so an
epoch is reproducible from its seed and a resumed run draws the same crops as an uninterrupted one. Every
image draws its own parameters: torchvision's functional ops would apply one draw to a whole batch.

- `crop_flip` (the CIFAR standard): pad-4 random crop and a horizontal flip with probability 0.5.
- `crop_flip_cutout` (the CIFAR-100 recipe): crop and flip, then with probability 0.5 one 16x16 hole filled
  with the dataset mean. The fill happens before normalisation, so after it the hole is exactly 0 - "no
  information" rather than a black square. Unbound (mean None: in a notebook, on a bare batch) it fills
  with the batch's own channel mean, which for a batch of 128 CIFAR images lies within about one grey level
  of the dataset mean. The hole lies fully inside the image, as albumentations' `CoarseDropout` places it
  (the Cutout paper lets the centre go anywhere and clips the hole at the border).
- `naivenet` (the NaiveNet recipe): crop, flip, a random affine map (rotation within +-10 degrees,
  horizontal shear within +-5 degrees) and colour jitter (brightness, contrast, saturation within +-20 %).
  NaiveNet's recipe upscales to 128 px first and rotates then; here the 32 px image is transformed and the
  loader upscales afterwards (`input_size=128`): the same family of images, sixteen times fewer pixels.

`color_jitter` also serves the ImageNet GPU route (`jpeg_pipeline.DeviceJpegLoader`), on 0-1 images.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from ..errors import UsageError

Policy = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
# ITU-R BT.601 luma weights, as torchvision's rgb_to_grayscale uses them.
LUMA = (0.299, 0.587, 0.114)


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


def color_jitter(x: torch.Tensor, generator: torch.Generator, brightness: float = 0.2, contrast: float = 0.2,
                 saturation: float = 0.2, max_value: float = 255.0) -> torch.Tensor:
    """Per-image brightness, contrast and saturation factors drawn from [1 - s, 1 + s], on a float batch in
    [0, max_value] (255 for uint8 images, 1 for 0-1 images); clamped after each operation, as torchvision
    does. The three run in this fixed order (torchvision shuffles them per call). Hue is left alone."""
    b = x.shape[0]

    def factor(strength: float) -> torch.Tensor:
        draw = torch.rand(b, 1, 1, 1, device=generator.device, generator=generator).to(x.device)
        return 1 + (draw * 2 - 1) * strength

    luma = torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    x = (x * factor(brightness)).clamp(0, max_value)
    grey = (x * luma).sum(1, keepdim=True).mean(dim=(2, 3), keepdim=True)
    x = ((x - grey) * factor(contrast) + grey).clamp(0, max_value)
    grey = (x * luma).sum(1, keepdim=True)
    return ((x - grey) * factor(saturation) + grey).clamp(0, max_value)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round_().clamp_(0, 255).to(torch.uint8)


def no_augmentation(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return images


def crop_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return random_crop_flip(images, generator)


class CropFlipCutout:
    """The `crop_flip_cutout` policy; `fill` is the per-channel mean on the 0-1 scale (None: the batch's)."""

    def __init__(self, fill: Optional[Sequence[float]] = None, size: int = 16, p: float = 0.5):
        self.fill, self.size, self.p = fill, size, p

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        fill = None
        if self.fill is not None:
            fill = (torch.tensor(self.fill, device=images.device) * 255.0).round().clamp(0, 255).to(torch.uint8)
        return cutout(random_crop_flip(images, generator), generator, self.size, self.p, fill)


def naivenet_policy(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    warped = random_affine(random_crop_flip(images, generator), generator)
    return _to_uint8(color_jitter(warped.float(), generator))


# name -> factory(mean on the 0-1 scale or None) -> policy
POLICIES: dict[str, Callable[[Optional[Sequence[float]]], Policy]] = {
    "none": lambda mean: no_augmentation,
    "crop_flip": lambda mean: crop_flip,
    "crop_flip_cutout": lambda mean: CropFlipCutout(fill=mean),
    "naivenet": lambda mean: naivenet_policy,
}


def names() -> list[str]:
    return sorted(POLICIES)


def build(name: str, mean: Optional[Sequence[float]] = None) -> Policy:
    """The policy `name`, filling Cutout holes with `mean` (the statistics the loader normalises with)."""
    if name not in POLICIES:
        raise UsageError(f"unknown augment policy '{name}'; choose one of: {', '.join(names())}")
    return POLICIES[name](None if mean is None else tuple(mean))


class Normalize:
    """uint8 -> float, (x - mean) / std with statistics given on the 0-1 scale (as papers quote them)."""

    def __init__(self, mean, std, device, dtype=torch.float32):
        self.scale = (1.0 / (255.0 * torch.tensor(std, device=device))).view(1, -1, 1, 1).to(dtype)
        self.shift = (torch.tensor(mean, device=device) / torch.tensor(std, device=device)).view(1, -1, 1, 1).to(dtype)
        self.dtype = dtype

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        # x / (255 std) - mean / std, fused into one multiply-subtract.
        return torch.addcmul(-self.shift, images.to(self.dtype), self.scale)
