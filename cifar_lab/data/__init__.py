"""Datasets, the device-resident loader, batched augmentation and the torchvision reference route."""
from .cifar import CIFAR10, CIFAR100, CifarSplit, download, load_split  # noqa: F401
from .registry import DataBundle, build, channel_stats, load_cifar_splits, names  # noqa: F401
from . import augment_extra  # noqa: E402,F401  (registers crop_flip_cutout and naivenet)
from . import imagenet  # noqa: E402,F401  (registers imagenet100, imagenet1k, imagenet1k-hf, synthetic-imagenet)
