"""Datasets, the device-resident loader, batched augmentation and the torchvision reference route."""
from .bundle import DataBundle  # noqa: F401
from .cifar import CIFAR10, CIFAR100, CifarSplit, download, load_split  # noqa: F401
from .cifar_bundle import load_cifar_splits  # noqa: F401
from .in_memory import channel_stats  # noqa: F401
from .registry import build, names  # noqa: F401
