"""Test data in the published formats, and the images a run's loader serves, read back as uint8.

- `write_idx` / `write_fashion_mnist`: Fashion-MNIST's four gzipped IDX files (LeCun's MNIST format), as the
  dataset publishes them and Debian's package installs them.
- CIFAR-format data comes from `cifar_lab.data.synthetic`, which writes the official pickle layout that the
  real archives' parser reads (`dataset=synthetic`).
- `served`: one epoch of a training loader, normalisation undone, so a test compares pixels with pixels.
- `crop_windows`: every image a pad-and-crop (and a horizontal flip) can make of a stored image.
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cifar_lab.data import fashion_mnist


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file as the dataset publishes it: gzip, magic 0x0803 (images) or 0x0801 (labels), sizes, bytes."""
    magic = 0x00000800 | array.ndim
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def random_garments(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n 28x28 images whose every pixel is 1-255 (so a zero can only be padding), labels 0-9 in turn."""
    rng = np.random.default_rng(seed)
    return rng.integers(1, 256, size=(n, 28, 28), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


def write_fashion_mnist(folder: Path, train_images: np.ndarray, test_images: np.ndarray) -> Path:
    """The four files of Fashion-MNIST in `folder`, labels 0-9 in turn."""
    folder.mkdir(parents=True, exist_ok=True)
    for train, images in ((True, train_images), (False, test_images)):
        image_file, label_file = fashion_mnist.FILES[train]
        write_idx(folder / image_file, images)
        write_idx(folder / label_file, (np.arange(len(images)) % 10).astype(np.uint8))
    return folder


def as_stored(batch: torch.Tensor, mean, std) -> torch.Tensor:
    """A normalised float batch back on the uint8 scale the split is stored in."""
    mean = torch.tensor(mean).view(1, -1, 1, 1)
    std = torch.tensor(std).view(1, -1, 1, 1)
    return ((batch * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)


def served(bundle, epoch: int) -> torch.Tensor:
    """Every image the training loader of `bundle` serves in `epoch`, in its order, as uint8 [N, C, S, S]."""
    bundle.train_loader.set_epoch(epoch)
    return torch.cat([as_stored(batch, bundle.mean, bundle.std) for batch, _ in bundle.train_loader])


def key(image: torch.Tensor) -> bytes:
    return image.contiguous().numpy().tobytes()


def crop_windows(image: torch.Tensor, padding: int = 4) -> dict[bytes, tuple[int, int, bool]]:
    """Every crop of `image` [C, S, S] padded by `padding` zeros on each side, and its mirror image (left to
    right), keyed by its bytes: key -> (dy, dx, flipped); dy = dx = `padding` is the image itself."""
    side = image.shape[-1]
    padded = F.pad(image, (padding,) * 4)
    windows = {}
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            crop = padded[:, dy:dy + side, dx:dx + side]
            windows.setdefault(key(crop), (dy, dx, False))
            windows.setdefault(key(crop.flip(-1)), (dy, dx, True))
    return windows
