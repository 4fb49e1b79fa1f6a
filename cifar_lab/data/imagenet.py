"""ImageNet-100 and ImageNet-1k: JPEG folder trees and the Hugging Face dataset, as registered datasets.

Folder layout (torchvision's ImageFolder): `ROOT/{train,val}/<wnid>/*.JPEG`; classes are the wnid folders in
sorted order. Datasets registered here:

- `imagenet100`: `imagenet_root` holding the 100 CMC classes (built with `cifar-lab data imagenet100`), or a
  full ImageNet-1k tree from which those 100 are taken;
- `imagenet1k`: every class folder under `imagenet_root` (any ImageFolder tree, generated ones included);
- `imagenet1k-hf`: `hf_dataset` through the `datasets` library - the hub's `ILSVRC/imagenet-1k` (gated: the
  terms and the token are the user's) or a local copy (a `save_to_disk` folder or a folder of parquet files);
- `synthetic-imagenet`: a generated JPEG tree (`synthetic_jpeg.py`) written under `data_root`, CPU-sized.

Images pass through `jpeg_pipeline` (route `jpeg_route`); grayscale/CMYK become RGB; corrupt files are
reported with their path, skipped, and counted in `info["skipped_files"]` (copied into summary.json). Data no
run can learn from is refused before the run starts: an empty class folder, a single class, a split of which
no sampled image decodes, labels outside the class list.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import DataError, UsageError
from ..io import staged_dir
from . import synthetic_jpeg
from .imagenet_classes import imagenet100_wnids
from .bundle import DataBundle
from .jpeg_pipeline import (IMAGENET_MEAN, IMAGENET_STD, FolderSource, SkipLog, decode_rgb, default_eval_resize,
                            make_loader)

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
HF_HUB_NAME = "ILSVRC/imagenet-1k"
JPEG_AUGMENT = "crop_flip"  # the config's default `augment`: on the JPEG routes, their own augmentation
SUBSET_HINT = "build it with `cifar-lab data imagenet100 --from IMAGENET1K_DIR --to DIR`"


# --- folder trees -----------------------------------------------------------------------------------------

def class_folders(split_dir) -> list[str]:
    return sorted(d.name for d in Path(split_dir).iterdir() if d.is_dir() and not d.name.startswith("."))


def split_dir(root, split: str) -> Path:
    folder = Path(root).expanduser() / split
    if not folder.is_dir():
        raise DataError(f"{folder} does not exist: expected the ImageNet layout ROOT/{{train,val}}/<wnid>/*.JPEG "
                        f"under {Path(root).expanduser()}")
    if not class_folders(folder):
        flat = any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())
        raise DataError(f"{folder} has no class folders" + (
            " (its images lie flat, as in the official val archive: sort them into <wnid> folders first)"
            if flat else ""))
    return folder


def scan_split(root, split: str, classes: list[str]) -> FolderSource:
    """Every image file of `split` under the given class folders (label = position in `classes`)."""
    folder = split_dir(root, split)
    files, labels = [], []
    for label, wnid in enumerate(classes):
        class_dir = folder / wnid
        if not class_dir.is_dir():
            raise DataError(f"{class_dir} is missing: {split}/ must hold the same class folders as train/")
        names = sorted(n for n in os.listdir(class_dir) if n.lower().endswith(IMAGE_SUFFIXES))
        if not names:  # it would still be a class: one the model is trained to predict from no example
            raise DataError(f"{class_dir} holds no image files (*.JPEG, *.jpg, *.png); put the class's images in "
                            f"it, or remove the folder from train/ and val/")
        files += [str(class_dir / n) for n in names]
        labels += [label] * len(names)
    if not files:
        raise DataError(f"no image files (*.JPEG, *.jpg, *.png) under {folder}")
    return FolderSource(files, labels)


def imagenet100_classes_in(root) -> list[str]:
    """The 100 CMC wnids, checked to exist under ROOT/train (a subset or a full ImageNet-1k tree)."""
    present = set(class_folders(split_dir(root, "train")))
    wanted = imagenet100_wnids()
    missing = [w for w in wanted if w not in present]
    if missing:
        raise DataError(f"{Path(root).expanduser() / 'train'} lacks {len(missing)} of the 100 ImageNet-100 classes "
                        f"(first: {', '.join(missing[:3])}); point imagenet_root at an ImageNet-100 tree, "
                        f"{SUBSET_HINT}")
    return sorted(wanted)


class SubsetSource:
    """A fixed random subset of a source (train_subset / test_subset)."""

    def __init__(self, source, count: int, seed: int):
        self.source = source
        order = torch.randperm(len(source), generator=torch.Generator().manual_seed(seed))
        self.indices = sorted(order[:count].tolist())

    def __len__(self) -> int:
        return len(self.indices)

    def record(self, index: int):
        return self.source.record(self.indices[index])


def _subset(source, count: int, seed: int):
    return SubsetSource(source, count, seed) if 0 < count < len(source) else source


# --- Hugging Face -------------------------------------------------------------------------------------------

class HFSource:
    """One split of a Hugging Face image-classification dataset (`image` and `label` features).

    The image column is read undecoded, so the bytes go through the same decoder as files on disk and a
    corrupt image is skipped the same way; its name is `dataset[split][index]`.
    """

    def __init__(self, split_dataset, name: str, split: str):
        import datasets

        self.dataset = split_dataset.cast_column("image", datasets.Image(decode=False))
        self.name, self.split = name, split
        self.labels = None
        self.split_is_train = split == "train"

    def __len__(self) -> int:
        return len(self.dataset)

    def by_node(self, rank: int, world: int) -> "HFSource":
        """Rank `rank`'s part of the split, as `datasets.distributed.split_dataset_by_node` assigns it (one
        contiguous block each; the blocks differ in size by at most one, so the trainer shortens them to the
        smallest on the training split: every rank must take as many batches)."""
        from datasets.distributed import split_dataset_by_node

        part = HFSource.__new__(HFSource)
        part.dataset = split_dataset_by_node(self.dataset, rank=rank, world_size=world)
        if self.split_is_train:
            part.dataset = part.dataset.select(range(len(self.dataset) // world))
        part.name, part.split, part.labels, part.split_is_train = self.name, self.split, None, self.split_is_train
        return part

    def record(self, index: int) -> tuple[bytes, int, str]:
        row = self.dataset[index]
        image = row["image"] or {}
        data = image.get("bytes")
        if data is None and image.get("path"):
            try:
                data = Path(image["path"]).read_bytes()
            except OSError:
                data = b""
        return data or b"", int(row["label"]), f"{self.name}[{self.split}][{index}]"


def _import_datasets():
    try:
        import datasets
    except ImportError:
        raise DataError("the Hugging Face route needs the `datasets` package: pip install 'cifar-lab[imagenet]' "
                        "(or pip install datasets)") from None
    return datasets


def load_hf(name_or_path: str):
    """A DatasetDict from a local `save_to_disk` folder, a local folder of parquet files, or the hub."""
    datasets = _import_datasets()
    local = Path(name_or_path).expanduser()
    if local.exists():
        try:
            if (local / "dataset_dict.json").is_file() or (local / "state.json").is_file():
                loaded = datasets.load_from_disk(str(local))
            else:
                loaded = datasets.load_dataset(str(local))
        except Exception as exc:  # the library raises many types; the user needs one line naming the folder
            raise DataError(f"cannot read a Hugging Face dataset from {local}: {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    else:
        try:
            loaded = datasets.load_dataset(name_or_path)
        except Exception as exc:
            raise DataError(
                f"cannot load Hugging Face dataset '{name_or_path}' ({type(exc).__name__}): it is gated - accept its "
                f"terms at https://huggingface.co/datasets/{name_or_path}, log in (`hf auth login` or HF_TOKEN) on a "
                f"machine with internet, or set hf_dataset= to a local copy (a save_to_disk folder or parquet files)"
            ) from None
    if not isinstance(loaded, datasets.DatasetDict):
        raise DataError(f"{name_or_path} holds a single split; it needs a train split and a validation split")
    return loaded


def hf_splits(loaded, name: str):
    if "train" not in loaded:
        raise DataError(f"{name} has no 'train' split (splits: {', '.join(loaded)})")
    val = next((s for s in ("validation", "val", "test") if s in loaded), None)
    if val is None:
        raise DataError(f"{name} has no 'validation' split (splits: {', '.join(loaded)})")
    for split in ("train", val):
        missing = {"image", "label"} - set(loaded[split].features)
        if missing:
            raise DataError(f"{name}[{split}] lacks the feature(s) {', '.join(sorted(missing))}; expected image + label")
    return "train", val


def hf_class_names(split_dataset) -> list[str]:
    feature = split_dataset.features["label"]
    if hasattr(feature, "names"):
        return list(feature.names)
    count = int(max(split_dataset["label"])) + 1
    return [str(k) for k in range(count)]


def check_hf_labels(loaded, name: str, splits: tuple[str, ...]) -> None:
    """Every label of every split is a class index of the first split's class list: integers (a `ClassLabel`
    or an integer `Value`) from 0 to the class count - 1. One column read per split, before any run starts."""
    import numpy as np

    for split in splits:
        dtype = str(getattr(loaded[split].features["label"], "dtype", "unknown"))
        if not dtype.startswith(("int", "uint")):  # a ClassLabel's dtype is int64
            raise DataError(f"{name}[{split}] has labels of type {dtype}, not class indices; encode them as a "
                            f"ClassLabel (dataset.class_encode_column('label')) and save the dataset again")
    columns = {split: np.asarray(loaded[split].with_format("numpy")["label"]) for split in splits}
    # Checked before the class count is read off the first split: a NaN there would not convert to an int.
    for split, labels in columns.items():
        if labels.size and labels.dtype.kind not in "iu":  # rows without a label come back as floats or objects
            raise DataError(f"{name}[{split}] has rows without a label; give every image its class index (or "
                            f"drop those rows with dataset.filter) and save the dataset again")
    names = getattr(loaded[splits[0]].features["label"], "names", None)
    first = columns[splits[0]]
    count = len(names) if names is not None else int(first.max()) + 1 if first.size else 0
    for split, labels in columns.items():
        outside = labels[(labels < 0) | (labels >= count)]
        if outside.size:
            raise DataError(f"{name}[{split}] has label {int(outside[0])}, outside 0-{count - 1} (the {count} "
                            f"classes of {name}[{splits[0]}]); fix the labels, or the label feature's class names, "
                            f"and save the dataset again")


# --- bundles ------------------------------------------------------------------------------------------------

def resolve_sizes(config, default_size: int) -> tuple[int, int]:
    """(crop size, eval resize): `image_size`/`eval_resize` as configured, or the dataset's defaults where 0.
    The engine records what this returns in the run's config."""
    size = config.image_size or default_size
    resize = config.eval_resize or default_eval_resize(size)
    if resize < size:
        raise DataError(f"eval_resize={resize} is smaller than image_size={size}; the centre crop must fit inside "
                        f"the resized image")
    return size, resize


