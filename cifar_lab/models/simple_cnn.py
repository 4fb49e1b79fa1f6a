"""SimpleCNN: the CIFAR-10 baseline of the AST paper's repository (620,362 parameters for 10 classes)."""
import torch.nn as nn



class SimpleCNN(nn.Module):
    """Three 3x3 conv layers (32, 64, 128 channels), each ReLU + 2x2 max-pool, then 2048 -> 256 -> classes."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(128 * 4 * 4, 256), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(256, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def simple_cnn(num_classes: int = 10, **kwargs) -> nn.Module:
    return SimpleCNN(num_classes, **kwargs)
