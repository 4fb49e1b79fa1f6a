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

    def input_record(self) -> dict:
        """How images must be prepared for the model trained on this data (saved in checkpoints)."""
        return {"resolution": self.resolution, "eval_resize": self.eval_resize, "source_size": self.source_size,
                "padded_from": self.padded_from, "mean": list(self.mean), "std": list(self.std)}


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std on the 0-1 scale, measured on the training split."""
    x = images.to(torch.float64).div_(255.0).transpose(0, 1).reshape(images.shape[1], -1)
    return tuple(round(v, 4) for v in x.mean(1).tolist()), tuple(round(v, 4) for v in x.std(1).tolist())