def jpeg_bundle(config, device, train_source, test_source, class_names: list[str], info: dict,
                default_size: int = 224, pretrained_usable: bool = True) -> DataBundle:
    # The JPEG routes train with their own augmentation (`jpeg_pipeline`); the default `augment` stands for it,
    # and any other policy is refused rather than ignored.
    if config.augment != JPEG_AUGMENT:
        raise UsageError(f"augment={config.augment}: the ImageNet routes train with their own augmentation "
                         f"(random resized crop, horizontal flip, colour jitter) and implement no other policy; "
                         f"leave augment={JPEG_AUGMENT}")
    size, resize = resolve_sizes(config, default_size)
    if len(class_names) < 2:
        raise DataError(f"{info['source']} has a single class ({', '.join(class_names) or 'none'}); a classifier "
                        f"needs at least two classes, each with its images")
    train_source = _subset(train_source, config.train_subset, config.seed)
    test_source = _subset(test_source, config.test_subset, config.seed)
    check_decodable(train_source, f"the train split of {info['source']}")
    check_decodable(test_source, f"the validation split of {info['source']}")
    info.update(train_samples=len(train_source), test_samples=len(test_source), image_size=size,
                eval_resize=resize, jpeg_route=config.jpeg_route)
    skip_log = SkipLog(info)
    common = dict(device=device, size=size, resize=resize, skip_log=skip_log, num_workers=config.num_workers,
                  seed=config.seed, channels_last=config.channels_last)
    train_loader = make_loader(config.jpeg_route, train_source, config.batch_size, train=True, **common)
    test_loader = make_loader(config.jpeg_route, test_source, config.eval_batch_size, train=False, **common)
    return DataBundle(train_loader=train_loader, test_loader=test_loader, num_classes=len(class_names),
                      class_names=class_names, mean=IMAGENET_MEAN, std=IMAGENET_STD, resolution=size,
                      eval_resize=resize, pretrained_usable=pretrained_usable, info=info)


