"""Checkpoints with the full training state, written atomically (temporary file, fsync, rename)."""
from __future__ import annotations

import io
from pathlib import Path

import torch

from ..errors import UsageError
from ..io import atomic_write


def save(path, state: dict) -> None:
    """Write a checkpoint atomically. It is serialised in memory first, so that a full disk shows up as the
    operating system's error on the write (one line), not as an error deep inside torch's zip writer."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, lambda handle: handle.write(buffer.getbuffer()))


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


def load_model(state: dict, device="cpu") -> torch.nn.Module:
    """The trained model of a checkpoint (a `load` result), in eval mode on `device`.

    The architecture is built without pretrained weights - the checkpoint holds all of them - so loading
    never touches torchvision's weights cache or the network.
    """
    from .. import models
    from ..config import from_dict

    config = from_dict(state["config"])
    model = models.build(config.model, num_classes=config.num_classes, pretrained="none")
    try:
        model.load_state_dict(strip_compile_prefix(state["model"]))
    except RuntimeError:
        raise UsageError(f"the checkpoint's weights do not fit model '{config.model}' with "
                         f"{config.num_classes} classes; it was saved from a different model") from None
    return model.to(device).eval()


def input_record(state: dict) -> dict:
    """How images must be prepared for a checkpoint's model: resolution, eval resize, the stored images' size
    before upscaling, mean and std. Checkpoints of the previous release lack the record; it is rebuilt from
    their config and the model's registered metadata."""
    if "input" in state:
        return dict(state["input"])
    from .. import models
    from ..config import from_dict

    config = from_dict(state["config"])
    spec = models.spec(config.model)
    jpeg = config.image_size > 0 or spec.eval_resize > 0
    resolution = (config.image_size or spec.input_size) if jpeg else config.input_size
    return {"resolution": resolution, "eval_resize": (config.eval_resize or spec.eval_resize) if jpeg else 0,
            "source_size": 0 if jpeg else 32, "mean": list(state["mean"]), "std": list(state["std"])}
