"""Checkpoints with the full training state, written atomically (temporary file, fsync, rename)."""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Optional

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
    """A checkpoint's contents, read weights-only: tensors and plain Python values (dict, list, tuple, str,
    numbers), never an object whose unpickling could run code (`torch.load(weights_only=True)`).

    A file that needs more than that, a foreign or damaged file, or one without a model and config as dicts is
    a one-line UsageError naming the file; nothing from it is used.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint {path} does not exist; train one with `cifar-lab train --preset NAME --out DIR`")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        needs = unsafe_globals(path)
        if not needs:
            raise UsageError(f"checkpoint {path} cannot be read (its pickle is damaged); it is corrupt or not a "
                             f"cifar-lab checkpoint") from None
        older = any(name.startswith("numpy") for name in needs)
        raise UsageError(f"checkpoint {path} needs more than weights to load ({', '.join(needs[:3])}"
                         f"{', ...' if len(needs) > 3 else ''}), and unpickling that could run code, so it is "
                         f"refused; use a checkpoint written by this version of cifar-lab"
                         f"{' (earlier versions kept numpy objects in it: train the run again)' if older else ''}"
                         ) from None
    except Exception as exc:  # truncated zip, a file that is no checkpoint at all, ...
        raise UsageError(f"checkpoint {path} cannot be read ({type(exc).__name__}); it is corrupt or not a "
                         f"cifar-lab checkpoint") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise UsageError(f"{path} is not a cifar-lab checkpoint (no model weights and config inside)")
    for key in ("model", "config"):
        if not isinstance(state[key], dict):
            raise UsageError(f"{path} is not a cifar-lab checkpoint: its '{key}' entry is a "
                             f"{type(state[key]).__name__}, not a dict")
    return state


def unsafe_globals(path) -> list[str]:
    """The Python objects beyond weights that the checkpoint `path` would import when unpickled."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # not even a readable torch zip: nothing to name
        return []


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


# The conventions of an input record that a dataset may set (`inference.preparation` reads them): a colour image
# the model takes as 3 channels, of any polarity, fitted by padding with its own border colour, not trimmed.
INPUT_DEFAULTS = {"channels": 3, "colour": "rgb", "polarity": "any", "fit": "pad", "background": None, "trim": False}


def input_record(state: dict) -> dict:
    """How images must be prepared for a checkpoint's model, as its training run recorded it (the data
    bundle's `input_record`):

    - resolution, eval_resize, source_size (the stored images' side before upscaling), padded_from (the
      published images' side where the stored ones were padded: Fashion-MNIST's 28), mean and std (the
      normalisation, per channel, on the 0-1 scale);
    - the dataset's conventions: channels (that the model takes), colour ("rgb" or "grey"), polarity ("any",
      or "light_on_dark": light objects on a dark background), fit ("pad": scaled with the aspect ratio kept and
      padded, or "crop": eval resize and centre crop; never stretched), background (the padding value, None
      for the image's own border colour), trim (crop a photo to its object first);
    - statistics: what the training images look like (`data.bundle.image_statistics`), for telling an input
      unlike them (`inference.unlike_training`).

    Checkpoints of earlier versions lack some of it: the sizes are rebuilt from their config and the model's
    registered metadata, and the conventions from the dataset name the config records (`complete`)."""
    from ..config import from_dict

    config = from_dict(state["config"])
    if "input" in state:
        record = dict(state["input"])
    else:
        from .. import models

        spec = models.spec(config.model)
        jpeg = config.image_size > 0 or spec.eval_resize > 0
        resolution = (config.image_size or spec.input_size) if jpeg else config.input_size
        record = {"resolution": resolution, "eval_resize": (config.eval_resize or spec.eval_resize) if jpeg else 0,
                  "source_size": 0 if jpeg else 32, "mean": list(state["mean"]), "std": list(state["std"])}
    return complete(record, config.dataset, config.image_channels)


def complete(record: dict, dataset: Optional[str], channels: Optional[int] = None) -> dict:
    """`record` with the convention fields it lacks: those of `dataset` where it has its own (Fashion-MNIST's
    `data.fashion_mnist.INPUT_CONVENTIONS`), else `INPUT_DEFAULTS`; `channels` where known (the config's
    image_channels), else the length of the record's mean."""
    from ..data import fashion_mnist

    own = fashion_mnist.INPUT_CONVENTIONS if dataset == fashion_mnist.NAME else {}
    fit = {"fit": "crop" if record.get("eval_resize") else "pad"}
    found = {**INPUT_DEFAULTS, **fit, **own, "channels": channels or len(record.get("mean") or ()) or 3}
    return {**found, **record}


def classifier_layer(model: torch.nn.Module) -> str:
    """The name of the model's final classifier layer: the last `Linear` or `Conv2d` in registration order,
    which is the layer that maps features to class scores in every model of `models.MODELS` (a ResNet's `fc`,
    SimpleCNN's `classifier.4`, a MobileNet's `classifier.3`, SqueezeNet's final 1x1 convolution)."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            last = name
    if last is None:
        raise UsageError(f"{type(model).__name__} has no Linear or Conv2d layer to serve as its classifier")
    return last


def initialise_from(model: torch.nn.Module, path, model_name: str, class_names: list[str]) -> dict:
    """Fine-tuning's start: copy the weights of the checkpoint `path` (read weights-only by `load`) into
    `model`, every layer except the final classifier layer (`classifier_layer`), which keeps its fresh
    initialisation. What was copied and what was left: {"copied": [keys], "fresh": [keys], "head": name}.

    The classifier layer is left fresh even when its shape fits (5 classes to 5 other classes): its row i
    scores the checkpoint's class i, and a sandal is not a T-shirt, so carrying the rows over would start the
    new task from a confident wrong answer instead of from no answer. Only a checkpoint of the very same
    classes, in the same order, keeps it (continuing a run on the same label set). Every other layer must be
    there with the same shape: a checkpoint of another architecture is a one-line UsageError, and a missing
    or corrupt file is `load`'s.
    """
    state = load(path)
    trained = state["config"].get("model")
    if trained != model_name:
        raise UsageError(f"init_from={path} holds a {trained} model, not {model_name}; fine-tune from a "
                         f"checkpoint of the same architecture or set model={trained}")
    weights = strip_compile_prefix(state["model"])
    own = model.state_dict()
    head = classifier_layer(model)
    head_keys = {key for key in own if key.startswith(head + ".")}
    same_classes = list(state.get("class_names") or []) == list(class_names)
    unfit = sorted(key for key in own if key not in head_keys and
                   (key not in weights or weights[key].shape != own[key].shape))
    if unfit:
        raise UsageError(f"init_from={path}: its {trained} weights do not fit this model ({unfit[0]} "
                         f"{'is missing' if unfit[0] not in weights else 'has another shape'}); it was trained "
                         f"with another input size or channels: use the same ones")
    keep_head = same_classes and all(key in weights and weights[key].shape == own[key].shape for key in head_keys)
    copied = [key for key in own if key not in head_keys or keep_head]
    with torch.no_grad():
        for key in copied:
            own[key].copy_(weights[key])
    return {"copied": copied, "fresh": [key for key in own if key not in copied], "head": head,
            "source_input": state.get("input")}
