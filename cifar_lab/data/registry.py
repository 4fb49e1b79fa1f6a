"""Datasets by name: each builder turns a config into train/test loaders plus what evaluation needs."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from . import cifar, synthetic
from .cifar import CifarSplit
from ..errors import UsageError
from .loader import DeviceLoader


@dataclass
class DataBundle:
    train_loader: object
    test_loader: object
    num_classes: int
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    coarse_of_fine: Optional[torch.Tensor] = None   # fine class -> superclass, where there are superclasses
    coarse_names: Optional[list[str]] = None
    train_split: Optional[CifarSplit] = None
    test_split: Optional[CifarSplit] = None
    info: dict = field(default_factory=dict)        # source folder, counts, skipped files, ...


Builder = Callable[..., DataBundle]
_BUILDERS: dict[str, Builder] = {}


def register(name: str):
    def wrap(fn: Builder) -> Builder:
        _BUILDERS[name] = fn
        return fn
    return wrap


def names() -> list[str]:
    return sorted(_BUILDERS)


def build(config, device, generator: Optional[torch.Generator] = None) -> DataBundle:
    """Load the configured dataset and wrap it in loaders on `device`."""
    return _BUILDERS[config.dataset](config, torch.device(device), generator)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std on the 0-1 scale, measured on the training split."""
    x = images.to(torch.float64).div_(255.0).transpose(0, 1).reshape(images.shape[1], -1)
    return tuple(round(v, 4) for v in x.mean(1).tolist()), tuple(round(v, 4) for v in x.std(1).tolist())


def load_cifar_splits(config) -> tuple[CifarSplit, CifarSplit]:
    """The train and test splits named by `config.dataset`, from disk (downloading real data if allowed)."""
    if config.dataset == "synthetic":
        base = synthetic.write(config.data_root, config.num_classes, config.synthetic_train_size,
                               config.synthetic_test_size, seed=0)
        spec = synthetic.spec_for(config.num_classes)
    else:
        spec, base = cifar.SPECS[config.dataset], config.data_root
        if config.download:
            cifar.download(spec, base, progress=config.progress)
    train = cifar.load_split(spec, base, train=True)
    test = cifar.load_split(spec, base, train=False)
    return train.subset(config.train_subset, seed=config.seed), test.subset(config.test_subset, seed=config.seed)


def cifar_bundle(config, device, generator) -> DataBundle:
    train, test = load_cifar_splits(config)
    if config.normalization == "half":
        mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    else:
        mean, std = channel_stats(train.images)
    common = dict(device=device, mean=mean, std=std, channels_last=config.channels_last,
                  input_size=config.input_size)
    if config.loader == "torchvision":
        from .reference import make_loader

        if config.augment not in ("crop_flip", "none"):
            raise UsageError(f"loader=torchvision implements only the crop_flip augmentation, not "
                             f"'{config.augment}'; use loader=device or augment=crop_flip")

        train_loader = make_loader(train.images, train.labels, config.batch_size, mean=mean, std=std, train=True,
                                   num_workers=config.num_workers, seed=config.seed, input_size=config.input_size)
        test_loader = make_loader(test.images, test.labels, config.eval_batch_size, mean=mean, std=std,
                                  train=False, num_workers=config.num_workers, input_size=config.input_size)
    else:
        train_loader = DeviceLoader(train.images, train.labels, config.batch_size, train=True,
                                    policy=config.augment, generator=generator, **common)
        test_loader = DeviceLoader(test.images, test.labels, config.eval_batch_size, train=False, **common)
    return DataBundle(
        train_loader=train_loader, test_loader=test_loader, num_classes=len(train.class_names),
        class_names=train.class_names, mean=mean, std=std, coarse_of_fine=train.coarse_of_fine,
        coarse_names=train.coarse_names, train_split=train, test_split=test,
        info={"source": train.source, "train_samples": len(train), "test_samples": len(test)},
    )


for _name in ("cifar10", "cifar100", "synthetic"):
    register(_name)(cifar_bundle)
