"""ImageNet-100 and ImageNet-1k recipes.

Sizes come from the dataset (`image_size=0`: 224 on ImageNet, 64 on the generated `synthetic-imagenet` tree).
Real runs want more loader workers than the default 2 (`--set num_workers=8`) and, with a CUDA GPU,
`--set jpeg_route=gpu` to decode JPEG batches on the device. The ImageNet-1k epoch count (30) is this
book's choice.
"""

IMAGENET100 = dict(
    dataset="imagenet100", model="resnet50", pretrained="v1", epochs=40, batch_size=64, eval_batch_size=256,
    optimizer="adamw", lr=1e-3, weight_decay=1e-4, schedule="constant", seed=42, image_size=0, eval_resize=0,
)

IMAGENET1K = dict(
    dataset="imagenet1k-hf", pretrained="none", epochs=30, batch_size=16, grad_accum=4, eval_batch_size=256,
    optimizer="adamw", lr=1e-3, weight_decay=1e-4, schedule="onecycle", onecycle_max_lr=1e-3,
    onecycle_pct_start=0.3, precision="auto", seed=42, image_size=0, eval_resize=0,
)

PRESETS = {
    "imagenet100-resnet50": IMAGENET100,
    # Two stages: dense epochs first, then AST with the controller of the CIFAR chapters, unchanged.
    "imagenet100-resnet50-ast": dict(IMAGENET100, ast={"enabled": True, "target": 0.10, "dense_epochs": 2}),
    "imagenet1k-resnet18": dict(model="resnet18", **IMAGENET1K),
    "imagenet1k-resnet50": dict(model="resnet50", **IMAGENET1K),
}
