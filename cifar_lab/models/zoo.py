"""torchvision's MobileNetV2, EfficientNet-B0 and MobileNetV3-Small, adapted to 32x32 inputs and built without
weights.

All three were designed for 224-pixel ImageNet images and downsample 32x overall: a CIFAR image would reach the last
stage as a single pixel. Here the stem convolution keeps stride 1 and the first strided stage does not
downsample either, so the network downsamples 8x (32 -> 4), like the CIFAR ResNets end at 4x4.
(`resnet34_cifar` lives with ResNet-18 in `resnet_cifar.py`.)
"""
from __future__ import annotations

from functools import partial

import torch.nn as nn
from torchvision.models import efficientnet_b0 as tv_efficientnet_b0
from torchvision.models import mobilenet_v2 as tv_mobilenet_v2
from torchvision.models import mobilenet_v3_small as tv_mobilenet_v3_small


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


def mobilenetv3_small_cifar(num_classes: int = 10, **kwargs) -> nn.Module:
    """torchvision's MobileNetV3-Small (Howard et al. 2019, "Searching for MobileNetV3"), adapted to 32 px.

    Adapted: the stem convolution (3x3, ImageNet stride 2) and the depthwise convolution of the first
    inverted residual (the 16-channel stage with squeeze-and-excitation, ImageNet stride 2) keep stride 1, so
    the network downsamples 8x (32 -> 4) instead of 32x. BatchNorm keeps torchvision's eps (0.001) but uses
    PyTorch's default momentum 0.1 instead of MobileNetV3's 0.01: the running statistics that evaluation uses
    must follow the weights within a few hundred steps on CIFAR, not the hundreds of thousands of an ImageNet
    run (with 0.01 they still hold mostly their initial values after a short run, and evaluation breaks).
    Everything else - channel widths, kernel sizes, squeeze-and-excitation, hard-swish, the 1024-unit
    classifier with dropout 0.2 - is torchvision's.
    """
    kwargs.setdefault("norm_layer", partial(nn.BatchNorm2d, eps=0.001, momentum=0.1))
    model = tv_mobilenet_v3_small(weights=None, num_classes=num_classes, **kwargs)
    _unstride(model.features[0][0])           # stem: 3x3 stride 2 -> stride 1
    _unstride(model.features[1].block[0][0])  # first inverted residual: depthwise stride 2 -> 1
    return model
