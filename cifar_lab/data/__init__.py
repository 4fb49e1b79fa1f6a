"""Datasets, the device-resident loader, batched augmentation and the torchvision reference route."""
from .cifar import CIFAR10, CIFAR100, CifarSplit, download, load_split  # noqa: F401
from .registry import DataBundle, build, channel_stats, load_cifar_splits, names  # noqa: F401
