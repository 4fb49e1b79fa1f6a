"""The model registry: every model by name, with the input it expects, as timm keeps it.

`MODELS` is an explicit table, so `names()` is complete as soon as this package is imported. Each entry
(`ModelSpec`) holds the factory and the model's input metadata: the resolution it is trained at, the
normalisation it was trained with where that is fixed (torchvision's ImageNet weights), the eval resize
before the centre crop, and the pretrained weight versions it can start from. `summary`, `latency`,
`predict` and `eval` read the resolution from here or from the checkpoint, never from a constant.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch.nn as nn

from ..data.jpeg_pipeline import IMAGENET_MEAN, IMAGENET_STD
from ..errors import UsageError
from . import fashion_mnist_benchmark, imagenet, naivenet, resnet_cifar, simple_cnn, zoo


@dataclass(frozen=True)
class ModelSpec:
    factory: Callable[..., nn.Module]
    input_size: int                                  # the resolution the model is trained and evaluated at
    mean: Optional[tuple[float, ...]] = None         # None: the training split's own statistics
    std: Optional[tuple[float, ...]] = None
    eval_resize: int = 0                             # eval: shorter side to this, then centre crop; 0: none
    pretrained: tuple[str, ...] = ()                 # torchvision weight versions it can start from
    channels: int = 3                                # image channels the first layer takes


MODELS: dict[str, ModelSpec] = {
    "simple_cnn": ModelSpec(simple_cnn.simple_cnn, 32),
    "resnet18_cifar": ModelSpec(resnet_cifar.resnet18_cifar, 32),
    "resnet34_cifar": ModelSpec(resnet_cifar.resnet34_cifar, 32),
    "mobilenet_v2": ModelSpec(zoo.mobilenet_v2, 32),
    "efficientnet_b0": ModelSpec(zoo.efficientnet_b0, 32),
    "mobilenetv3_small_cifar": ModelSpec(zoo.mobilenetv3_small_cifar, 32),
    # NaiveNet sees CIFAR images upscaled to 128 px.
    "naivenet": ModelSpec(naivenet.naivenet, 128),
    # Fashion-MNIST's benchmark networks, on the native 1x28x28 images.
    "tf_convnet": ModelSpec(fashion_mnist_benchmark.tf_convnet, 28, channels=1),
    "mlp_256_128_100": ModelSpec(fashion_mnist_benchmark.mlp_256_128_100, 28, channels=1),
    "resnet18": ModelSpec(imagenet.resnet18, 224, IMAGENET_MEAN, IMAGENET_STD, 256, ("v1",)),
    "resnet50": ModelSpec(imagenet.resnet50, 224, IMAGENET_MEAN, IMAGENET_STD, 256, ("v1", "v2")),
}


def names() -> list[str]:
    return sorted(MODELS)


def spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise UsageError(f"unknown model '{name}'; choose one of: {', '.join(names())}")
    return MODELS[name]


def check_pretrained(name: str, pretrained: str) -> None:
    versions = spec(name).pretrained
    if pretrained != "none" and pretrained not in versions:
        offer = f"torchvision ImageNet-1k weights {', '.join(versions)} only" if versions else "no pretrained weights"
        raise UsageError(f"model '{name}' has {offer}, not pretrained={pretrained}; use pretrained=none"
                         + (f" or one of {', '.join(versions)}" if versions else ""))


def build(name: str, num_classes: int = 10, pretrained: str = "none") -> nn.Module:
    """A fresh model; `pretrained` loads torchvision's weights (from its cache) where the model has them."""
    entry = spec(name)
    check_pretrained(name, pretrained)
    if entry.pretrained:
        return entry.factory(num_classes=num_classes, pretrained=pretrained)
    return entry.factory(num_classes=num_classes)


def build_for(config) -> nn.Module:
    """The model a training config asks for (its class count and pretrained weights)."""
    return build(config.model, config.num_classes, pretrained=config.pretrained)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def describe(name: str, num_classes: int = 10, input_size: Optional[int] = None, depth: int = 2) -> dict:
    """Parameters, fp32 weight size and MACs for one image of `input_size` (None: the model's own
    resolution), plus torchinfo's layer table as text under `table`."""
    import torchinfo

    model = build(name, num_classes=num_classes).eval()
    size = input_size or spec(name).input_size
    stats = torchinfo.summary(model, input_size=(1, spec(name).channels, size, size), depth=depth, verbose=0, device="cpu",
                              col_names=("output_size", "num_params", "mult_adds"))
    params = count_parameters(model)
    return {
        "model": name, "num_classes": num_classes, "input_size": size, "params": params,
        "trainable_params": count_parameters(model, trainable_only=True),
        # Weights only, fp32; a checkpoint adds buffers (BatchNorm statistics) and optimizer state.
        "size_mb": params * 4 / 1e6,
        "macs": int(stats.total_mult_adds),
        "table": str(stats),
    }
