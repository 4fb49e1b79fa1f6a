"""The device-resident loader: a whole split on the training device as uint8, augmented in batches there.

No worker processes, no PIL, no per-sample Python: one `randperm` per epoch and a few tensor ops per
batch. Compare with `cifar_lab.data.reference`, the torchvision route it is benchmarked against.
"""
from __future__ import annotations

import math
from typing import Iterator, Optional

import torch
import torch.nn.functional as F

from . import augment


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

    def set_epoch(self, epoch: int) -> None:
        """Nothing to do: this loader's randomness is its generator, whose state the checkpoint carries."""

    @property
    def num_samples(self) -> int:
        return int(self.labels.shape[0])

    def __len__(self) -> int:
        n = self.num_samples
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = self.num_samples
        if self.train:
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
