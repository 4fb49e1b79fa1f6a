"""Checkpoints with the full training state, written atomically (temporary file, fsync, rename)."""
from __future__ import annotations

from pathlib import Path

import torch

from ..errors import UsageError
from ..io import atomic_write


def save(path, state: dict) -> None:
    atomic_write(path, lambda handle: torch.save(state, handle))


def load(path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint {path} does not exist; train one with `cifar-lab train --preset NAME --out DIR`")
    try:
        # Full training state includes RNG states and the config dict, so this is not weights_only.
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # truncated zip, foreign pickle, ...
        raise UsageError(f"checkpoint {path} cannot be read ({type(exc).__name__}); it is corrupt or not a "
                         f"cifar-lab checkpoint") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise UsageError(f"{path} is not a cifar-lab checkpoint (no model weights and config inside)")
    return state


def strip_compile_prefix(state_dict: dict) -> dict:
    """Weights saved from a torch.compile'd model carry an `_orig_mod.` prefix; plain models do not."""
    return {k.removeprefix("_orig_mod."): v for k, v in state_dict.items()}
