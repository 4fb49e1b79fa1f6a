"""The plain torchvision route: a `Dataset` of PIL images, `transforms`, and a `DataLoader` with workers.

It is what most tutorials use, and it is the reference the device-resident loader is measured against
(`cifar-lab bench data`). It can also train (`--set loader=torchvision`), with `augment=crop_flip` (pad-4
random crop and horizontal flip) or `augment=none` (the images as they are, only converted and normalised), on
3x32x32 images: CIFAR's, and Fashion-MNIST's padded to 32 with the grey plane repeated. The in-memory builder
(`in_memory.loaders`) picks this route and passes it the run's `augment`.
"""
from __future__ import annotations

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ..errors import UsageError
from .jpeg_pipeline import set_sampler_epoch, shard_dataloader
from .loader import epoch_seed, rank_seed


class TensorImageDataset(Dataset):
    """uint8 [N, 3, H, W] images served as PIL images, as torchvision's CIFAR datasets do."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform=None):
        self.images = images.permute(0, 2, 3, 1).contiguous().numpy()  # HWC for PIL
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.images[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index]


SIDE = 32  # the side of the images this route serves (its crop keeps it)


def make_transform(mean, std, train: bool, padding: int = 4, input_size: int = 32):
    """`train`: a random crop of the image padded by `padding` zeros on each side, and a horizontal flip with
    probability 0.5; then a resize to `input_size` where it differs from `SIDE`, and normalisation."""
    steps = [transforms.RandomCrop(SIDE, padding=padding), transforms.RandomHorizontalFlip()] if train else []
    if input_size != SIDE:
        steps.append(transforms.Resize(input_size))
    steps += [transforms.ToTensor(), transforms.Normalize(mean, std)]
    return transforms.Compose(steps)


class EpochSeededLoader(DataLoader):
    """A DataLoader whose shuffle of each epoch follows from (seed, epoch), so a resumed run repeats it."""

    def __init__(self, dataset, *, seed: int, **kwargs):
        super().__init__(dataset, generator=torch.Generator().manual_seed(seed), **kwargs)
        self.seed = seed

    def set_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(epoch_seed(self.seed, epoch))

    def sharded(self, rank: int, world: int, seed: int) -> "ShardedLoader":
        """Rank `rank` of `world`: `DistributedSampler` for training, a strided sampler for evaluation."""
        train = isinstance(self.sampler, torch.utils.data.RandomSampler)
        return ShardedLoader(shard_dataloader(self, train, rank, world, seed), rank_seed(seed, rank))


class ShardedLoader:
    """One rank's share of the torchvision route; `set_epoch` reaches the `DistributedSampler`."""

    def __init__(self, loader: DataLoader, seed: int):
        self.loader, self.seed = loader, seed

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        self.loader.generator.manual_seed(epoch_seed(self.seed, epoch))  # the workers' augmentation seeds
        set_sampler_epoch(self.loader, epoch)

    def __iter__(self):
        return iter(self.loader)


AUGMENTS = ("crop_flip", "none")  # the `augment` policies this route implements


def make_loader(images, labels, batch_size: int, *, mean, std, train: bool, num_workers: int = 2,
                seed: int = 0, input_size: int = 32, augment: str = "crop_flip") -> EpochSeededLoader:
    """A shuffled training loader (`train`) or an ordered evaluation one; `augment="none"` trains on the
    images as they are (the evaluation transform, shuffled)."""
    if augment not in AUGMENTS:
        raise UsageError(f"loader=torchvision implements only the augment policies {', '.join(AUGMENTS)}, not "
                         f"'{augment}'; use loader=device or augment=crop_flip")
    transform = make_transform(mean, std, train and augment == "crop_flip", input_size=input_size)
    dataset = TensorImageDataset(images, labels, transform)
    return EpochSeededLoader(dataset, seed=seed, batch_size=batch_size, shuffle=train, num_workers=num_workers,
                             persistent_workers=num_workers > 0, pin_memory=torch.cuda.is_available())
