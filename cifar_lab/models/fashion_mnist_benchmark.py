"""The two networks of Fashion-MNIST's benchmark table that take the images as published (1x28x28).

- `tf_convnet`: the convolutional network of TensorFlow's "Build a Convolutional Neural Network using
  Estimators" tutorial, which the dataset's benchmark table lists at 0.916 (its code ships with the dataset
  as `benchmark/convnet.py`): two 5x5 convolutions with "same" padding (32, then 64 channels), each followed
  by ReLU and 2x2 max pooling, a 1,024-unit ReLU layer, dropout 0.4 and 10 logits; 3,274,634 parameters.
  Initialised as TensorFlow's `tf.layers` are by default (Glorot uniform weights, zero biases), since the
  tutorial's plain SGD at 0.001 trains from that start.
- `mlp_256_128_100`: the table's "MLP 256-128-100" (0.8833, no preprocessing), read as three ReLU hidden
  layers of 256, 128 and 100 units on the 784 pixels, then the logits.

Both take one grey channel. A 3-channel batch (a grey image repeated, as the inference tools hand it over)
is reduced to its channel mean first, which for a repeated grey image is the image itself.
"""
from __future__ import annotations

import torch
import torch.nn as nn

SIDE = 28


def grey(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=1, keepdim=True) if x.shape[1] == 3 else x


class TFConvNet(nn.Module):
    def __init__(self, num_classes: int = 10, dropout: float = 0.4):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),    # 28 -> 14
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),   # 14 -> 7
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 7 * 7, 1024), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(1024, num_classes),
        )
        glorot_init(self)

    def forward(self, x):
        return self.classifier(self.features(grey(x)))


class MLP(nn.Module):
    def __init__(self, num_classes: int = 10, hidden: tuple[int, ...] = (256, 128, 100)):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = SIDE * SIDE
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU(inplace=True)]
            width = units
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(grey(x))


def glorot_init(model: nn.Module) -> None:
    """TensorFlow's default initialisation of dense and convolution layers: Glorot uniform, zero bias."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)


def tf_convnet(num_classes: int = 10, **kwargs) -> nn.Module:
    return TFConvNet(num_classes, **kwargs)


def mlp_256_128_100(num_classes: int = 10, **kwargs) -> nn.Module:
    return MLP(num_classes, **kwargs)
