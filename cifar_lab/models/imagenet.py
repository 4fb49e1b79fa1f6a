"""ResNet-18 and ResNet-50 with the ImageNet stem (7x7 stride-2 conv + max-pool), optionally starting from
torchvision's ImageNet-1k weights, with a new classification head for the run's class count.

Weights (`pretrained` = v1 | v2, from the config or the factory argument) come from torchvision's cache,
`$TORCH_HOME/hub/checkpoints/<file>` (default `~/.cache/torch/hub/checkpoints`). When the file is absent,
torchvision downloads it; when that fails too (offline), the one-line error names the exact file, URL and
folder. The pretrained 1000-way head is kept for 1000 classes and replaced by a freshly initialised
`Linear(features, num_classes)` otherwise.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
from torchvision import models as tv

from ..errors import DataError, UsageError

WEIGHTS = {
    "resnet18": {"v1": tv.ResNet18_Weights.IMAGENET1K_V1},
    "resnet50": {"v1": tv.ResNet50_Weights.IMAGENET1K_V1, "v2": tv.ResNet50_Weights.IMAGENET1K_V2},
}
BUILDERS = {"resnet18": tv.resnet18, "resnet50": tv.resnet50}


def weights_file(weights) -> Path:
    """Where torchvision keeps (and looks for) the file of these weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def load_weights(arch: str, version: str) -> dict:
    """The state dict of torchvision's `arch` ImageNet-1k weights `version`, from the cache or a download."""
    if version not in WEIGHTS[arch]:
        raise UsageError(f"{arch} has torchvision ImageNet-1k weights {', '.join(WEIGHTS[arch])} only, "
                         f"not pretrained={version}")
    weights = WEIGHTS[arch][version]
    path = weights_file(weights)
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated or foreign file: say which one
            raise DataError(f"{path} is not a readable state dict ({type(exc).__name__}); delete it and put "
                            f"the file from {weights.url} there") from None
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # URLError, timeouts, hash mismatch: all mean "the file is not here"
        raise DataError(f"pretrained={version} needs {path.name} and the download from {weights.url} failed "
                        f"({type(exc).__name__}); put that file at {path} (torch hub cache; set TORCH_HOME "
                        f"to use another folder) or use pretrained=none") from None


def build_resnet(arch: str, num_classes: int, pretrained: str = "none") -> nn.Module:
    model = BUILDERS[arch](weights=None)
    if pretrained != "none":
        model.load_state_dict(load_weights(arch, pretrained))
    if num_classes != model.fc.out_features or pretrained == "none":
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    model.pretrained = pretrained  # recorded on the module so callers and tests can see what was loaded
    return model


def resnet50(num_classes: int = 1000, pretrained: str = "none") -> nn.Module:
    """ResNet-50 (25.6M parameters with 1000 classes; 23.7M with 100)."""
    return build_resnet("resnet50", num_classes, pretrained)


def resnet18(num_classes: int = 1000, pretrained: str = "none") -> nn.Module:
    """ResNet-18 with the ImageNet stem (11.7M parameters with 1000 classes)."""
    return build_resnet("resnet18", num_classes, pretrained)