PROBE_IMAGES = 16   # images decoded per split before a run starts


def check_decodable(source, what: str) -> None:
    """Refuse a split of which not one image decodes, among `PROBE_IMAGES` spread evenly over it (all of
    them in a smaller split): a run on it would train on nothing, or evaluate on nothing, and call it done.
    Single unreadable files are the loaders' business: they skip and count them."""
    if len(source) == 0:
        raise DataError(f"{what} has no images")
    count = min(len(source), PROBE_IMAGES)
    picks = sorted({round(k * (len(source) - 1) / max(1, count - 1)) for k in range(count)})
    failed = []
    for index in picks:
        data, _, name = source.record(index)
        try:
            decode_rgb(data)
            return
        except Exception:  # PIL raises several types for bad data; every one means "cannot be decoded"
            failed.append(name)
    tried = f"all {len(picks)}" if len(picks) == len(source) else f"{len(picks)} spread over its {len(source)}"
    raise DataError(f"no image of {what} can be decoded ({tried} tried; first: {failed[0]}): the files are "
                    f"corrupt, empty or unreadable; replace them or fix their permissions")


def _root(config, dataset: str) -> Path:
    if not config.imagenet_root:
        hint = SUBSET_HINT if dataset == "imagenet100" else "a folder with train/<wnid>/*.JPEG and val/<wnid>/*.JPEG"
        raise DataError(f"dataset={dataset} reads JPEG folders: set imagenet_root=DIR ({hint})")
    return Path(config.imagenet_root).expanduser()


