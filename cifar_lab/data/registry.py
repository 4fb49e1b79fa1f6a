"""Datasets by name: `DATASETS` maps each name (the config field `dataset`) to the builder that turns a
config into a `DataBundle` (train/test loaders plus what evaluation and checkpoints need)."""
from __future__ import annotations

from typing import Callable, Optional

import torch

from ..errors import UsageError
from . import imagenet
from .bundle import DataBundle
from .cifar_bundle import cifar_bundle
from .fashion_mnist import fashion_mnist_bundle

Builder = Callable[..., DataBundle]

DATASETS: dict[str, Builder] = {
    "cifar10": cifar_bundle,
    "cifar100": cifar_bundle,
    "synthetic": cifar_bundle,
    "fashion_mnist": fashion_mnist_bundle,
    "imagenet100": imagenet.imagenet100_bundle,
    "imagenet1k": imagenet.imagenet1k_bundle,
    "imagenet1k-hf": imagenet.imagenet1k_hf_bundle,
    "synthetic-imagenet": imagenet.synthetic_imagenet_bundle,
}


def names() -> list[str]:
    return sorted(DATASETS)


def build(config, device, generator: Optional[torch.Generator] = None) -> DataBundle:
    """Load the configured dataset and wrap it in loaders on `device`."""
    if config.dataset not in DATASETS:
        raise UsageError(f"unknown dataset '{config.dataset}'; choose one of: {', '.join(names())}")
    return DATASETS[config.dataset](config, torch.device(device), generator)
