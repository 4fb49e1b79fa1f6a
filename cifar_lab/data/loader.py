"""The device-resident loader: a whole split on the training device as uint8, augmented in batches there.

No worker processes, no PIL, no per-sample Python: one `randperm` per epoch and a few tensor ops per
batch. Compare with `cifar_lab.data.reference`, the torchvision route it is benchmarked against.

Several processes (`sharded`): every rank holds the whole split and draws the same permutation of an epoch
from (seed, epoch) alone; rank r takes positions r, r + W, r + 2W, ... of it (W processes). The last
`N mod W` positions of each epoch's permutation are left out, so every rank has N // W samples and as many
batches (DDP needs every rank to step together); being drawn at random, the left-out samples change from
epoch to epoch. Batch i of rank r then holds the same samples as positions r, r + W, ... of batch i of one
process with a W times larger batch: the union over ranks is that batch. The test split is strided the same
way but not shortened, so each sample is evaluated exactly once.
"""
from __future__ import annotations

import math
from typing import Iterator, Optional

import torch
import torch.nn.functional as F

from . import augment


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of an epoch's shuffle: a function of (seed, epoch) alone, so any process and any resumed run
    draws the same permutation."""
    return (seed * 1_000_003 + epoch) % 2**63


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank `rank`'s own random stream (its crops, flips and DataLoader worker seeds) in a run
    seeded with `seed`: one formula for every loader. The `+ 1` keeps rank 0's stream apart from the shuffle,
    which is drawn from `seed` itself and must be the same on every rank."""
    return seed + 7919 * (rank + 1)


class DeviceLoader:
    """Iterate (normalised float images, int64 labels) batches of a split kept on `device`.

    `generator` is a torch.Generator on `device`; its state is part of the training checkpoint so a resumed
    run sees the same shuffles and crops.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, *, device,
                 mean, std, train: bool, policy: str = "crop_flip", generator: Optional[torch.Generator] = None,
                 drop_last: bool = False, channels_last: bool = False, input_size: int = 32,
                 dtype: torch.dtype = torch.float32):
        self.device = torch.device(device)
        self.images = images.to(self.device, non_blocking=True)
        self.labels = labels.to(self.device, non_blocking=True)
        self.batch_size = batch_size
        self.train = train
        # Cutout fills its holes with the mean this loader normalises with.
        self.policy = augment.build(policy if train else "none", mean)
        self.generator = generator
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.input_size = input_size
        self.normalize = augment.Normalize(mean, std, self.device, dtype)
        self.rank, self.world, self.seed, self.epoch = 0, 1, None, 0

    def sharded(self, rank: int, world: int, seed: int) -> "DeviceLoader":
        """This loader as rank `rank` of `world` sees it (see the module docstring)."""
        self.rank, self.world, self.seed = rank, world, seed
        return self

    def set_epoch(self, epoch: int) -> None:
        """One process: nothing to do, this loader's randomness is its generator, whose state the checkpoint
        carries. Sharded: the permutation follows from (seed, epoch) and each rank's augmentation from
        (seed, epoch, rank), so a run resumed with any number of processes repeats them."""
        self.epoch = epoch
        if self.seed is not None and self.generator is not None:
            self.generator.manual_seed(epoch_seed(rank_seed(self.seed, self.rank), epoch))

    @property
    def num_samples(self) -> int:
        n = int(self.labels.shape[0])
        if self.seed is None:
            return n
        return n // self.world if self.train else len(range(self.rank, n, self.world))

    def __len__(self) -> int:
        n = self.num_samples
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def shard_order(self) -> torch.Tensor:
        """The indices of this rank's samples, in this epoch's order."""
        n = int(self.labels.shape[0])
        if self.train:
            permutation = torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed(self.seed,
                                                                                            self.epoch)))
            order = permutation[:n - n % self.world][self.rank::self.world]
        else:
            order = torch.arange(self.rank, n, self.world)
        return order.to(self.device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.num_samples
        if self.seed is not None:
            order = self.shard_order()
        elif self.train:
            order = torch.randperm(n, device=self.device, generator=self.generator)
        else:
            order = torch.arange(n, device=self.device)
        for i in range(len(self)):
            index = order[i * self.batch_size:(i + 1) * self.batch_size]
            images = self.policy(self.images[index], self.generator)
            images = self.normalize(images)
            if images.shape[-1] != self.input_size:
                images = F.interpolate(images, size=self.input_size, mode="bilinear", align_corners=False)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, self.labels[index]
