"""torchvision ResNets adapted to 32x32 inputs: a 3x3 stride-1 stem and no max-pool.

The ImageNet stem (7x7 stride 2, then max-pool) would shrink a CIFAR image to 8x8 before the first block.
"""
import torch.nn as nn
from torchvision.models import resnet18, resnet34



def _cifar_stem(model: nn.Module) -> nn.Module:
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def resnet18_cifar(num_classes: int = 10, **kwargs) -> nn.Module:
    """11,173,962 parameters for 10 classes."""
    return _cifar_stem(resnet18(weights=None, num_classes=num_classes, **kwargs))


def resnet34_cifar(num_classes: int = 10, **kwargs) -> nn.Module:
    return _cifar_stem(resnet34(weights=None, num_classes=num_classes, **kwargs))
