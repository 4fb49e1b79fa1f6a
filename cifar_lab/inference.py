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


def read_image(path) -> torch.Tensor:
    """uint8 [3, H, W] from an image file; a missing, non-image or damaged file is a one-line DataError."""
    from PIL import Image as PILImage, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with PILImage.open(path) as handle:
            rgb = handle.convert("RGB")  # decodes fully, so a truncated file fails here
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image file (PIL cannot identify its format)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: the image cannot be decoded ({' '.join(str(exc).split()) or type(exc).__name__})") \
            from None
    return torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).contiguous()


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
        tensor = torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)
    if tensor.ndim == 2:
        tensor = tensor[None]
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3, 4):
        raise DataError(f"an image must be [3, H, W] (or H x W x 3), got shape {tuple(tensor.shape)}")
    if tensor.dtype != torch.uint8:
        raise DataError(f"an image tensor must be uint8 (0-255), got {tensor.dtype}")
    if tensor.shape[0] == 1:
        tensor = tensor.expand(3, -1, -1)
    return tensor[:3].contiguous()


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
        self.normalize = Normalize(self.input["mean"], self.input["std"], self.device)

    def _prepare(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 [3, H, W] -> uint8 [3, S, S] as the test loader produced it before normalisation."""
        resize, size = self.input["eval_resize"], self.input_size
        if resize:
            h, w = image.shape[1:]
            scale = resize / min(h, w)
            image = _resize(image, (max(size, round(h * scale)), max(size, round(w * scale))))
            top, left = (image.shape[1] - size) // 2, (image.shape[2] - size) // 2
            return image[:, top:top + size, left:left + size]
        source = self.input["source_size"] or size
        return image if tuple(image.shape[1:]) == (source, source) else _resize(image, source)

    def preprocess(self, images: Sequence[Image]) -> torch.Tensor:
        batch = torch.stack([self._prepare(to_uint8_chw(image)) for image in images])
        x = self.normalize(batch.to(self.device))
        if x.shape[-1] != self.input_size:  # as the CIFAR loader does: upscale after normalising
            x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False)
        return x

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
