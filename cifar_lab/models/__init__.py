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


def build_for(config) -> nn.Module:
    """The model a training config asks for. Factories that take a `config` argument (pretrained weights,
    input size) receive the whole config; the others only the class count."""
    import inspect

    if config.model not in _FACTORIES:
        raise UsageError(f"unknown model '{config.model}'; choose one of: {', '.join(names())}")
    factory = _FACTORIES[config.model]
    extra = {"config": config} if "config" in inspect.signature(factory).parameters else {}
    return factory(num_classes=config.num_classes, **extra)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


from . import imagenet, naivenet, resnet_cifar, simple_cnn, zoo  # noqa: E402,F401  (registration side effects)
