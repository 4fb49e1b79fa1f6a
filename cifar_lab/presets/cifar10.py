"""CIFAR-10 recipes: ResNet-18 with the CIFAR stem (the standard 200-epoch SGD recipe) and the AST
paper's SimpleCNN baseline."""

PRESETS = {
    "cifar10-resnet18": dict(
        dataset="cifar10", model="resnet18_cifar", epochs=200, batch_size=128, optimizer="sgd", lr=0.1,
        momentum=0.9, weight_decay=5e-4, schedule="cosine", seed=42, augment="crop_flip", normalization="dataset",
    ),
    "cifar10-simplecnn": dict(
        dataset="cifar10", model="simple_cnn", epochs=40, batch_size=128, optimizer="adamw", lr=1e-3,
        weight_decay=1e-4, schedule="constant", seed=42, augment="crop_flip", normalization="half",
    ),
}
