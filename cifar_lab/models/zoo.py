"""torchvision's MobileNetV2 and EfficientNet-B0, adapted to 32x32 inputs and built without weights.

Both were designed for 224-pixel ImageNet images and downsample 32x overall: a CIFAR image would reach the last
stage as a single pixel. Here the stem convolution keeps stride 1 and the first strided stage does not
downsample either, so the network downsamples 8x (32 -> 4), like the CIFAR ResNets end at 4x4.
(`resnet34_cifar` lives with ResNet-18 in `resnet_cifar.py`.)
"""
from __future__ import annotations

import torch.nn as nn
from torchvision.models import efficientnet_b0 as tv_efficientnet_b0
from torchvision.models import mobilenet_v2 as tv_mobilenet_v2


# torchvision's MobileNetV2 stages: expansion t, channels c, repeats n, first stride s. The 24-channel stage
# keeps stride 1 (ImageNet: 2).
MOBILENET_V2_CIFAR_STAGES = [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2],
                             [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]


def _unstride(conv: nn.Conv2d) -> None:
    """Make a convolution keep the resolution (padding already preserves size for odd kernels)."""
    assert isinstance(conv, nn.Conv2d), conv
    conv.stride = (1, 1)


def mobilenet_v2(num_classes: int = 10, **kwargs) -> nn.Module:
    model = tv_mobilenet_v2(weights=None, num_classes=num_classes,
                            inverted_residual_setting=MOBILENET_V2_CIFAR_STAGES, **kwargs)
    _unstride(model.features[0][0])  # stem: 3x3 stride 2 -> stride 1
    return model


def efficientnet_b0(num_classes: int = 10, **kwargs) -> nn.Module:
    model = tv_efficientnet_b0(weights=None, num_classes=num_classes, **kwargs)
    _unstride(model.features[0][0])           # stem: 3x3 stride 2 -> stride 1
    _unstride(model.features[2][0].block[1][0])  # first MBConv of the 24-channel stage: depthwise stride 2 -> 1
    return model
