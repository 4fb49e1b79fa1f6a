"""CIFAR-10 recipes of the seed documents (DESIGN.md §6)."""
from . import register

register(
    "cifar10-resnet18",
    "ResNet-18 (CIFAR stem) on CIFAR-10: SGD 0.1, momentum 0.9, wd 5e-4, cosine over 200 epochs, batch 128, seed 42",
    dataset="cifar10", model="resnet18_cifar", epochs=200, batch_size=128, optimizer="sgd", lr=0.1,
    momentum=0.9, weight_decay=5e-4, schedule="cosine", seed=42, augment="crop_flip", normalization="dataset",
)

register(
    "cifar10-simplecnn",
    "SimpleCNN on CIFAR-10 (the AST seed's dense baseline): AdamW 1e-3, wd 1e-4, 40 epochs, batch 128",
    dataset="cifar10", model="simple_cnn", epochs=40, batch_size=128, optimizer="adamw", lr=1e-3,
    weight_decay=1e-4, schedule="constant", seed=42, augment="crop_flip", normalization="half",
)
