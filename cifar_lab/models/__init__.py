"""Model registry: small factory functions by name, `build(name, num_classes=...)`.

Each module registers its factories with `@register("name")`; importing this package imports them all.
"""
from __future__ import annotations

from typing import Callable

import torch.nn as nn

from ..errors import UsageError

_FACTORIES: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _FACTORIES[name] = fn
        return fn
    return wrap


def names() -> list[str]:
    return sorted(_FACTORIES)


def build(name: str, num_classes: int = 10, **kwargs) -> nn.Module:
    if name not in _FACTORIES:
        raise UsageError(f"unknown model '{name}'; choose one of: {', '.join(names())}")
    return _FACTORIES[name](num_classes=num_classes, **kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


from . import resnet_cifar, simple_cnn  # noqa: E402,F401  (registration side effects)