def folder_bundle(config, device, root: Path, classes: list[str]) -> DataBundle:
    train = scan_split(root, "train", classes)
    test = scan_split(root, "val", classes)
    return jpeg_bundle(config, device, train, test, classes, {"source": str(root)})


def imagenet100_bundle(config, device, generator=None) -> DataBundle:
    root = _root(config, "imagenet100")
    return folder_bundle(config, device, root, imagenet100_classes_in(root))


def imagenet1k_bundle(config, device, generator=None) -> DataBundle:
    root = _root(config, "imagenet1k")
    return folder_bundle(config, device, root, class_folders(split_dir(root, "train")))


def imagenet1k_hf_bundle(config, device, generator=None) -> DataBundle:
    name = config.hf_dataset or HF_HUB_NAME
    loaded = load_hf(name)
    train_split, val_split = hf_splits(loaded, name)
    check_hf_labels(loaded, name, (train_split, val_split))
    class_names = hf_class_names(loaded[train_split])
    return jpeg_bundle(config, device, HFSource(loaded[train_split], name, train_split),
                       HFSource(loaded[val_split], name, val_split), class_names,
                       {"source": f"huggingface:{name}"})


SYNTHETIC_IMAGE_SIZE = 64   # crops of the generated tree: small enough for ResNet-50 on a laptop CPU


