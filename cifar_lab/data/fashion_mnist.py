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
those classes in both splits, relabelled 0..k-1, before the subsets are cut (`keep_classes`).

Augmentation: the loader's policies. `crop_flip` (pad-4 random crop and a horizontal flip) is label-
preserving for clothing - a shirt mirrored left to right is still a shirt - while a vertical flip is not (an
upside-down ankle boot is not a photo the test split holds), so no preset flips vertically.

Superclasses, for the superclass accuracy of the evaluation: tops (T-shirt/top, pullover, dress, coat,
shirt), trousers, footwear (sandal, sneaker, ankle boot) and bags.
"""
from __future__ import annotations

import gzip
import os
import shutil
import struct
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..errors import DataError, UsageError
from .bundle import DataBundle
from .class_subset import class_ids
from .cifar import CifarSplit
from .loader import DeviceLoader

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
    except (OSError, EOFError) as exc:
        raise DataError(f"{path} cannot be read as a gzipped IDX file ({exc})") from None
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
    return (f"Fashion-MNIST not found: neither the Debian package's files in {debian_dir()} nor torchvision's "
            f"copy in {torchvision_raw(data_root)}; install them with `sudo apt-get install {APT_PACKAGE}`, or "
            f"run with --set download=true on a machine with network access (torchvision downloads them into "
            f"data_root={data_root})")


def locate(config) -> str:
    """Which route the data comes from: "debian" or "torchvision" (a one-line UsageError when neither)."""
    if has_files(debian_dir()):
        return "debian"
    if config.download or torchvision_has_files(config.data_root):
        return "torchvision"
    raise DataError(missing_message(config.data_root))


def read_torchvision(config, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One split through torchvision's `FashionMNIST` (downloading it, with its MD5 checks, if allowed)."""
    from torchvision.datasets import FashionMNIST

    # A failed download leaves nothing behind: the folders it created are removed again.
    created = next((path for path in (Path(config.data_root), Path(config.data_root) / "FashionMNIST")
                    if not path.exists()), None)
    try:
        dataset = FashionMNIST(config.data_root, train=train, download=config.download)
    except (RuntimeError, OSError) as exc:  # no network, a refused connection, a checksum that does not match
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"{missing_message(config.data_root)} (the download failed: {reason})") from None
    return dataset.data.clone(), dataset.targets.to(torch.int64)


def load_splits(config) -> tuple[CifarSplit, CifarSplit]:
    """The train and test splits as the model sees them (see the module docstring), subsets applied."""
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
    train, test = splits
    if config.classes:
        kept = class_ids(config.dataset, config.classes)
        train, test = keep_classes(train, kept), keep_classes(test, kept)
    return train.subset(config.train_subset, seed=config.seed), test.subset(config.test_subset, seed=config.seed)


def keep_classes(split: CifarSplit, kept: list[int]) -> CifarSplit:
    """The images of the classes `kept` (ascending ids), labelled 0..k-1 in that order (what a k-class head
    predicts). The superclass map follows: the superclasses of the kept classes, renumbered 0..m-1 in order, so
    that the superclass accuracy still counts a sandal taken for a sneaker as right; the superclasses no kept
    class belongs to are dropped."""
    kept_tensor = torch.tensor(kept, dtype=torch.long)
    relabel = torch.full((len(split.class_names),), -1, dtype=torch.long)
    relabel[kept_tensor] = torch.arange(len(kept))
    index = torch.nonzero(relabel[split.labels] >= 0).flatten()
    coarse_of_kept = split.coarse_of_fine[kept_tensor]
    coarse_ids = sorted(set(coarse_of_kept.tolist()))
    renumber = torch.full((int(coarse_of_kept.max()) + 1,), -1, dtype=torch.long)
    renumber[torch.tensor(coarse_ids)] = torch.arange(len(coarse_ids))
    coarse_of_fine = renumber[coarse_of_kept]
    labels = relabel[split.labels[index]]
    extra = {**split.extra, "coarse_of_fine": coarse_of_fine, "kept_classes": list(kept)}
    return CifarSplit(split.images[index], labels, [split.class_names[i] for i in kept],
                      coarse_labels=coarse_of_fine[labels], coarse_names=[split.coarse_names[i] for i in coarse_ids],
                      source=split.source, extra=extra)


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


def statistics(normalization: str, images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std on the 0-1 scale. `dataset`: measured on `images` (the training split) from
    its histogram of grey levels, exact and without a float copy of the split."""
    channels = images.shape[1]
    if normalization == "half":
        return (0.5,) * channels, (0.5,) * channels
    if normalization == "unit":
        return (0.0,) * channels, (1.0,) * channels
    counts = torch.bincount(images[:, 0].reshape(-1), minlength=256).to(torch.float64)
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    total = counts.sum()
    mean = float((counts * levels).sum() / total)
    var = float((counts * (levels - mean) ** 2).sum() / (total - 1))
    return (round(mean, 4),) * channels, (round(var ** 0.5, 4),) * channels


def fashion_mnist_bundle(config, device, generator) -> DataBundle:
    if config.image_channels not in (1, 3):
        raise UsageError(f"image_channels={config.image_channels}: Fashion-MNIST is served with 1 (grey) or 3 "
                         f"(grey repeated) channels")
    train, test = load_splits(config)
    mean, std = statistics(config.normalization, train.images)
    resolution = config.input_size
    if config.loader == "torchvision":
        from .reference import make_loader

        if config.augment not in ("crop_flip", "none") or resolution == SIDE or config.image_channels != 3:
            raise UsageError("loader=torchvision serves Fashion-MNIST only as the CIFAR models see it (3 channels, "
                             "32 px, augment crop_flip or none); use loader=device")
        train_loader = make_loader(train.images, train.labels, config.batch_size, mean=mean, std=std, train=True,
                                   num_workers=config.num_workers, seed=config.seed, input_size=resolution)
        test_loader = make_loader(test.images, test.labels, config.eval_batch_size, mean=mean, std=std,
                                  train=False, num_workers=config.num_workers, input_size=resolution)
    else:
        common = dict(device=device, mean=mean, std=std, channels_last=config.channels_last, input_size=resolution)
        train_loader = DeviceLoader(train.images, train.labels, config.batch_size, train=True,
                                    policy=config.augment, generator=generator, **common)
        test_loader = DeviceLoader(test.images, test.labels, config.eval_batch_size, train=False, **common)
    stored = int(train.images.shape[-1])
    return DataBundle(
        train_loader=train_loader, test_loader=test_loader, num_classes=len(train.class_names),
        class_names=list(train.class_names), mean=mean, std=std, resolution=resolution, source_size=stored,
        padded_from=SIDE if stored != SIDE else 0,
        coarse_of_fine=train.coarse_of_fine, coarse_names=list(train.coarse_names), train_split=train,
        test_split=test,
        info={"source": train.source, "route": train.extra["route"], "package": train.extra["package"],
              "train_samples": len(train), "test_samples": len(test),
              **({"kept_classes": train.extra["kept_classes"]} if config.classes else {}),
              "layout": f"{config.image_channels}x{stored}x{stored}" + ("" if stored == SIDE else
                                                                          " (28x28 padded by 2 with zeros)")},
    )
