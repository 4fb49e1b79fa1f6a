"""Predictions from a trained checkpoint: `Predictor(path).predict(image)` -> top-k (class name, id, probability).

An image goes through what the run's test loader did, as the checkpoint's input record says:
- CIFAR-style runs (stored 32x32 images): RGB, resized to 32x32 with antialiasing, normalised with the
  training split's statistics, then bilinear upscaling to the resolution the model trained at (128 for
  NaiveNet);
- ImageNet-style runs: the shorter side resized to the eval resize, a centre crop at the resolution the
  model trained at, then normalisation.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from .config import from_dict
from .data.augment import Normalize
from .engine import checkpoint
from .engine.runtime import resolve_device
from .errors import DataError

Image = Union[str, Path, "PIL.Image.Image", np.ndarray, torch.Tensor]  # noqa: F821
Prediction = tuple[str, int, float]


# Decoding a file costs memory in proportion to its pixels, not its bytes: a PNG of a few hundred kB can hold
# gigapixels of one colour (a "decompression bomb"). Images above this many pixels are refused from their header,
# before anything is decoded; 40 megapixels is a 7,700 x 5,200 photograph, whose prepared copy takes ~0.5 GB.
MAX_PIXELS = 40_000_000
# Pillow's modes for one channel of 16 bits (PNG and TIFF greyscale); "I" is what older Pillow reads them as.
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def read_image(path) -> torch.Tensor:
    """uint8 [3, H, W] from an image file; a missing, non-image, damaged or oversized (`MAX_PIXELS`) file is a
    one-line DataError. 16-bit greyscale is scaled to 8 bits (v / 257, rounded), not clipped at 255."""
    from PIL import UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with open_checked(path) as handle:
            return pil_to_uint8_chw(handle, path)  # decodes fully, so a truncated file fails here
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image file (PIL cannot identify its format)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: the image cannot be decoded ({' '.join(str(exc).split()) or type(exc).__name__})") \
            from None


def open_checked(path):
    """The image file opened by Pillow (header read, pixels not yet decoded), refused with a one-line DataError
    if it declares more than `MAX_PIXELS` pixels. Pillow's own errors for a file it cannot read pass through."""
    import warnings

    from PIL import Image as PILImage

    try:
        with warnings.catch_warnings():
            # Pillow warns above its own limit (PIL.Image.MAX_IMAGE_PIXELS); ours is lower and refuses instead.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            handle = PILImage.open(path)
    except PILImage.DecompressionBombError:  # above twice Pillow's limit: it refuses while reading the header
        raise DataError(f"{path}: the image has more than {MAX_PIXELS / 1e6:.0f} million pixels (a decompression "
                        f"bomb or a huge scan); downscale it below that and try again") from None
    try:
        check_pixels(path, *handle.size)
    except DataError:
        handle.close()
        raise
    return handle


def pil_to_uint8_chw(image, name="the image") -> torch.Tensor:
    """uint8 [3, H, W] from a PIL image: 16-bit greyscale scaled to 8 bits (v / 257, rounded; Pillow's own
    conversion would clip everything above 255 to white), any other mode converted to RGB by Pillow."""
    if image.mode in SIXTEEN_BIT_MODES:
        wide = np.asarray(image).astype(np.float32)
        grey = np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8)
        return torch.from_numpy(grey)[None].expand(3, -1, -1).contiguous()
    if image.mode == "F":
        raise DataError(f"{name}: a floating-point image (Pillow mode F) has no defined 0-255 range; save it as "
                        f"an 8- or 16-bit image")
    return torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1).contiguous()


def check_pixels(name, width: int, height: int) -> None:
    """Refuse an image of more than `MAX_PIXELS` pixels, from its declared size, before it is decoded."""
    if width * height > MAX_PIXELS:
        raise DataError(f"{name}: the image is {width} x {height} pixels, more than {MAX_PIXELS / 1e6:.0f} million "
                        f"(a decompression bomb or a huge scan); downscale it below that and try again")


def to_uint8_chw(image: Image) -> torch.Tensor:
    """Accept a path, a PIL image, an HWC uint8 array or a CHW uint8 tensor; return uint8 [3, H, W]."""
    if isinstance(image, (str, Path)):
        return read_image(image)
    if isinstance(image, torch.Tensor):
        tensor = image
    elif isinstance(image, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(image))
        if tensor.ndim == 3 and tensor.shape[-1] in (1, 3, 4):
            tensor = tensor.permute(2, 0, 1)
    else:  # PIL
        check_pixels("the image", *image.size)
        tensor = pil_to_uint8_chw(image)
    if tensor.ndim == 2:
        tensor = tensor[None]
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3, 4):
        raise DataError(f"an image must be [3, H, W] (or H x W x 3), got shape {tuple(tensor.shape)}")
    if tensor.dtype != torch.uint8:
        raise DataError(f"an image tensor must be uint8 (0-255), got {tensor.dtype}")
    if tensor.shape[0] == 1:
        tensor = tensor.expand(3, -1, -1)
    return tensor[:3].contiguous()


