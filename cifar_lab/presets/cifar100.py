"""CIFAR-100 recipes, NaiveNet, and the model zoo of chapter 5.

CIFAR-100 (ResNet-18): SGD Nesterov, 5 warm-up epochs rising linearly per batch from 0, cosine to 0, label
smoothing, pad-4 crop + flip + Cutout 16x16 (p 0.5, mean-filled before normalisation).
NaiveNet: SGD 0.01, wd 1e-4, OneCycle peaking at 0.05 (stepped per optimizer step), label smoothing 0.1,
mixed precision, crop/flip/affine/colour jitter, 32 px images upscaled to 128. Its recipe does not state the
epoch count; 50 is this book's choice. OneCycle starts at max_lr / 25, as torch's OneCycleLR does.
"""

CIFAR100_RECIPE = dict(
    dataset="cifar100", num_classes=100, epochs=100, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9,
    nesterov=True, weight_decay=5e-4, schedule="warmup_cosine", lr_warmup_epochs=5, label_smoothing=0.1,
    augment="crop_flip_cutout", normalization="dataset", seed=42,
)


def naivenet_recipe(dataset: str, classes: int) -> dict:
    return dict(
        dataset=dataset, num_classes=classes, model="naivenet", epochs=50, batch_size=128, optimizer="sgd",
        lr=0.01, momentum=0.9, weight_decay=1e-4, schedule="onecycle", onecycle_max_lr=0.05,
        label_smoothing=0.1, precision="auto", input_size=128, augment="naivenet", normalization="dataset",
        seed=42,
    )


PRESETS = {
    "cifar100-resnet18": dict(model="resnet18_cifar", **CIFAR100_RECIPE),
    # The zoo: the same data pipeline and recipe, only the network changes.
    "cifar100-resnet34": dict(model="resnet34_cifar", **CIFAR100_RECIPE),
    "cifar100-mobilenetv2": dict(model="mobilenet_v2", **CIFAR100_RECIPE),
    "cifar100-efficientnetb0": dict(model="efficientnet_b0", **CIFAR100_RECIPE),
    "cifar10-naivenet": naivenet_recipe("cifar10", 10),
    "cifar100-naivenet": naivenet_recipe("cifar100", 100),
}
