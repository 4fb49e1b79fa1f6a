"""Named recipes: a preset is a dict of config overrides, registered by the chapter module that owns it."""
from __future__ import annotations

from ..config import TrainConfig, apply_overrides
from ..errors import UsageError

_PRESETS: dict[str, tuple[str, dict]] = {}


def register(name: str, description: str, **overrides) -> None:
    _PRESETS[name] = (description, overrides)


def names() -> list[str]:
    return sorted(_PRESETS)


def describe() -> dict[str, str]:
    return {name: _PRESETS[name][0] for name in names()}


def overrides(name: str) -> dict:
    if name not in _PRESETS:
        raise UsageError(f"unknown preset '{name}'; choose one of: {', '.join(names())}")
    return dict(_PRESETS[name][1])


def resolve(name: str, sets: list[tuple[str, str]] | dict | None = None) -> TrainConfig:
    """The preset's config with `--set` overrides applied on top (typed and checked)."""
    config = apply_overrides(TrainConfig(preset=name), overrides(name))
    return apply_overrides(config, sets or [])


from . import cifar10  # noqa: E402,F401  (registration side effects)
from . import cifar100  # noqa: E402,F401  (registration side effects)
from . import imagenet  # noqa: E402,F401
from . import ast  # noqa: E402,F401  (registration side effects)
