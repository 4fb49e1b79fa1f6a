"""Predictions from a trained model: `Predictor(path).predict(image)` -> top-k (class name, id, probability), and
`Predictor.answer(image)`, which also says how the image was prepared and whether it looks like the training
images at all.

An image of any size is prepared to look like the images the model trained on, as the checkpoint's input record
(`engine.checkpoint.input_record`) describes them; `preparation` is the one implementation:
- Fashion-MNIST (grey, light garments on black): converted to grey; inverted when its background is light (the
  median of its border pixels above mid-grey), and that background brought to black; trimmed to the object;
  scaled so that its longer side fills the published 28 px, with its aspect ratio kept; padded with the
  background (0) to 28x28 and to the stored 32x32 - the steps of the dataset's own conversion (Xiao, Rasul,
  Vollgraf 2017, section 2). A 28x28 or 32x32 image is taken as one of the dataset's and only padded as in
  training.
- CIFAR-style runs (stored 32x32 colour images): scaled so that the longer side is 32, aspect ratio kept,
  padded with the colour of its own border; normalised with the training split's statistics; bilinear
  upscaling to the resolution the model trained at (128 for NaiveNet).
- ImageNet-style runs: the shorter side resized to the eval resize, a centre crop at the resolution the model
  trained at, then normalisation.
An image is never stretched. Each answer names what was done in one line, and carries a warning when the
prepared image is unlike the training images (`unlike_training`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

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


# ITU-R BT.601 luma weights, the grey conversion of Pillow's mode "L" (and of torchvision's rgb_to_grayscale).
LUMA = (0.299, 0.587, 0.114)
# Fashion-MNIST's conversion trimmed "edges close to the colour of the corner pixels", close meaning within 5 % of
# the maximum intensity (Xiao et al. 2017, section 2).
TRIM_TOLERANCE = 0.05 * 255
# How far (on the 0-1 scale) a prepared image's mean or std may lie outside the range of the training images'
# own means and stds before it is called unlike them: a small allowance for a subset that saw fewer images.
UNLIKE_MARGIN = 0.05


@dataclass
class Preparation:
    """One image prepared for a model: the uint8 [C, S, S] image before normalisation, the steps taken (worded
    for the answer line), and a warning when the result is unlike the training images (`unlike_training`)."""

    image: torch.Tensor
    steps: list[str]
    warning: Optional[str] = None

    @property
    def line(self) -> str:
        """One line naming the preparation, e.g. "prepared: grey, inverted (light background), ..."."""
        return "prepared: " + ", ".join(self.steps)


def prepare(image: torch.Tensor, record: dict) -> torch.Tensor:
    """uint8 [3, H, W] -> uint8 [C, S, S], the image as the model's training images looked before normalisation
    (`preparation`, without the description)."""
    return preparation(image, record).image


def preparation(image: torch.Tensor, record: dict) -> Preparation:
    """Prepare a uint8 [3, H, W] image as the checkpoint's input record (`engine.checkpoint.input_record`) says
    its training images looked, and say what was done. Never stretches.

    - `fit="crop"` (an eval resize): the shorter side resized to it and a centre crop of the resolution
      (torchvision's Resize + CenterCrop).
    - `fit="pad"`: `colour="grey"` converts the image to grey (ITU-R BT.601 luma); `polarity="light_on_dark"`
      inverts it when the median of its border pixels is above mid-grey. An image at the stored size (32 for
      CIFAR and Fashion-MNIST) is then taken as one of the dataset's, and one at the size the loader padded from
      (`padded_from`, Fashion-MNIST's 28) is padded with zeros as the loader padded it. Any other image: with a
      light-on-dark polarity its background level (the border's median) is brought to `background`; `trim` crops
      it to the pixels that differ from its corner colour by more than `TRIM_TOLERANCE`; it is scaled so that its
      longer side fills the picture size (`padded_from`, else the stored size) with its aspect ratio kept, and its
      shorter side is padded, centred, with `background` (None: the mean colour of its own border), then to the
      stored size as the loader padded.
    The result has the record's `channels` (a grey plane repeated where the model takes 3).
    """
    record = checkpoint.complete(record, None)  # a record of an earlier version: the defaults
    size = record["resolution"]
    steps: list[str] = []
    if record["fit"] == "crop":
        pixels = _crop(image, record, steps)
    else:
        pixels = _pad_to_fit(image, record, steps)
    if record["colour"] == "grey" and pixels.shape[0] != 1:
        pixels = grey(pixels)
    channels = int(record["channels"])
    if pixels.shape[0] != channels:
        pixels = pixels[:1].expand(channels, -1, -1).contiguous()
    if pixels.shape[-1] != size:
        steps.append(f"upscaled to {size}x{size} after normalising")
    return Preparation(pixels, steps, unlike_training(pixels, record))


def _crop(image: torch.Tensor, record: dict, steps: list[str]) -> torch.Tensor:
    """The `fit="crop"` route of `preparation` (eval resize, centre crop)."""
    resize, size = record["eval_resize"], record["resolution"]
    h, w = image.shape[1:]
    scale = resize / min(h, w)
    image = _resize(image, (max(size, round(h * scale)), max(size, round(w * scale))))
    top, left = (image.shape[1] - size) // 2, (image.shape[2] - size) // 2
    steps.append(f"shorter side {min(h, w)} -> {resize} (aspect kept), centre crop {size}x{size}")
    return image[:, top:top + size, left:left + size]


def _pad_to_fit(image: torch.Tensor, record: dict, steps: list[str]) -> torch.Tensor:
    """The `fit="pad"` route of `preparation` (grey, polarity, trim, scale, pad)."""
    source = record.get("source_size") or record["resolution"]
    picture = record.get("padded_from") or source     # the side the picture itself fills (Fashion-MNIST: 28)
    h, w = (int(v) for v in image.shape[1:])
    pixels = image
    if record["colour"] == "grey":
        pixels = grey(pixels)
        steps.append("grey")
    if record["polarity"] == "light_on_dark":
        level = border_median(grey(pixels))
        if level > 127.5:
            pixels = 255 - pixels
            steps.append("inverted (light background)")
    as_dataset = (h, w) in ((source, source), (picture, picture))
    if not as_dataset:
        background = record["background"]
        if record["polarity"] == "light_on_dark" and background is not None:
            level = border_median(grey(pixels))
            if 0 < level < 255 and level != background:
                # The dataset's background is exactly `background` (black); a photo's is a little lighter, and a
                # padding band of another level would draw a frame around it that no training image had.
                stretched = (pixels.float() - level) * ((255.0 - background) / (255.0 - level)) + background
                pixels = stretched.round().clamp(0, 255).byte()
                steps.append(f"background {level} -> {background}")
        if record["trim"]:
            top, bottom, left, right = object_box(pixels)
            if (bottom - top, right - left) != tuple(pixels.shape[1:]):
                pixels = pixels[:, top:bottom, left:right]
                steps.append(f"trimmed to the object ({right - left}x{bottom - top} of {w}x{h})")
        ph, pw = (int(v) for v in pixels.shape[1:])
        scale = picture / max(ph, pw)
        nh, nw = max(1, min(picture, round(ph * scale))), max(1, min(picture, round(pw * scale)))
        if (nh, nw) != (ph, pw):
            pixels = _resize(pixels, (nh, nw))
            steps.append(f"scaled {pw}x{ph} -> {nw}x{nh} (aspect kept)")
        fill = [background] * pixels.shape[0] if background is not None else \
            [round(v) for v in border_pixels(pixels).float().mean(1).tolist()]
        pixels = _pad_centred(pixels, picture, fill)
    if pixels.shape[-1] != source:
        # the loader's own padding (Fashion-MNIST's 28x28 to 32x32, with zeros); stretching instead would make
        # the garment larger than the model ever saw it
        pixels = _pad_centred(pixels, source, [0] * pixels.shape[0])
    if (h, w) != tuple(pixels.shape[1:]):
        steps.append(f"padded to {source}x{source}" + (" as in training" if as_dataset else ""))
    else:
        steps.append(f"{w}x{h} as stored")
    return pixels


def grey(image: torch.Tensor) -> torch.Tensor:
    """uint8 [C, H, W] -> uint8 [1, H, W]: ITU-R BT.601 luma of an RGB image, rounded (a grey image, its
    channels equal, comes back unchanged); one channel is returned as it is."""
    if image.shape[0] == 1:
        return image
    weights = torch.tensor(LUMA, dtype=torch.float32).view(3, 1, 1)
    return (image[:3].float() * weights).sum(0, keepdim=True).round().clamp(0, 255).byte()


def border_pixels(image: torch.Tensor) -> torch.Tensor:
    """The outermost rows and columns of a [C, H, W] image as [C, N]."""
    return torch.cat([image[:, 0], image[:, -1], image[:, 1:-1, 0], image[:, 1:-1, -1]], dim=1)


def border_median(image: torch.Tensor) -> int:
    """The median grey level of the border of a uint8 [1, H, W] image: the background, unless the object covers
    more than half of the border."""
    return int(border_pixels(image).flatten().median())


def object_box(image: torch.Tensor) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the pixels that differ from the mean colour of the four corners by more
    than `TRIM_TOLERANCE` in some channel; the whole image when none does (a blank image is not trimmed away)."""
    corners = image[:, [0, 0, -1, -1], [0, -1, 0, -1]].float().mean(1).view(-1, 1, 1)
    differs = ((image.float() - corners).abs() > TRIM_TOLERANCE).any(0)
    rows, cols = differs.any(1).nonzero().flatten(), differs.any(0).nonzero().flatten()
    if not len(rows):
        return 0, image.shape[1], 0, image.shape[2]
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _pad_centred(image: torch.Tensor, side: int, fill: Sequence[int]) -> torch.Tensor:
    """The uint8 [C, h, w] image (h, w <= side) in the middle of a side x side canvas of the colour `fill`."""
    canvas = torch.tensor(fill, dtype=torch.uint8).view(-1, 1, 1).expand(image.shape[0], side, side).clone()
    top, left = (side - image.shape[1]) // 2, (side - image.shape[2]) // 2
    canvas[:, top:top + image.shape[1], left:left + image.shape[2]] = image
    return canvas


def unlike_training(image: torch.Tensor, record: dict) -> Optional[str]:
    """A warning when the prepared uint8 image is unlike the model's training images, else None.

    The rule: on the 0-1 scale, the image's mean (brightness) and its standard deviation over all its values
    (contrast) are compared with the ranges of the training images' own means and stds, which the training run
    records (`statistics` in the input record: the smallest and largest over the training split); a value more
    than `UNLIKE_MARGIN` outside its range is unlike every training image. Records without those ranges
    (checkpoints of earlier versions, ImageNet-style runs) use the normalisation's mean M and std S where they
    were measured on the data: mean within M +/- 2S, std at least S/6. Where neither is known (a fixed
    normalisation, half or unit, on an older checkpoint) nothing is said.
    """
    reference = training_ranges(record)
    if reference is None:
        return None
    x = image.float().div(255.0)
    values = {"mean": float(x.mean()), "contrast": float(x.std(unbiased=False))}
    outside = []
    for name, value in values.items():
        low, high = reference[name]
        if not low - UNLIKE_MARGIN <= value <= high + UNLIKE_MARGIN:
            seen = f"{low:.2f}-{high:.2f}" if high != float("inf") else f"at least {low:.2f}"
            outside.append(f"{name} {value:.2f} vs {seen} in training")
    if not outside:
        return None
    return f"input unlike the training images ({'; '.join(outside)}): the answer may be meaningless"


def training_ranges(record: dict) -> Optional[dict]:
    """{"mean": (low, high), "contrast": (low, high)} of the training images, from the record (see
    `unlike_training`), or None when the record says nothing about them."""
    stats = record.get("statistics")
    if stats and "image_mean" in stats:
        return {"mean": tuple(stats["image_mean"]), "contrast": tuple(stats["image_std"])}
    mean, std = list(record.get("mean") or []), list(record.get("std") or [])
    if not mean or all(m == 0.5 for m in mean) and all(s == 0.5 for s in std) or \
            all(m == 0.0 for m in mean) and all(s == 1.0 for s in std):
        return None  # half or unit: a fixed normalisation, not the data's statistics
    m, s = sum(mean) / len(mean), sum(std) / len(std)
    return {"mean": (m - 2 * s, m + 2 * s), "contrast": (s / 6, float("inf"))}


def model_input(images, record: dict, device="cpu") -> torch.Tensor:
    """Images (a sequence of anything `to_uint8_chw` takes, or a uint8 [B, 3, H, W] batch) -> the normalised
    float32 NCHW batch the model takes: `preparation` per image, then `normalise`. The one input preparation of
    `Predictor` and of exported models (`export.ExportedModel.preprocess`)."""
    return normalise([preparation(to_uint8_chw(image), record).image for image in images], record, device)


def normalise(prepared: Sequence[torch.Tensor], record: dict, device="cpu") -> torch.Tensor:
    """Prepared uint8 [C, S, S] images -> the float32 NCHW batch: normalisation with the record's mean and std,
    and, where the stored images are smaller than the model's resolution (CIFAR at 32 px for a 128 px model),
    the bilinear upscaling the CIFAR loader applies after normalising."""
    size = record["resolution"]
    x = Normalize(record["mean"], record["std"], device)(torch.stack(list(prepared)).to(device))
    if x.shape[-1] != size:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x


def _resize(image: torch.Tensor, size) -> torch.Tensor:
    """Antialiased bilinear resize of a uint8 [3, H, W] image to `size` (an int side or (h, w))."""
    size = (size, size) if isinstance(size, int) else size
    resized = F.interpolate(image[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return resized[0].round().clamp(0, 255).byte()


@dataclass
class Answer:
    """A prediction for one image: the top-k (class name, class id, probability), most probable first, and how
    the image was prepared (`Preparation`: its line, and its warning when the image is unlike the training
    images)."""

    top: list[Prediction]
    preparation: Preparation

    @property
    def warning(self) -> Optional[str]:
        return self.preparation.warning


class Predictor:
    """A trained model in eval mode, with its class names and input preparation: from a checkpoint
    (`Predictor(path)`), or from any model callable on the normalised batch (`Predictor.of_model`: an exported
    file, see `export.predictor`)."""

    def __init__(self, checkpoint_path, device: str = "auto"):
        state = checkpoint.load(checkpoint_path)
        self.config = from_dict(state["config"])
        self.device = resolve_device(device)
        self.model = checkpoint.load_model(state, self.device)  # a foreign model is a UsageError here
        self.class_names = list(state.get("class_names") or [str(i) for i in range(self.config.num_classes)])
        self.input = checkpoint.input_record(state)
        self.input_size = self.input["resolution"]

    @classmethod
    def of_model(cls, model: Callable[[torch.Tensor], torch.Tensor], class_names: Sequence[str], record: dict,
                 config=None, device: str = "cpu") -> "Predictor":
        """A predictor around `model` (normalised float32 NCHW -> logits) with the input record `record`
        (complete, as `engine.checkpoint.input_record` returns it) and, where known, the training config."""
        predictor = cls.__new__(cls)
        predictor.config, predictor.device, predictor.model = config, resolve_device(device), model
        predictor.class_names, predictor.input = list(class_names), dict(record)
        predictor.input_size = record["resolution"]
        return predictor

    def prepare(self, image: Image) -> Preparation:
        """How `image` reaches the model (`preparation`)."""
        return preparation(to_uint8_chw(image), self.input)

    def preprocess(self, images: Sequence[Image]) -> torch.Tensor:
        return model_input(images, self.input, self.device)

    @torch.inference_mode()
    def answer_batch(self, images: Sequence[Image], top_k: int = 5) -> list[Answer]:
        """An `Answer` per image: top-k classes, the preparation line and any warning."""
        if not images:
            return []
        prepared = [self.prepare(image) for image in images]
        logits = self.model(normalise([p.image for p in prepared], self.input, self.device))
        probabilities = logits.float().softmax(dim=1)
        values, indices = probabilities.topk(min(top_k, probabilities.shape[1]), dim=1)
        return [Answer([(self.class_names[i], i, p) for p, i in zip(row_p.tolist(), row_i.tolist())], how)
                for row_p, row_i, how in zip(values.cpu(), indices.cpu(), prepared)]

    def answer(self, image: Image, top_k: int = 5) -> Answer:
        return self.answer_batch([image], top_k)[0]

    def predict_batch(self, images: Sequence[Image], top_k: int = 5) -> list[list[Prediction]]:
        """Top-k (class name, class id, probability) per image, most probable first."""
        return [answer.top for answer in self.answer_batch(images, top_k)]

    def predict(self, image: Image, top_k: int = 5) -> list[Prediction]:
        return self.predict_batch([image], top_k)[0]
