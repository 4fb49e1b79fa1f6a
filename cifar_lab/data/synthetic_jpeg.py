"""A learnable generated image set written as JPEG files in the ImageNet folder layout.

`ROOT/{train,val}/<wnid>/<wnid>_<i>.JPEG`, folders named like WordNet ids, so the real ImageNet loading code
(`cifar_lab.data.imagenet`) reads it unchanged. Each class is a hue and a stripe orientation/frequency at any
resolution; images vary in stripe phase, scale, brightness and a dark blob of clutter. Hue and orientation
survive RandomResizedCrop, flips and the ImageNet colour jitter (which leaves hue alone), so a network learns
the classes. Optional odd files test the loader: grayscale ("L") and CMYK JPEGs, and corrupt files (random
bytes behind a JPEG marker, or a real JPEG cut in half).
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from .synthetic import hue_rgb, staged_output

HUE_COUNT = 10
ORIENTATIONS = ("h", "v", "d")           # horizontal, vertical, diagonal stripes


def fake_wnids(num_classes: int) -> list[str]:
    """WordNet-id-shaped folder names (`n` + 8 digits) that no real synset uses (real ones start n0/n1)."""
    return [f"n99{k:06d}" for k in range(num_classes)]


def _class_cues(num_classes: int) -> list[tuple[int, int, int]]:
    """(hue, orientation, frequency index) per class; the first ten differ in hue alone."""
    return [(k % HUE_COUNT, (k // HUE_COUNT) % 3, (k // (3 * HUE_COUNT)) % 4) for k in range(num_classes)]


def generate_image(label: int, num_classes: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One uint8 HWC RGB image of class `label`."""
    hue, orient, freq_index = _class_cues(num_classes)[label]
    rgb = hue_rgb((hue + rng.uniform(-0.3, 0.3)) / HUE_COUNT)
    yy, xx = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    coord = {0: yy, 1: xx, 2: (xx + yy) / 2}[orient]
    freq = (2, 3, 5, 7)[freq_index] * rng.uniform(0.8, 1.25)
    stripes = np.sin(2 * np.pi * freq * coord + rng.uniform(0, 2 * np.pi))
    image = rgb[None, None, :] * (1.0 + 0.3 * stripes[..., None]) * rng.uniform(0.8, 1.2)
    cy, cx, radius = rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85), rng.uniform(0.08, 0.2)
    blob = (yy - cy) ** 2 + (xx - cx) ** 2 < radius ** 2
    image = np.where(blob[..., None], image * 0.4, image) + rng.normal(0, 0.06, size=image.shape)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def _jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def folder_for(root, num_classes: int, train_per_class: int, val_per_class: int, size: int, seed: int,
               grayscale: int = 0, cmyk: int = 0, corrupt: int = 0) -> Path:
    extras = f"-g{grayscale}c{cmyk}x{corrupt}" if grayscale or cmyk or corrupt else ""
    return Path(root) / (f"synthetic-imagenet-c{num_classes}-n{train_per_class}-{val_per_class}-px{size}-s{seed}"
                         f"{extras}")


def write_tree(out_dir, num_classes: int = 10, train_per_class: int = 16, val_per_class: int = 4, size: int = 80,
               seed: int = 0, grayscale: int = 0, cmyk: int = 0, corrupt: int = 0,
               wnids: Optional[Sequence[str]] = None) -> Path:
    """Write the tree into `out_dir` (atomically: staged beside it, then renamed) unless it is already there.

    `grayscale`, `cmyk` and `corrupt` add that many extra files to the training split (spread over the
    classes); they come on top of the `train_per_class` regular images.
    """
    out = Path(out_dir)
    if (out / "train").is_dir() and (out / "val").is_dir():
        return out
    wnids = list(wnids) if wnids is not None else fake_wnids(num_classes)
    if len(wnids) != num_classes:
        raise ValueError(f"{len(wnids)} wnids for {num_classes} classes")
    with staged_output(out) as staging:
        rng = np.random.default_rng(seed)
        for split, per_class in (("train", train_per_class), ("val", val_per_class)):
            for label, wnid in enumerate(wnids):
                folder = staging / split / wnid
                folder.mkdir(parents=True)
                for i in range(per_class):
                    image = Image.fromarray(generate_image(label, num_classes, size, rng))
                    (folder / f"{wnid}_{i}.JPEG").write_bytes(_jpeg_bytes(image))
        _write_odd_files(staging / "train", wnids, num_classes, size, rng, grayscale, cmyk, corrupt)
    return out


def _write_odd_files(train: Path, wnids: Sequence[str], num_classes: int, size: int, rng: np.random.Generator,
                     grayscale: int, cmyk: int, corrupt: int) -> None:
    def image_of(k: int) -> Image.Image:
        return Image.fromarray(generate_image(k % num_classes, num_classes, size, rng))

    for i in range(grayscale):
        wnid = wnids[i % num_classes]
        (train / wnid / f"{wnid}_gray{i}.JPEG").write_bytes(_jpeg_bytes(image_of(i).convert("L")))
    for i in range(cmyk):
        wnid = wnids[i % num_classes]
        (train / wnid / f"{wnid}_cmyk{i}.JPEG").write_bytes(_jpeg_bytes(image_of(i).convert("CMYK")))
    for i in range(corrupt):
        wnid = wnids[i % num_classes]
        if i % 2 == 0:   # a JPEG start-of-image marker, then noise: no decoder can read it
            payload = b"\xff\xd8\xff\xe0" + rng.integers(0, 256, size=512, dtype=np.uint8).tobytes()
        else:            # a real JPEG cut in half: the header parses, the pixel data ends early
            whole = _jpeg_bytes(image_of(i))
            payload = whole[: len(whole) // 2]
        (train / wnid / f"{wnid}_corrupt{i}.JPEG").write_bytes(payload)
