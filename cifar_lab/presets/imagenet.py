"""ImageNet-100 and ImageNet-1k recipes of the seed documents (DESIGN.md §6).

Sizes come from the dataset (`image_size=0`: 224 on ImageNet, 64 on the generated `synthetic-imagenet` tree).
Real runs want more loader workers than the default 2 (`--set num_workers=8`) and, with a CUDA GPU,
`--set jpeg_route=gpu` to decode JPEG batches on the device.
"""
from . import register

IMAGENET100 = dict(
    dataset="imagenet100", model="resnet50", pretrained="v1", epochs=40, batch_size=64, eval_batch_size=256,
    optimizer="adamw", lr=1e-3, weight_decay=1e-4, schedule="constant", seed=42, image_size=0, eval_resize=0,
)

register(
    "imagenet100-resnet50",
    "ResNet-50 from torchvision's ImageNet-1k V1 weights, new 100-way head, on ImageNet-100: AdamW 1e-3, wd 1e-4, "
    "batch 64, 40 epochs, RandomResizedCrop 224 + flip + ColorJitter 0.4 (seed 000)",
    **IMAGENET100,
)

register(
    "imagenet100-resnet50-ast",
    "imagenet100-resnet50 in two stages: 2 dense warm-up epochs (warmup_epochs), then AST at 10 % activation with "
    "the controller of the CIFAR chapters, unchanged",
    **IMAGENET100, warmup_epochs=2, ast={"enabled": True, "target": 0.10},
)

IMAGENET1K = dict(
    dataset="imagenet1k-hf", pretrained="none", epochs=30, batch_size=16, grad_accum=4, eval_batch_size=256,
    optimizer="adamw", lr=1e-3, weight_decay=1e-4, schedule="onecycle", onecycle_max_lr=1e-3,
    onecycle_pct_start=0.3, precision="auto", seed=42, image_size=0, eval_resize=0,
)

register(
    "imagenet1k-resnet18",
    "ResNet-18 on ImageNet-1k from Hugging Face (ILSVRC/imagenet-1k): AdamW, OneCycle peak 1e-3 per batch, batch 16 x "
    "4 accumulation steps, mixed precision, Resize 256 / CenterCrop 224 for eval (seed 001; 30 epochs is our choice)",
    model="resnet18", **IMAGENET1K,
)

register(
    "imagenet1k-resnet50",
    "ResNet-50 on ImageNet-1k from Hugging Face (ILSVRC/imagenet-1k): AdamW, OneCycle peak 1e-3 per batch, batch 16 x "
    "4 accumulation steps, mixed precision, Resize 256 / CenterCrop 224 for eval (seed 001; 30 epochs is our choice)",
    model="resnet50", **IMAGENET1K,
)