def synthetic_imagenet_bundle(config, device, generator=None) -> DataBundle:
    """The generated JPEG tree, read by the same folder code as real ImageNet. It never loads pretrained
    weights (`pretrained_usable` False): the images are not photographs and the run must work offline."""
    folder = synthetic_jpeg.folder_for(config.data_root, config.num_classes, config.synthetic_jpeg_train_per_class,
                                       config.synthetic_jpeg_val_per_class, config.synthetic_jpeg_px, seed=0)
    root = synthetic_jpeg.write_tree(folder, config.num_classes, config.synthetic_jpeg_train_per_class,
                                     config.synthetic_jpeg_val_per_class, config.synthetic_jpeg_px, seed=0)
    classes = class_folders(split_dir(root, "train"))
    return jpeg_bundle(config, device, scan_split(root, "train", classes), scan_split(root, "val", classes),
                       classes, {"source": str(root)}, default_size=min(SYNTHETIC_IMAGE_SIZE, config.synthetic_jpeg_px),
                       pretrained_usable=False)


# --- the ImageNet-100 subset builder --------------------------------------------------------------------

def build_imagenet100(source_root, out_root, link: str = "symlink") -> dict:
    """Make `out_root/{train,val}/<wnid>` for the 100 CMC classes out of an ImageNet-1k tree, with links.

    `symlink`: one symbolic link per class folder (instant, any file system). `hardlink`: a hard link per file
    (same file system only; survives moving the source). Built in a staging folder and renamed into place.
    """
    if link not in ("symlink", "hardlink"):
        raise DataError(f"--link must be symlink or hardlink, got {link!r}")
    source, out = Path(source_root).expanduser().resolve(), Path(out_root).expanduser()
    wnids = sorted(imagenet100_wnids())
    for split in ("train", "val"):
        present = set(class_folders(split_dir(source, split)))
        missing = [w for w in wnids if w not in present]
        if missing:
            raise DataError(f"{source / split} lacks {len(missing)} of the 100 ImageNet-100 classes (first: "
                            f"{', '.join(missing[:3])}); --from must be an ImageNet-1k tree ROOT/{{train,val}}/<wnid>")
    if out.exists() and any(out.iterdir()):
        if all((out / s / w).is_dir() for s in ("train", "val") for w in wnids):
            return {"out": str(out), "classes": len(wnids), "created": False, "link": link}
        raise DataError(f"{out} exists and is not an ImageNet-100 tree; choose an empty or new --to folder")
    files = 0
    try:
        with staged_dir(out, prefix=".imagenet100-") as staging:  # `out` is absent or empty (checked above)
            for split in ("train", "val"):
                (staging / split).mkdir()
                for wnid in wnids:
                    target = source / split / wnid
                    if link == "symlink":
                        (staging / split / wnid).symlink_to(target, target_is_directory=True)
                        files += sum(1 for _ in os.scandir(target))
                    else:
                        (staging / split / wnid).mkdir()
                        for entry in os.scandir(target):
                            os.link(entry.path, staging / split / wnid / entry.name)
                            files += 1
    except OSError as exc:
        raise DataError(f"cannot link {source} into {out}: {exc.strerror or exc}"
                        + (" (hard links need one file system; try --link symlink)" if link == "hardlink" else "")
                        ) from None
    return {"out": str(out), "classes": len(wnids), "files": files, "created": True, "link": link}


def tree_to_hf(root, out_dir) -> Path:
    """Export an ImageFolder tree as a Hugging Face DatasetDict (`save_to_disk`) with the schema of
    ILSVRC/imagenet-1k: an `image` feature holding the JPEG bytes and a `label` ClassLabel; splits train and
    validation. Used to run the Hugging Face route offline on generated data."""
    datasets = _import_datasets()
    root, out = Path(root).expanduser(), Path(out_dir).expanduser()
    if (out / "dataset_dict.json").is_file():
        return out
    classes = class_folders(split_dir(root, "train"))
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=classes)})
    splits = {}
    for split, hf_name in (("train", "train"), ("val", "validation")):
        source = scan_split(root, split, classes)
        splits[hf_name] = datasets.Dataset.from_dict(
            {"image": [{"bytes": Path(f).read_bytes(), "path": None} for f in source.files],
             "label": source.labels}, features=features)
    quiet = datasets.utils.logging.is_progress_bar_enabled()
    datasets.utils.logging.disable_progress_bar()  # keeps notebooks' outputs free of progress bars
    try:
        datasets.DatasetDict(splits).save_to_disk(str(out))
    finally:
        if quiet:
            datasets.utils.logging.enable_progress_bar()
    return out
