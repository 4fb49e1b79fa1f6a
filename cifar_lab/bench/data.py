"""`cifar-lab bench data`: augmented, normalised training batches per second.

Ours: the device-resident loader (uint8 split on the device, batched crop+flip, fused normalisation).
Reference: torchvision's route (PIL images, RandomCrop, RandomHorizontalFlip, ToTensor, Normalize, DataLoader
with worker processes). Same images, same batch size, same run.
"""
from __future__ import annotations

import itertools

import torch

from ..config import TrainConfig
from ..data import channel_stats, fashion_mnist, load_cifar_splits
from ..data.loader import DeviceLoader
from ..data.reference import make_loader
from ..engine.runtime import resolve_device
from ..errors import UsageError
from ..measure import interleaved
from ..provenance import device_name
from . import progress


DATASETS = ("synthetic", "cifar10", "cifar100", "fashion_mnist")


def count_images(loader, limit: int) -> int:
    """Draw batches from `loader`, epoch after epoch, until `limit` images have come out; return the count.
    This is the work a throughput measurement times."""
    seen = 0
    for images, _ in itertools.chain.from_iterable(itertools.repeat(loader)):
        seen += images.shape[0]
        if seen >= limit:
            break
    return seen


def run(dataset: str = "synthetic", data_root: str = "data", batch_size: int = 128, images: int = 10000,
        workers: int = 2, repeats: int = 3, device: str = "auto") -> dict:
    """Images per second of both loaders on the same split, alternated `repeats` times."""
    if dataset not in DATASETS:
        raise UsageError(f"unknown dataset '{dataset}'; choose one of: {', '.join(DATASETS)}")
    if batch_size < 1 or images < 1 or repeats < 1 or workers < 0:
        raise UsageError("--batch-size, --images and --repeats must be positive and --workers 0 or more")
    device = resolve_device(device)
    config = TrainConfig(dataset=dataset, data_root=data_root, progress=False)
    # Fashion-MNIST is served as the CIFAR models see it: padded to 32x32, the grey plane as 3 channels.
    train, _ = fashion_mnist.load_splits(config) if dataset == fashion_mnist.NAME else load_cifar_splits(config)
    mean, std = channel_stats(train.images)
    generator = torch.Generator(device=device).manual_seed(0)
    ours_loader = DeviceLoader(train.images, train.labels, batch_size, device=device, mean=mean, std=std,
                               train=True, generator=generator)
    ref_loader = make_loader(train.images, train.labels, batch_size, mean=mean, std=std, train=True,
                             num_workers=workers)

    with progress(total=2 + 2 * repeats, desc="bench data", unit="run") as bar:
        def drawn(loader, limit: int) -> int:
            seen = count_images(loader, limit)
            bar.update(1)
            return seen

        drawn(ours_loader, 4 * batch_size)  # warm-up: allocator, worker start-up
        drawn(ref_loader, 4 * batch_size)
        result = interleaved(lambda: drawn(ours_loader, images), lambda: drawn(ref_loader, images), device,
                             repeats)
    result.update(benchmark="data", device=device_name(device), dataset=dataset, batch_size=batch_size,
                  images=images, reference_workers=workers, torch_threads=torch.get_num_threads())
    return result