def prepare(image: torch.Tensor, record: dict) -> torch.Tensor:
    """uint8 [3, H, W] -> uint8 [3, S, S] as the run's test loader produced it before normalisation, from the
    checkpoint's input record (`engine.checkpoint.input_record`): with an eval resize, the shorter side resized
    to it and a centre crop of the resolution (torchvision's Resize + CenterCrop); otherwise a resize to the
    stored images' size (32 for CIFAR) unless the image already has it; an image at the size the loader padded from
    (`padded_from`, 28 for Fashion-MNIST) is padded the same way instead."""
    resize, size = record["eval_resize"], record["resolution"]
    if resize:
        h, w = image.shape[1:]
        scale = resize / min(h, w)
        image = _resize(image, (max(size, round(h * scale)), max(size, round(w * scale))))
        top, left = (image.shape[1] - size) // 2, (image.shape[2] - size) // 2
        return image[:, top:top + size, left:left + size]
    source = record.get("source_size") or size
    padded_from = record.get("padded_from") or 0
    if padded_from and tuple(image.shape[1:]) == (padded_from, padded_from) and source > padded_from:
        # an image at the dataset's published size (a 28x28 Fashion-MNIST picture) is padded with zeros as the
        # loader padded it in training; stretching it would make the garment larger than the model ever saw
        margin = (source - padded_from) // 2
        return F.pad(image, (margin, source - padded_from - margin, margin, source - padded_from - margin))
    return image if tuple(image.shape[1:]) == (source, source) else _resize(image, source)


def model_input(images, record: dict, device="cpu") -> torch.Tensor:
    """Images (a sequence of anything `to_uint8_chw` takes, or a uint8 [B, 3, H, W] batch) -> the normalised
    float32 NCHW batch the model takes: `prepare` per image, normalisation with the record's mean and std, and,
    where the stored images are smaller than the model's resolution (CIFAR at 32 px for a 128 px model), the
    bilinear upscaling the CIFAR loader applies after normalising. The one input preparation of `Predictor`
    and of exported models (`export.ExportedModel.preprocess`)."""
    size = record["resolution"]
    batch = torch.stack([prepare(to_uint8_chw(image), record) for image in images])
    x = Normalize(record["mean"], record["std"], device)(batch.to(device))
    if x.shape[-1] != size:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x


def _resize(image: torch.Tensor, size) -> torch.Tensor:
    """Antialiased bilinear resize of a uint8 [3, H, W] image to `size` (an int side or (h, w))."""
    size = (size, size) if isinstance(size, int) else size
    resized = F.interpolate(image[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return resized[0].round().clamp(0, 255).byte()


class Predictor:
    """A checkpoint's model in eval mode, with its class names and input preparation."""

    def __init__(self, checkpoint_path, device: str = "auto"):
        state = checkpoint.load(checkpoint_path)
        self.config = from_dict(state["config"])
        self.device = resolve_device(device)
        self.model = checkpoint.load_model(state, self.device)  # a foreign model is a UsageError here
        self.class_names = list(state.get("class_names") or [str(i) for i in range(self.config.num_classes)])
        self.input = checkpoint.input_record(state)
        self.input_size = self.input["resolution"]

    def preprocess(self, images: Sequence[Image]) -> torch.Tensor:
        return model_input(images, self.input, self.device)

    @torch.inference_mode()
    def predict_batch(self, images: Sequence[Image], top_k: int = 5) -> list[list[Prediction]]:
        """Top-k (class name, class id, probability) per image, most probable first."""
        if not images:
            return []
        probabilities = self.model(self.preprocess(images)).float().softmax(dim=1)
        values, indices = probabilities.topk(min(top_k, probabilities.shape[1]), dim=1)
        return [[(self.class_names[i], i, p) for p, i in zip(row_p.tolist(), row_i.tolist())]
                for row_p, row_i in zip(values.cpu(), indices.cpu())]

    def predict(self, image: Image, top_k: int = 5) -> list[Prediction]:
        return self.predict_batch([image], top_k)[0]
