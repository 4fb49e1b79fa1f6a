"""Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, Zalando Research) as a `DataBundle`, on the CIFAR path.

70,000 grey 28x28 photos of clothing in 10 classes: the official 60,000 training and 10,000 test images,
read from the four gzipped IDX files the dataset is published as. Where they come from, in this order:

1. Debian's package `dataset-fashion-mnist`, which installs the four files under
   `/usr/share/datasets/fashion-mnist/` (another folder with `CIFAR_LAB_FASHION_MNIST_DIR`);
2. torchvision's `FashionMNIST` under `data_root` (`data_root/FashionMNIST/raw/`), which downloads the same
   files and checks their MD5 sums when `download=true`.

Without either, the run stops with one line saying how to get them; it never falls back to generated data.

What the models see. The CIFAR models take 3x32x32 images, so by default every image is padded by 2 pixels
on each side to 32x32 (with zeros: the photos lie on a black background, so the border is more background)
and its grey channel repeated three times; every CIFAR model then trains unchanged. The repeat is a view,
not a copy: the split holds one grey plane per image. Two settings change that, for the models of the
dataset's own benchmark table, which take the images as published:

- `input_size=28`: the native 28x28 images, not padded;
- `image_channels=1`: one grey channel (the model's `ModelSpec.channels` must say 1; `config.validate` checks).

Any other `input_size` pads to 32 and lets the loader resize, as it does for CIFAR.

Normalisation: `normalization=dataset` uses the mean and standard deviation of the training split as the
model sees it (padding included); `unit` only scales pixels to [0, 1], as the TensorFlow tutorial's input
pipeline does; `half` maps them to [-1, 1]. The test split is always the official 10,000 images;
`train_subset` and `test_subset` cut both as they do for CIFAR. `classes` (e.g. "5-9") keeps the images of
those classes in both splits, relabelled 0..k-1, before the subsets are cut. This module only reads the
files into uint8 tensors as the model sees them (`read_splits`); the class subset, the statistics, the
loader route and the augmentation are decided by the builder every in-memory dataset shares
(`in_memory.bundle`), as for CIFAR.

Augmentation: the loader's policies, on either loader route. `crop_flip` (pad-4 random crop, zero fill, and
a horizontal flip) is label-preserving for clothing - a shirt mirrored left to right is still a shirt - while a
vertical flip is not (an upside-down ankle boot is not a photo the test split holds), so no preset flips
vertically.

Superclasses, for the superclass accuracy of the evaluation: tops (T-shirt/top, pullover, dress, coat,
shirt), trousers, footwear (sandal, sneaker, ankle boot) and bags.
"""
from __future__ import annotations

import gzip
import os
import shutil
import struct
import zlib
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..errors import DataError, UsageError
from . import in_memory
from .bundle import DataBundle
from .cifar import CifarSplit
# Read here by `bench.time_to_accuracy`; the statistics are the in-memory builder's.
from .in_memory import statistics  # noqa: F401

NAME = "fashion_mnist"
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
DIR_VARIABLE = "CIFAR_LAB_FASHION_MNIST_DIR"
APT_PACKAGE = "dataset-fashion-mnist"

# The dataset's README, in label order.
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
COARSE_NAMES = ["tops", "trousers", "footwear", "bags"]
# fine class -> superclass: T-shirt/top, pullover, dress, coat and shirt are tops; sandal, sneaker and ankle
# boot are footwear.
COARSE_OF_FINE = (0, 1, 0, 0, 0, 2, 0, 2, 3, 2)

