"""CIFAR-100 recipes (seed 002), NaiveNet (seed 004) and the model zoo of chapter 5 (DESIGN.md §6)."""
from . import register

# Seed 002: SGD Nesterov, 5 warm-up epochs rising linearly per batch from 0, cosine to 0, label smoothing,
# pad-4 crop + flip + Cutout 16x16 (p 0.5, mean-filled before normalisation).
CIFAR100_RECIPE = dict(
    dataset="cifar100", num_classes=100, epochs=100, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9,
    nesterov=True, weight_decay=5e-4, schedule="warmup_cosine", lr_warmup_epochs=5, label_smoothing=0.1,
    augment="crop_flip_cutout", normalization="dataset", seed=42,
)

register(
    "cifar100-resnet18",
    "ResNet-18 (CIFAR stem) on CIFAR-100: SGD Nesterov 0.1, wd 5e-4, 5 warm-up epochs then cosine over 100, "
    "label smoothing 0.1, crop+flip+Cutout 16x16; target 73 % top-1",
    model="resnet18_cifar", **CIFAR100_RECIPE,
)

# The zoo of chapter 5: the same data pipeline and recipe, only the network changes.
for _model, _name in (("resnet34_cifar", "resnet34"), ("mobilenet_v2", "mobilenetv2"),
                      ("efficientnet_b0", "efficientnetb0")):
    register(f"cifar100-{_name}", f"{_model} on CIFAR-100 with the cifar100-resnet18 recipe (model zoo)",
             model=_model, **CIFAR100_RECIPE)


# Seed 004: SGD 0.01, wd 1e-4, OneCycle peaking at 0.05 (stepped per batch), label smoothing 0.1, mixed
# precision, crop/flip/affine/colour jitter, 32 px images upscaled to 128. The seed does not state the epoch
# count; 50 is this book's choice. OneCycle starts at max_lr / 25, as torch's OneCycleLR does.
def _naivenet(dataset: str, classes: int) -> dict:
    return dict(
        dataset=dataset, num_classes=classes, model="naivenet", epochs=50, batch_size=128, optimizer="sgd",
        lr=0.01, momentum=0.9, weight_decay=1e-4, schedule="onecycle", onecycle_max_lr=0.05,
        label_smoothing=0.1, precision="auto", input_size=128, augment="naivenet", normalization="dataset",
        seed=42,
    )


register("cifar10-naivenet", "NaiveNet (~305k params) on CIFAR-10 at 128 px: SGD, OneCycle to 0.05, label "
         "smoothing 0.1, mixed precision, affine + colour jitter; seed: > 90 %", **_naivenet("cifar10", 10))
register("cifar100-naivenet", "NaiveNet (~321k params) on CIFAR-100 at 128 px: SGD, OneCycle to 0.05, label "
         "smoothing 0.1, mixed precision, affine + colour jitter; seed: ~70 %", **_naivenet("cifar100", 100))
