"""Named recipes: a preset is a dict of config overrides. `PRESETS` is the explicit table of all of them;
each description is generated from the preset's values, so it cannot drift from what the preset does."""
from __future__ import annotations

from ..config import TrainConfig, apply_overrides
from ..data.jpeg_pipeline import JITTER
from ..errors import UsageError
from . import cifar10, cifar100, distill, fmnist, imagenet, sparse

PRESETS: dict[str, dict] = {**cifar10.PRESETS, **cifar100.PRESETS, **imagenet.PRESETS, **sparse.PRESETS,
                            **distill.PRESETS, **fmnist.PRESETS}


def names() -> list[str]:
    return sorted(PRESETS)


def overrides(name: str) -> dict:
    if name not in PRESETS:
        raise UsageError(f"unknown preset '{name}'; choose one of: {', '.join(names())}")
    return dict(PRESETS[name])


def resolve(name: str, sets: list[tuple[str, str]] | dict | None = None, ast: bool = True) -> TrainConfig:
    """The preset's config with `--set` overrides applied on top (typed and checked). `ast=False` gives
    the same recipe with AST switched off: the dense baseline an AST run is compared with."""
    values = overrides(name)
    if not ast:
        values.pop("ast", None)
    config = apply_overrides(TrainConfig(preset=name), values)
    return apply_overrides(config, sets or [])


def describe() -> dict[str, str]:
    """One line per preset, generated from its resolved values, and the published figure it is held to."""
    return {name: summary_line(resolve(name)) + fmnist.published_note(name) for name in names()}


def summary_line(config: TrainConfig) -> str:
    """The recipe in words: model, data, optimizer, schedule, length, batch, regularisation, AST."""
    model = config.model + (f" from torchvision's {config.pretrained} weights" if config.pretrained != "none" else "")
    size = f" at {config.input_size} px" if config.input_size != 32 else ""
    optimizer = f"{'SGD' if config.optimizer == 'sgd' else 'AdamW'} {config.lr:g}"
    if config.optimizer == "sgd" and config.momentum:
        optimizer += f", momentum {config.momentum:g}" + (" Nesterov" if config.nesterov else "")
    schedule = {
        "cosine": "cosine to 0",
        "warmup_cosine": f"{config.lr_warmup_epochs:g} warm-up epochs then cosine to 0",
        "onecycle": f"OneCycle peaking at {config.onecycle_max_lr or config.lr:g}",
        "constant": "constant lr",
    }[config.schedule]
    batch = f"batch {config.batch_size}" + (f" x {config.grad_accum} accumulation" if config.grad_accum > 1 else "")
    jpeg = config.dataset.startswith("imagenet") or config.dataset == "synthetic-imagenet"
    # The JPEG routes have one augmentation of their own (`data.jpeg_pipeline`); `augment` is the CIFAR loader's.
    augment = f"RandomResizedCrop, flip, ColorJitter {JITTER:g}" if jpeg else f"augment {config.augment}"
    parts = [f"{model} on {config.dataset}{size}", f"{optimizer}, wd {config.weight_decay:g}", schedule,
             f"{config.epochs} epochs", batch, augment]
    if config.label_smoothing:
        parts.append(f"label smoothing {config.label_smoothing:g}")
    if config.ast.enabled:
        dense = f" after {config.ast.dense_epochs} dense epochs" if config.ast.dense_epochs else ""
        parts.append(f"AST at a {config.ast.target:.0%} target{dense}")
    if config.distill.enabled:
        parts.append(f"distilled from distill.teacher at T {config.distill.temperature:g}, "
                     f"alpha {config.distill.alpha:g}")
    return "; ".join(parts)
