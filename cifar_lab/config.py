"""The resolved configuration of a run: one dataclass, typed `--set key=value` overrides, validation.

Every knob of every chapter is a field here, so a run is fully described by `config.json` and any field can
be changed from the command line or from a notebook's parameters without code changes.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import typing
from dataclasses import dataclass, field
from typing import Any, Optional

from .errors import UsageError
from .values import parse_value


@dataclass
class ASTConfig:
    """Adaptive Sparse Training (Sundew gate + PI controller); see `cifar_lab.sparse`."""

    enabled: bool = False
    dense_epochs: int = 0         # dense epochs before AST starts (two-stage training)
    target: float = 0.10          # share of samples trained on
    gains: str = "tuned"          # "seed" (Kp 0.0015, Ki 0.00005) or "tuned" (chosen by the book's sweep)
    kp: Optional[float] = None    # None: take it from the gain set
    ki: Optional[float] = None
    theta0: float = 0.5           # initial threshold
    ema_alpha: float = 0.3        # weight of the newest batch in the activation-rate EMA
    integral_limit: float = 50.0  # anti-windup clamp on the integral term
    loss_weight: float = 0.7
    intensity_weight: float = 0.3
    gate: str = "hard"            # "hard" threshold, "sigmoid", or "seed": the AST paper's repository's gate
                                  # (stochastic above theta, energy budget, cumulative rate; `sparse.seed_gate`)
    temperature: float = 0.1      # sigmoid gate temperature (the seed gate has its repository's, 0.15)
    fallback_samples: int = 2     # trained on when nothing passes the gate
    energy_active: float = 1.0    # the AST paper's energy model
    energy_skipped: float = 0.01
    pack: bool = True             # pack selected samples of several scoring batches into full training batches
                                  # (false: one small step per scoring batch, the AST paper's variant)
    selection: str = "gate"       # "gate" (AST), "random" (random subset at the target rate; a baseline) or
                                  # "selective_backprop" (Jiang et al. 2019; `sparse.selective_backprop`)
    sb_history: int = 1024        # selective_backprop: recent losses a loss's percentile is taken among
    sb_beta: Optional[float] = None   # selective_backprop: keep probability = percentile^beta; None: 1/target - 1,
                                      # whose expected share is the target
    record_scores: int = 0        # keep the scores of this many full AST batches (ast_scores.pt), for replay


@dataclass
class DistillConfig:
    """Knowledge distillation from a trained checkpoint (Hinton, Vinyals, Dean 2015); see
    `engine/distill_step.py`."""

    enabled: bool = False
    teacher: str = ""             # checkpoint of the teacher (best.pt or last.pt of a run)
    temperature: float = 4.0      # T: both logits are divided by it; the soft term is scaled by T^2
    alpha: float = 0.9            # weight of the soft (teacher) term; 1 - alpha weighs the label loss


@dataclass
class DistConfig:
    """Training on several processes (`torchrun`, or `cifar-lab train --nproc-per-node N`); see
    `cifar_lab.distributed`. The last three fields are resolved at run time and recorded in config.json."""

    strategy: str = "ddp"         # ddp (all-reduce every step) | local_sgd (post-local SGD, Lin et al. 2020)
    local_sgd_period: int = 4     # local_sgd: optimizer steps between two parameter averages
    local_sgd_warmup_steps: int = 0   # local_sgd: steps of plain DDP before local steps begin
    sync_batchnorm: bool = False  # CUDA only: BatchNorm statistics over the global batch
    timeout_s: float = 300.0      # collectives that wait longer fail instead of hanging
    world_size: int = 1           # resolved: processes of the run
    global_batch: int = 0         # resolved: batch_size x world_size x grad_accum
    effective_lr: float = 0.0     # resolved: lr after lr_scaling


@dataclass
class TrainConfig:
    """Everything that defines a training run. Presets fill it; `--set` overrides single fields."""

    preset: str = ""
    # data
    dataset: str = "cifar10"
    data_root: str = "data"
    download: bool = True
    num_classes: int = 10
    loader: str = "device"            # "device" (resident, batched augmentation) or "torchvision" (reference)
    augment: str = "crop_flip"        # a policy name from cifar_lab.data.augment
    normalization: str = "dataset"    # "dataset" statistics, "half" = (0.5, 0.5, 0.5), or "unit": pixels / 255 only
    input_size: int = 32              # images are resized to this after augmentation
    image_channels: int = 3           # channels the model is fed: 3, or 1 on grey data (fashion_mnist)
    classes: str = ""                 # class ids kept in both splits ("5-9" or "5,6,7,8,9"), relabelled
                                      # 0..k-1 in that order; "" = all
    train_subset: int = 0             # 0 = the whole split
    test_subset: int = 0
    synthetic_train_size: int = 5000
    synthetic_test_size: int = 1000
    num_workers: int = 2              # torchvision route only
    # model
    model: str = "resnet18_cifar"
    dropout: Optional[float] = None   # None: the model's own rate; 0..1: p of every Dropout layer
    init_from: str = ""               # a run's best.pt/last.pt whose weights start the model, all but its
                                      # classifier layer (fine-tuning); "{seed}" in it becomes the run's seed
    # optimisation
    epochs: int = 200
    batch_size: int = 128
    eval_batch_size: int = 512
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "cosine"          # cosine | warmup_cosine | onecycle | constant (all stepped per batch)
    lr_warmup_epochs: float = 0.0
    onecycle_max_lr: float = 0.0      # 0: use lr
    onecycle_pct_start: float = 0.3
    label_smoothing: float = 0.0
    grad_clip: float = 0.0            # max gradient norm; 0 = off
    grad_accum: int = 1
    lr_scaling: str = "none"          # none | linear: lr x global batch / lr_reference_batch (Goyal et al. 2017)
    lr_reference_batch: int = 256     # the global batch that `lr` is stated for
    # speed
    device: str = "auto"              # auto | cpu | cuda
    precision: str = "auto"           # auto | fp32 | bf16 | fp16
    channels_last: bool = True
    compile: bool = False
    # stopping
    min_epochs: int = 0
    patience: int = 0                 # epochs without improvement before stopping; 0 = never
    target_acc: float = 0.0           # stop once test accuracy reaches this; 0 = off
    time_budget_s: float = 0.0        # stop once training time reaches this many seconds; 0 = off
    # reproducibility and output
    seed: int = 42
    deterministic: bool = False
    progress: bool = True
    log_every: int = 50               # batches between progress-bar readings (each one is a host sync)
    save_checkpoints: bool = True
    checkpoint_every: int = 0         # also keep epoch_NNN.pt every this many epochs; 0 = never
    keep_checkpoints: int = 0         # how many epoch_NNN.pt to keep (the newest); 0 = all
    # ImageNet chapters (JPEG folders, Hugging Face, torchvision weights); see cifar_lab.data.imagenet
    imagenet_root: str = ""           # ROOT with train/<wnid>/*.JPEG and val/<wnid>/*.JPEG
    hf_dataset: str = "ILSVRC/imagenet-1k"  # imagenet1k-hf: a hub name, or a local save_to_disk/parquet folder
    image_size: int = 0               # train crop and eval crop in pixels; 0 = the dataset's (224; generated tree 64)
    eval_resize: int = 0              # eval: shorter side resized to this, then centre crop; 0 = image_size*256/224
    jpeg_route: str = "cpu"           # cpu (DataLoader workers, PIL) or gpu (decode_jpeg + augmentation on CUDA)
    pretrained: str = "none"          # torchvision ImageNet-1k weights for resnet18/resnet50: none | v1 | v2
    synthetic_jpeg_train_per_class: int = 16   # synthetic-imagenet: generated JPEGs per class and split
    synthetic_jpeg_val_per_class: int = 4
    synthetic_jpeg_px: int = 80       # synthetic-imagenet: side of the generated JPEGs
    ast: ASTConfig = field(default_factory=ASTConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    dist: DistConfig = field(default_factory=DistConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# String fields with a fixed set of values; names resolved from registries (model, dataset, augment)
# are checked where those registries live, see `validate`.
CHOICES = {
    "loader": ("device", "torchvision"),
    "normalization": ("dataset", "half", "unit"),
    "optimizer": ("sgd", "adamw"),
    "schedule": ("cosine", "warmup_cosine", "onecycle", "constant"),
    "device": ("auto", "cpu", "cuda", "mps"),
    "precision": ("auto", "fp32", "bf16", "fp16"),
    "ast.gains": ("seed", "tuned"),
    "ast.gate": ("hard", "sigmoid", "seed"),
    "ast.selection": ("gate", "random", "selective_backprop"),
    "jpeg_route": ("cpu", "gpu"),
    "pretrained": ("none", "v1", "v2"),
    "lr_scaling": ("none", "linear"),
    "dist.strategy": ("ddp", "local_sgd"),
}


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def all_keys(cls=TrainConfig, prefix: str = "") -> list[str]:
    keys = []
    for name, tp in _field_types(cls).items():
        if dataclasses.is_dataclass(tp):
            keys += all_keys(tp, prefix + name + ".")
        else:
            keys.append(prefix + name)
    return keys


# Keys renamed in this release: old name -> new name. The old name still works, with a one-line note.
RENAMED_KEYS = {"warmup_epochs": "ast.dense_epochs"}


def set_value(config: TrainConfig, key: str, raw: Any, quiet: bool = False) -> None:
    """Set a (possibly dotted) key from a string or JSON value, with type checking."""
    if key in RENAMED_KEYS:
        new = RENAMED_KEYS[key]
        if not quiet:
            print(f"note: {key} is now {new} (dense epochs before AST starts, not lr_warmup_epochs); the old name "
                  f"will stop working in the next release", file=sys.stderr)
        key = new
    target, cls, parts = config, TrainConfig, key.split(".")
    for part in parts[:-1]:
        types = _field_types(cls)
        if part not in types or not dataclasses.is_dataclass(types[part]):
            raise _unknown_key(key)
        target, cls = getattr(target, part), types[part]
    types = _field_types(cls)
    name = parts[-1]
    if name not in types or dataclasses.is_dataclass(types[name]):
        raise _unknown_key(key)
    value = parse_value(raw, types[name], key)
    if key in CHOICES and value not in CHOICES[key]:
        raise UsageError(f"{key}={value!r} is not one of: {', '.join(CHOICES[key])}")
    setattr(target, name, value)


def _unknown_key(key: str) -> UsageError:
    import difflib

    keys = all_keys()
    close = difflib.get_close_matches(key, keys, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return UsageError(f"unknown config key '{key}'{hint}; valid keys: {', '.join(keys)}")


def parse_assignments(items: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        if "=" not in item:
            raise UsageError(f"--set expects key=value, got '{item}'; for example --set epochs=3")
        key, value = item.split("=", 1)
        pairs.append((key.strip(), value.strip()))
    return pairs


def apply_overrides(config: TrainConfig, overrides: dict[str, Any] | list[tuple[str, Any]],
                    quiet: bool = False) -> TrainConfig:
    items = overrides.items() if isinstance(overrides, dict) else overrides
    for key, value in items:
        if isinstance(value, dict):  # nested section given as a dict, e.g. {"ast": {"target": 0.1}}
            apply_overrides(config, {f"{key}.{k}": v for k, v in value.items()}, quiet)
        else:
            set_value(config, key, value, quiet)
    return config


def from_dict(data: dict) -> TrainConfig:
    """Rebuild a config saved with `to_dict` (checkpoints, config.json); files of the previous release, with
    their old key names, load without a note."""
    legacy = {k: v for k, v in data.items() if k in RENAMED_KEYS}
    current = {k: v for k, v in data.items() if k not in RENAMED_KEYS}
    config = apply_overrides(TrainConfig(), current)
    return apply_overrides(config, {k: v for k, v in legacy.items() if v}, quiet=True)


def save_json(config: TrainConfig, path) -> None:
    from .io import atomic_write_text

    atomic_write_text(path, json.dumps(config.to_dict(), indent=2) + "\n")


MAX_IMAGE_SIDE = 1024   # pixels: a batch of 128 such images is 1.6 GB in fp32
MAX_SEED = 2**32 - 1


def validate(config: TrainConfig) -> TrainConfig:
    """Check names against the registries and ranges of numbers; raise a one-line UsageError."""
    from . import models
    from .data import augment, registry, synthetic
    from .sparse.config import validate_ast

    if config.model not in models.names():
        raise UsageError(f"unknown model '{config.model}'; choose one of: {', '.join(models.names())}")
    models.check_pretrained(config.model, config.pretrained)
    _check_image_channels(config, models.spec(config.model))
    if config.dataset not in registry.names():
        raise UsageError(f"unknown dataset '{config.dataset}'; choose one of: {', '.join(registry.names())}")
    if config.augment not in augment.names():
        raise UsageError(f"unknown augment policy '{config.augment}'; choose one of: {', '.join(augment.names())}")
    positive_ints = ("epochs", "batch_size", "eval_batch_size", "grad_accum", "num_classes", "input_size",
                     "log_every", "synthetic_train_size", "synthetic_test_size")
    for key in positive_ints:
        if getattr(config, key) < 1:
            raise UsageError(f"{key} must be at least 1, got {getattr(config, key)}")
    for key in ("input_size", "image_size", "eval_resize", "synthetic_jpeg_px"):
        if getattr(config, key) > MAX_IMAGE_SIDE:  # refused before a batch of such images is allocated
            raise UsageError(f"{key}={getattr(config, key)} is above {MAX_IMAGE_SIDE} px, where one batch of images "
                             f"no longer fits in memory; the book trains at 32-224 px")
    if config.dataset == "synthetic":
        synthetic.check_class_count(config.num_classes, "num_classes")
    if not 0 <= config.seed <= MAX_SEED:
        raise UsageError(f"seed must be between 0 and {MAX_SEED} (2**32 - 1), got {config.seed}")
    if not 0.0 <= config.momentum < 1.0:
        raise UsageError(f"momentum must be in [0, 1), got {config.momentum}")
    if not 0.0 < config.onecycle_pct_start < 1.0:
        raise UsageError(f"onecycle_pct_start must be in (0, 1), the share of the steps that raise the learning "
                         f"rate to its peak; got {config.onecycle_pct_start}")
    for key in ("train_subset", "test_subset", "min_epochs", "patience", "num_workers", "checkpoint_every",
                "keep_checkpoints"):
        if getattr(config, key) < 0:
            raise UsageError(f"{key} must be 0 or more, got {getattr(config, key)}")
    for key in ("lr", "weight_decay", "grad_clip", "lr_warmup_epochs", "onecycle_max_lr", "time_budget_s"):
        if getattr(config, key) < 0:
            raise UsageError(f"{key} must be 0 or more, got {getattr(config, key)}")
    if config.dropout is not None and not 0.0 <= config.dropout < 1.0:
        raise UsageError(f"dropout must be in [0, 1) (or none: the model's own), got {config.dropout}")
    if not 0.0 <= config.label_smoothing < 1.0:
        raise UsageError(f"label_smoothing must be in [0, 1), got {config.label_smoothing}")
    if not 0.0 <= config.target_acc <= 1.0:
        raise UsageError(f"target_acc must be in [0, 1] (a fraction, not a percentage), got {config.target_acc}")
    if config.ast.enabled or config.ast.dense_epochs:
        validate_ast(config)
    for key, value in (("lr_reference_batch", config.lr_reference_batch),
                       ("dist.local_sgd_period", config.dist.local_sgd_period),
                       ("dist.world_size", config.dist.world_size)):
        if value < 1:
            raise UsageError(f"{key} must be at least 1, got {value}")
    if config.dist.local_sgd_warmup_steps < 0 or not config.dist.timeout_s > 0:
        raise UsageError("dist.local_sgd_warmup_steps must be 0 or more and dist.timeout_s above 0")
    if config.precision == "fp16" and config.dist.strategy == "local_sgd":
        raise UsageError("precision=fp16 cannot train with dist.strategy=local_sgd: GradScaler skips the step of a "
                         "rank whose gradients overflowed, and the ranks' parameter averages fall out of step; "
                         "use precision=bf16 or fp32, or dist.strategy=ddp")
    if config.distill.enabled or config.distill.teacher:
        _validate_distill(config)
    if config.classes:
        from .data.class_subset import class_ids

        class_ids(config.dataset, config.classes)
    if config.init_from:
        _validate_init_from(config)
    return config


def init_checkpoint(config: TrainConfig) -> str:
    """The checkpoint `init_from` names for this run: "{seed}" replaced by the run's seed, so that runs over
    several seeds can each start from the pretraining run of the same seed."""
    return config.init_from.replace("{seed}", str(config.seed))


def _validate_init_from(config: TrainConfig) -> None:
    """The `init_from` field on its own; the checkpoint's contents (readable, same model) are checked when the
    run loads it (`engine.checkpoint.initialise_from`)."""
    from pathlib import Path

    path = init_checkpoint(config)
    if "{" in path or "}" in path:
        raise UsageError(f"init_from={config.init_from}: the only placeholder it may hold is {{seed}}")
    if not Path(path).is_file():
        raise UsageError(f"init_from={path}: no such file; point it at the best.pt or last.pt of a finished run")
    if config.pretrained != "none":
        raise UsageError(f"init_from and pretrained={config.pretrained} both set the starting weights; set "
                         f"pretrained=none or remove init_from")


def _check_image_channels(config: TrainConfig, spec) -> None:
    """The channels the data is served with must be those the model's first layer takes; a one-channel model
    (a grey dataset's own benchmark network) also has a fixed input size."""
    if config.image_channels not in (1, 3):
        raise UsageError(f"image_channels must be 1 or 3, got {config.image_channels}")
    if config.image_channels == 1 and config.dataset != "fashion_mnist":
        raise UsageError(f"image_channels=1 serves grey images, and dataset={config.dataset} is in colour; use "
                         f"dataset=fashion_mnist or image_channels=3")
    if spec.channels != config.image_channels or (spec.channels == 1 and config.input_size != spec.input_size):
        raise UsageError(f"model '{config.model}' takes {spec.channels}x{spec.input_size}x{spec.input_size} "
                         f"images; set image_channels={spec.channels} input_size={spec.input_size}")


def _validate_distill(config: TrainConfig) -> None:
    """The `distill.*` fields on their own; the teacher checkpoint's contents (readable, class count, input
    size) are checked when the run loads it (`engine/distill_step.py` `load_teacher`)."""
    from pathlib import Path

    d = config.distill
    if not d.enabled:
        raise UsageError(f"distill.teacher={d.teacher} is set but distill.enabled=false; add --set "
                         f"distill.enabled=true (or use --preset cifar10-distill-mobilenetv3)")
    if not d.teacher:
        raise UsageError("distillation needs a teacher: --set distill.teacher=RUN/best.pt (train one with "
                         "`cifar-lab train --preset cifar10-resnet18 --out RUN`)")
    if not Path(d.teacher).is_file():
        raise UsageError(f"distill.teacher={d.teacher}: no such file; point it at the best.pt of a finished run")
    if not d.temperature > 0:
        raise UsageError(f"distill.temperature must be above 0, got {d.temperature}")
    if not 0.0 <= d.alpha <= 1.0:
        raise UsageError(f"distill.alpha must be in [0, 1] (weight of the teacher's term), got {d.alpha}")
    if config.ast.enabled:
        raise UsageError("distillation and AST cannot be combined in one run (the AST gate would score with the "
                         "student alone); set ast.enabled=false or distill.enabled=false")
