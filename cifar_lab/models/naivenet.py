"""NaiveNet, the small network of a published CIFAR-100 classifier project: a residual network of
depthwise-separable convolutions with squeeze-and-excitation, trained on CIFAR images upscaled to 128x128.

321,018 parameters for 100 classes (304,728 for 10); its authors quote 320,464 (its exact layer widths are not
published, so these widths are chosen to land there). The 128-pixel input is its main trick: upscaling
gives the augmentation (affine, rotation) a finer grid and the network room to downsample gradually.
Layout: a strided 3x3 stem, then four stages of residual blocks, each halving the resolution at its first
block (128 -> 64 -> 32 -> 16 -> 8 -> 4), global average pooling and one linear classifier.
"""
from __future__ import annotations

import torch
import torch.nn as nn



class SqueezeExcite(nn.Module):
    """Channel attention: global pool, C -> C/4, ReLU, -> C, sigmoid, then rescale every channel."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(8, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                                nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(self.pool(x))


def separable(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """A depthwise 3x3 convolution (one filter per channel) then a pointwise 1x1 one: about 1/8 of the
    weights of a full 3x3 convolution at these widths."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels, bias=False),
        nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels),
    )


class ResidualBlock(nn.Module):
    """Two separable convolutions and SE on the residual branch; a strided 1x1 projection on the shortcut
    when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.branch = nn.Sequential(separable(in_channels, out_channels, stride), nn.ReLU(inplace=True),
                                    separable(out_channels, out_channels), SqueezeExcite(out_channels))
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
        else:
            self.shortcut = nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.branch(x) + self.shortcut(x))


class NaiveNet(nn.Module):
    def __init__(self, num_classes: int = 100, stem: int = 32,
                 stages: tuple[tuple[int, int], ...] = ((32, 1), (64, 2), (128, 2), (180, 2)),
                 dropout: float = 0.2):
        super().__init__()
        # Stride-2 stem: at 128 px the first full-resolution layer would be the most expensive one.
        layers: list[nn.Module] = [nn.Conv2d(3, stem, 3, stride=2, padding=1, bias=False),
                                   nn.BatchNorm2d(stem), nn.ReLU(inplace=True)]
        channels = stem
        for width, blocks in stages:
            for index in range(blocks):
                layers.append(ResidualBlock(channels, width, stride=2 if index == 0 else 1))
                channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels, num_classes))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


def naivenet(num_classes: int = 100, **kwargs) -> nn.Module:
    return NaiveNet(num_classes=num_classes, **kwargs)
