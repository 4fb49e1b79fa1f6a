"""The one builder of the datasets held in memory as uint8 tensors: CIFAR-10, CIFAR-100, the synthetic
stand-in and Fashion-MNIST.

A dataset module only reads its files into two `CifarSplit`s - uint8 images [N, C, S, S] as the model is to
see them, int64 labels, class names, superclasses where there are some - and hands them to `bundle`, which
decides everything else the same way for every one of them:

- which samples: `classes` keeps some of the classes, relabelled 0..k-1 (`class_subset.keep_classes`), then
  `train_subset` and `test_subset` cut both splits (`select`);
- the normalisation statistics (`statistics`): measured on the training split as the model sees it (after
  `select`), or fixed by `normalization`;
- the loader route and the augmentation (`loaders`): `loader=device` is `loader.DeviceLoader`,
  `loader=torchvision` is `reference.make_loader`; both apply the policy `augment` to the training split and
  none to the test split.

Several processes: the engine turns whatever loaders a builder returns into one rank's share with their
`sharded(rank, world, seed)`, which both routes implement (`loader.rank_seed` seeds every rank).
"""
from __future__ import annotations

from typing import Optional

import torch

from ..errors import UsageError
from .bundle import DataBundle
from .cifar import CifarSplit
from .class_subset import class_ids, keep_classes
from .loader import DeviceLoader


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and sample (Bessel-corrected) standard deviation on the 0-1 scale, over every pixel of
    `images` (uint8 [N, C, H, W]), rounded to 4 decimals.

    Computed from each channel's histogram of the 256 grey levels: exact, and without a float copy of the
    split. A channel dimension repeated as a view (stride 0: Fashion-MNIST's grey plane served as three
    channels) is one plane, counted once.
    """
    channels = images.shape[1]
    planes = 1 if channels > 1 and images.stride(1) == 0 else channels
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(planes):
        counts = torch.bincount(images[:, c].reshape(-1), minlength=256).to(torch.float64)
        total = counts.sum()
        mean = float((counts * levels).sum() / total)
        var = float((counts * (levels - mean) ** 2).sum() / (total - 1))
        means.append(round(mean, 4))
        stds.append(round(var ** 0.5, 4))
    if planes != channels:
        means, stds = means * channels, stds * channels
    return tuple(means), tuple(stds)


def statistics(normalization: str, images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean and std a loader normalises with, one per channel of `images` (the training split):
    `dataset` measures them (`channel_stats`), `half` maps pixels to [-1, 1], `unit` only scales them to
    [0, 1]."""
    channels = images.shape[1]
    if normalization == "half":
        return (0.5,) * channels, (0.5,) * channels
    if normalization == "unit":
        return (0.0,) * channels, (1.0,) * channels
    return channel_stats(images)


def select(config, train: CifarSplit, test: CifarSplit) -> tuple[CifarSplit, CifarSplit]:
    """The samples a run uses: the classes `config.classes` keeps (all when empty), then the subsets
    `train_subset` and `test_subset` (a fixed permutation of `seed`)."""
    if config.classes:
        kept = class_ids(config.dataset, config.classes)
        train, test = keep_classes(train, kept), keep_classes(test, kept)
    return train.subset(config.train_subset, seed=config.seed), test.subset(config.test_subset, seed=config.seed)


def loaders(config, device, generator: Optional[torch.Generator], train: CifarSplit, test: CifarSplit,
            mean, std) -> tuple[object, object]:
    """The train and test loaders of the route `config.loader`; the training one augments with `config.augment`
    on either route."""
    if config.loader == "torchvision":
        from . import reference

        layout = tuple(train.images.shape[1:])
        if layout != (3, reference.SIDE, reference.SIDE):
            raise UsageError(f"loader=torchvision serves 3x{reference.SIDE}x{reference.SIDE} images, as the CIFAR "
                             f"models see them, and these are {'x'.join(map(str, layout))} "
                             f"(input_size={config.input_size}, image_channels={config.image_channels}); use "
                             f"loader=device")
        common = dict(mean=mean, std=std, num_workers=config.num_workers, input_size=config.input_size)
        return (reference.make_loader(train.images, train.labels, config.batch_size, train=True, seed=config.seed,
                                      augment=config.augment, **common),
                reference.make_loader(test.images, test.labels, config.eval_batch_size, train=False, **common))
    common = dict(device=device, mean=mean, std=std, channels_last=config.channels_last,
                  input_size=config.input_size)
    return (DeviceLoader(train.images, train.labels, config.batch_size, train=True, policy=config.augment,
                         generator=generator, **common),
            DeviceLoader(test.images, test.labels, config.eval_batch_size, train=False, **common))


def bundle(config, device, generator: Optional[torch.Generator], train: CifarSplit, test: CifarSplit, *,
           padded_from: int = 0, info: Optional[dict] = None) -> DataBundle:
    """The `DataBundle` of the full splits `train` and `test` as a dataset module read them: samples selected,
    statistics measured, loaders built. `padded_from`: the side of the published images where the stored ones
    were padded (Fashion-MNIST's 28); `info`: what the dataset module found (its route, its layout), added to
    the source and the sample counts."""
    train, test = select(config, train, test)
    mean, std = statistics(config.normalization, train.images)
    train_loader, test_loader = loaders(config, device, generator, train, test, mean, std)
    found = {"source": train.source, **(info or {}), "train_samples": len(train), "test_samples": len(test)}
    if "kept_classes" in train.extra:
        found["kept_classes"] = train.extra["kept_classes"]
    return DataBundle(
        train_loader=train_loader, test_loader=test_loader, num_classes=len(train.class_names),
        class_names=list(train.class_names), mean=mean, std=std, resolution=config.input_size,
        source_size=int(train.images.shape[-1]), padded_from=padded_from, coarse_of_fine=train.coarse_of_fine,
        coarse_names=None if train.coarse_names is None else list(train.coarse_names), train_split=train,
        test_split=test, info=found,
    )