FILES = {True: ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         False: ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
SIDE = 28
PADDED = 32
# What the published images look like, for preparing a photo the same way (`inference.prepare`). The dataset's
# paper (Xiao, Rasul, Vollgraf 2017, "Fashion-MNIST", section 2) made each image from a product photo on a light
# background: edges close to the corner colour trimmed, the longer side scaled to 28 with the aspect ratio
# kept, the shorter side extended and the product centred, intensities negated, 8-bit grey. So: grey, light
# garments on a black (0) background, the object trimmed and padded, never stretched.
INPUT_CONVENTIONS = {"colour": "grey", "polarity": "light_on_dark", "fit": "pad", "background": 0, "trim": True}

# IDX magic numbers: two zero bytes, the element type (0x08: unsigned byte), the number of dimensions.
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


def debian_dir() -> Path:
    """Where the Debian package's files are looked for."""
    return Path(os.environ.get(DIR_VARIABLE) or DEBIAN_DIR)


def read_idx(path) -> np.ndarray:
    """One gzipped IDX file (LeCun's MNIST format): a big-endian header, then the unsigned bytes.

    Header: the magic number (0x0803 for images [N, rows, cols], 0x0801 for labels [N]), then one int32 size
    per dimension. A file that is not one is a one-line `DataError`.
    """
    path = Path(path)
    try:
        with gzip.open(path, "rb") as handle:
            raw = handle.read()
    # OSError: unreadable, or gzip.BadGzipFile (not gzip, a CRC or length that does not match); EOFError: the
    # stream ends early; zlib.error: damaged compressed data (flipped bytes).
    except (OSError, EOFError, zlib.error) as exc:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise DataError(f"{path} cannot be read as a gzipped IDX file ({reason}); put a good copy in its place "
                        f"(`sudo apt-get install --reinstall {APT_PACKAGE}`)") from None
    if len(raw) < 8:
        raise DataError(f"{path} is too short to be an IDX file ({len(raw)} bytes)")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic not in (IMAGES_MAGIC, LABELS_MAGIC):
        raise DataError(f"{path} is not an IDX file of unsigned bytes (magic number {magic:#010x}, expected "
                        f"{IMAGES_MAGIC:#010x} for images or {LABELS_MAGIC:#010x} for labels)")
    dims = magic & 0xFF
    header = 4 + 4 * dims
    shape = struct.unpack(f">{dims}I", raw[4:header])
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(f"{path} holds {len(raw) - header} data bytes but its header announces {expected} "
                        f"(shape {list(shape)}); the file is truncated or corrupt")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_split(folder, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images uint8 [N, 28, 28] and labels int64 [N] of one split from the four-file folder."""
    folder = Path(folder)
    image_file, label_file = (folder / name for name in FILES[train])
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
        raise DataError(f"{image_file} holds images of shape {list(images.shape[1:])}, not 28x28")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{label_file} holds {len(labels)} labels for the {len(images)} images of {image_file}")
    if len(labels) and int(labels.max()) >= len(CLASS_NAMES):
        raise DataError(f"{label_file} has label {int(labels.max())}; Fashion-MNIST has 10 classes (0-9)")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def has_files(folder: Path) -> bool:
    return all((folder / name).is_file() for names in FILES.values() for name in names)


def torchvision_raw(data_root) -> Path:
    """The folder torchvision's `FashionMNIST` keeps the (uncompressed) files in."""
    return Path(data_root) / "FashionMNIST" / "raw"


def torchvision_has_files(data_root) -> bool:
    raw = torchvision_raw(data_root)
    return all((raw / name[:-3]).is_file() for names in FILES.values() for name in names)


def missing_message(data_root) -> str:
    """Neither copy is there and no download was asked for: both ways to get the files."""
    return (f"Fashion-MNIST not found: neither the Debian package's files in {debian_dir()} nor torchvision's "
            f"copy in {torchvision_raw(data_root)}; install them with `sudo apt-get install {APT_PACKAGE}`, or "
            f"run with --set download=true on a machine with network access (torchvision downloads them into "
            f"data_root={data_root})")


def download_failed_message(data_root, reason: str) -> str:
    """A download was tried and failed: asking for one again would not help, the network or the package would."""
    return (f"Fashion-MNIST could not be downloaded into {torchvision_raw(data_root)} (the download failed: "
            f"{reason}); check this machine's network access, or install the official files with "
            f"`sudo apt-get install {APT_PACKAGE}` (read from {debian_dir()})")


def locate(config) -> str:
    """Which route the data comes from: "debian" or "torchvision" (a one-line UsageError when neither)."""
    if has_files(debian_dir()):
        return "debian"
    if config.download or torchvision_has_files(config.data_root):
        return "torchvision"
    raise DataError(missing_message(config.data_root))


def torchvision_split(data_root, train: bool, download: bool):
    """One split as torchvision's `FashionMNIST` under `data_root`, downloading the files (with their MD5 checks)
    first when `download` and they are not there."""
    from torchvision.datasets import FashionMNIST

    # A failed download leaves nothing behind: the folders it created are removed again.
    created = next((path for path in (Path(data_root), Path(data_root) / "FashionMNIST") if not path.exists()),
                   None)
    try:
        return FashionMNIST(data_root, train=train, download=download)
    except (RuntimeError, OSError) as exc:  # no network, a refused connection, a checksum that does not match
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if download:
            raise DataError(download_failed_message(data_root, reason)) from None
        raise DataError(f"{missing_message(data_root)} ({reason})") from None


def read_torchvision(config, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One split through torchvision's `FashionMNIST` (downloading it, with its MD5 checks, if allowed)."""
    dataset = torchvision_split(config.data_root, train, config.download)
    return dataset.data.clone(), dataset.targets.to(torch.int64)


def download(data_root) -> dict:
    """Get the four files, as `cifar-lab data download fashion-mnist` does: the Debian package's folder when it
    holds them (nothing is fetched), else torchvision's `FashionMNIST(download=True)` into `data_root`. Both
    splits are read back, so a damaged copy is a one-line `DataError`, never reported as present. Returns the
    route, the folder, whether anything was downloaded and the image count of each split."""
    if has_files(debian_dir()):
        folder = debian_dir()
        counts = [len(read_split(folder, train)[1]) for train in (True, False)]
        return {"route": "debian", "folder": folder, "downloaded": False, "train": counts[0], "test": counts[1]}
    present = torchvision_has_files(data_root)
    counts = [len(torchvision_split(data_root, train, download=True)) for train in (True, False)]
    return {"route": "torchvision", "folder": torchvision_raw(data_root), "downloaded": not present,
            "train": counts[0], "test": counts[1]}


def read_splits(config) -> tuple[CifarSplit, CifarSplit]:
    """The full train and test splits as the model sees them (see the module docstring): every class, every
    image."""
    route = locate(config)
    if route == "debian":
        folder = debian_dir()
        (train_x, train_y), (test_x, test_y) = read_split(folder, True), read_split(folder, False)
        source = str(folder)
    else:
        (train_x, train_y), (test_x, test_y) = read_torchvision(config, True), read_torchvision(config, False)
        source = str(torchvision_raw(config.data_root))
    info = {"route": route, "package": APT_PACKAGE if route == "debian" else "torchvision.datasets.FashionMNIST"}
    native = config.input_size == SIDE
    splits = []
    for images, labels in ((train_x, train_y), (test_x, test_y)):
        split = CifarSplit(prepare_images(images, native, config.image_channels), labels, list(CLASS_NAMES),
                           coarse_labels=coarse_map()[labels], coarse_names=list(COARSE_NAMES), source=source,
                           extra={"coarse_of_fine": coarse_map(), **info})
        splits.append(split)
    return splits[0], splits[1]


def load_splits(config) -> tuple[CifarSplit, CifarSplit]:
    """The splits a run on `config` uses: `classes`, `train_subset` and `test_subset` applied."""
    return in_memory.select(config, *read_splits(config))


def coarse_map() -> torch.Tensor:
    return torch.tensor(COARSE_OF_FINE, dtype=torch.long)


def prepare_images(images: torch.Tensor, native: bool, channels: int) -> torch.Tensor:
    """uint8 [N, 28, 28] -> [N, C, S, S]: padded by 2 with zeros to 32 unless `native`, the grey plane repeated
    to `channels` as a view (stride 0), so 3 channels take no more memory than one."""
    planes = images[:, None]
    if not native:
        margin = (PADDED - SIDE) // 2
        planes = torch.nn.functional.pad(planes, (margin, margin, margin, margin))
    return planes.expand(-1, channels, -1, -1)


def fashion_mnist_bundle(config, device, generator) -> DataBundle:
    if config.image_channels not in (1, 3):
        raise UsageError(f"image_channels={config.image_channels}: Fashion-MNIST is served with 1 (grey) or 3 "
                         f"(grey repeated) channels")
    train, test = read_splits(config)
    stored = int(train.images.shape[-1])
    layout = f"{config.image_channels}x{stored}x{stored}" + ("" if stored == SIDE else
                                                              " (28x28 padded by 2 with zeros)")
    return in_memory.bundle(config, device, generator, train, test, padded_from=SIDE if stored != SIDE else 0,
                            info={"route": train.extra["route"], "package": train.extra["package"],
                                  "layout": layout, "input_conventions": dict(INPUT_CONVENTIONS)})
