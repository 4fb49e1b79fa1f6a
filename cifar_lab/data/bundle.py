"""What a dataset builder hands the engine: loaders, and the facts it found about the data.

Builders never change the config they are given; what they find out (the class count, the resolution the
model will see, the eval resize, whether pretrained weights make sense) comes back here, and the engine
records it in the run's resolved config.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch


@dataclass
class DataBundle:
    train_loader: object
    test_loader: object
    num_classes: int
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resolution: int                                 # side of the images the model sees
    eval_resize: int = 0                            # eval: shorter side resized to this, then centre crop
    source_size: int = 0                            # side of the stored images before upscaling (CIFAR: 32)
    padded_from: int = 0                            # side of the published images that were padded with zeros
                                                    # to source_size (Fashion-MNIST: 28); 0 = none
    coarse_of_fine: Optional[torch.Tensor] = None   # fine class -> superclass, where there are superclasses
    coarse_names: Optional[list[str]] = None
    train_split: Optional[object] = None            # CifarSplit, where the split is held in memory
    test_split: Optional[object] = None
    pretrained_usable: bool = True                  # False for generated images: a run never loads weights
    info: dict = field(default_factory=dict)        # source folder, counts, skipped files, ...
    _statistics: Optional[dict] = field(default=None, init=False, repr=False)

    def input_record(self) -> dict:
        """How images must be prepared for the model trained on this data (saved in checkpoints): sizes and
        normalisation; the dataset's conventions (`info["input_conventions"]`: grey, polarity, ...) where its
        builder states them; and, where the training split is held in memory, what its images look like
        (`image_statistics`, measured once per run), so that an input unlike them can be told."""
        record = {"resolution": self.resolution, "eval_resize": self.eval_resize, "source_size": self.source_size,
                  "padded_from": self.padded_from, "mean": list(self.mean), "std": list(self.std),
                  **self.info.get("input_conventions", {})}
        if self.train_split is not None and len(self.train_split.images):
            if self._statistics is None:
                self._statistics = image_statistics(self.train_split.images)
            record["channels"] = int(self.train_split.images.shape[1])
            record["statistics"] = dict(self._statistics)
        return record


def image_statistics(images: torch.Tensor, chunk: int = 2048) -> dict:
    """What the images uint8 [N, C, H, W] look like on the 0-1 scale: the mean and (population) std of all their
    values, and the range over images of each image's own mean (brightness) and std (contrast), each rounded to
    4 decimals. A channel repeated as a view (stride 0: a grey plane served as three channels) is one plane."""
    if images.shape[1] > 1 and images.stride(1) == 0:
        images = images[:, :1]
    total = total_sq = 0.0
    means, stds = [], []
    for part in images.split(chunk):
        x = part.reshape(len(part), -1).float().div_(255.0)
        means.append(x.mean(1))
        stds.append(x.std(1, unbiased=False))
        total += float(x.sum(dtype=torch.float64))
        total_sq += float(x.square().sum(dtype=torch.float64))
    count = images.numel()
    mean = total / count
    means, stds = torch.cat(means), torch.cat(stds)
    return {"mean": round(mean, 4), "std": round(max(total_sq / count - mean ** 2, 0.0) ** 0.5, 4),
            "image_mean": [round(float(means.min()), 4), round(float(means.max()), 4)],
            "image_std": [round(float(stds.min()), 4), round(float(stds.max()), 4)], "images": len(images)}

