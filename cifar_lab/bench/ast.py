"""`cifar-lab bench ast --model NAME`: seconds per epoch of AST training against dense training, same run.

Four paths, each the engine's own step on its own copy of the same initial model, with the same optimizer
settings and the same device-resident synthetic batches: dense (`DenseStep`); AST with packing (`SparseStep`,
`ast.pack=true`, the selected samples of several scoring batches trained as full batches - what the presets
use); AST unpacked (`ast.pack=false`, one small optimizer step per scoring batch, the AST paper's variant);
and a random subset at the target rate (packed, no scoring pass). They take turns `--repeats` times, so
drift in the machine's load hits all four, and each ratio to dense is reported as the median over the
repeats with its min and max. An "epoch" here is `--batches` batches (a short subset, so that a CPU run takes
a minute, not an hour); the ratios are what carries over to full epochs.

Before timing, each AST path's threshold is set at the (1 - target) quantile of one batch's scores and a few
AST batches run untimed, so the timed batches run at the target rate rather than through the controller's
start-up transient (which `cifar-lab train` and notebook 03 show).

The compute model says (1 + 3 x 0.1) / 3 = 0.43 of dense at a 10 % target; the FLOPs counted on the real
model give `compute_vs_dense_flops`. Wall-clock differs from both: without packing every small step pays the
fixed cost of a step, which is most of a full step on some machines and little on others, and a no-grad
scoring forward can cost less than a third of a training step.
"""
from __future__ import annotations

import math
import statistics
import time

import torch

from .. import models
from ..config import ASTConfig, TrainConfig
from ..data import channel_stats, load_cifar_splits
from ..data.loader import DeviceLoader
from ..engine.runtime import resolve_device, resolve_precision
from ..engine.sparse_step import SparseStep
from ..engine.steps import DenseStep
from ..errors import UsageError
from ..measure import sync, timing_summary
from ..provenance import device_name
from ..sparse.config import validate_ast
from ..sparse.score import score_batch
from . import check_model_and_precision, progress


PATHS = ("dense", "packed", "unpacked", "random")


def run(model: str = "resnet18_cifar", classes: int = 10, batch_size: int = 128, batches: int = 10,
        repeats: int = 3, target: float = 0.10, gains: str = "tuned", precision: str = "auto",
        device: str = "auto", data_root: str = "data") -> dict:
    """Seconds per epoch of the four paths, alternated `repeats` times; medians and ratios to dense."""
    check_model_and_precision(model, precision)
    if min(classes, batch_size, batches, repeats) < 1:
        raise UsageError("--classes, --batch-size, --batches and --repeats must be positive")
    configs = {
        "packed": _config(batch_size, target, gains, pack=True, selection="gate"),
        "unpacked": _config(batch_size, target, gains, pack=False, selection="gate"),
        "random": _config(batch_size, target, gains, pack=True, selection="random"),
    }
    batches = max(batches, math.ceil(1.0 / target))  # at least one full packed training batch per epoch
    device = resolve_device(device)
    precision = resolve_precision(precision, device)

    data_config = TrainConfig(dataset="synthetic", num_classes=min(classes, 100), data_root=data_root,
                              synthetic_train_size=max(2000, 2 * batches * batch_size), progress=False)
    train, _ = load_cifar_splits(data_config)
    mean, std = channel_stats(train.images)
    loader = DeviceLoader(train.images, train.labels % classes, batch_size, device=device, mean=mean,
                          std=std, train=True, generator=torch.Generator(device=device).manual_seed(0),
                          drop_last=True, channels_last=True)
    stream = _endless(loader)

    torch.manual_seed(0)
    initial = models.build(model, num_classes=classes).state_dict()
    steps = {"dense": _step(DenseStep, model, classes, initial, configs["packed"], device, precision)}
    for name, config in configs.items():
        steps[name] = _step(SparseStep, model, classes, initial, config, device, precision)
        if name != "random":
            _settle_threshold(steps[name], next(stream), target)

    bar = progress(total=len(PATHS) * (3 + repeats * batches), desc="bench ast", unit="batch")

    def epoch(step, count: int) -> tuple[float, dict]:
        step.start_epoch(0)
        sync(device)
        start = time.perf_counter()
        for _ in range(count):
            step.train_batch(*next(stream))
            bar.update(1)
        row = step.end_epoch()  # waits for the queued work (and flushes a packing buffer)
        sync(device)
        return time.perf_counter() - start, row

    seconds = {name: [] for name in PATHS}
    rows = {}
    with bar:
        for name in PATHS:  # warm-up: allocator, kernel choice, the sparse paths' odd batch sizes
            bar.set_description(f"warm-up {name}")
            epoch(steps[name], 3)
        for repeat in range(repeats):
            for name in PATHS:
                bar.set_description(f"repeat {repeat + 1}/{repeats}: {name}")
                elapsed, rows[name] = epoch(steps[name], batches)
                seconds[name].append(elapsed)
    result = {"benchmark": "ast", "model": model, "target": target, "gains": gains, "batches_per_epoch": batches,
              "batch_size": batch_size, "repeats": repeats, "device": device_name(device), "precision": precision,
              "channels_last": True, "torch_threads": torch.get_num_threads(), "paths": {}}
    for name in PATHS:
        row = rows[name]
        result["paths"][name] = {
            "epoch_s": statistics.median(seconds[name]), "runs_s": seconds[name],
            "optimizer_steps": row["optimizer_steps"], "samples_trained": row["samples_trained"],
            "activation_rate": row.get("activation_rate", 1.0),
            "compute_vs_dense_model": row.get("compute_vs_dense_model", 1.0),
            "compute_vs_dense_flops": row.get("compute_vs_dense_flops", 1.0),
        }
        if name != "dense":
            result[f"ratio_{name}"] = timing_summary(s / d for s, d in zip(seconds[name], seconds["dense"]))
    result["ratio"] = result["ratio_packed"]["median"]  # the presets' mode
    return result


def _config(batch_size: int, target: float, gains: str, pack: bool, selection: str) -> TrainConfig:
    config = TrainConfig(batch_size=batch_size, grad_accum=1, channels_last=True, seed=0,
                         ast=ASTConfig(enabled=True, target=target, gains=gains, pack=pack, selection=selection))
    validate_ast(config)
    return config


def _step(kind, model: str, classes: int, initial: dict, config: TrainConfig, device, precision: str):
    network = models.build(model, num_classes=classes)
    network.load_state_dict(initial)
    network = network.to(device, memory_format=torch.channels_last)
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    optimizer = torch.optim.SGD(network.parameters(), lr=0.01, momentum=0.9)
    return kind(network, optimizer, scaler, config, device, precision)


def _endless(loader):
    while True:
        yield from loader


def _settle_threshold(step: SparseStep, batch, target: float) -> None:
    """Start the controller at the threshold that would pass `target` of this batch (timing, not control)."""
    images, labels = batch
    step.model.train()
    with torch.no_grad(), step.autocast():
        logits = step.model(images)
    scores, _ = score_batch(logits, labels, images, step.ast.loss_weight, step.ast.intensity_weight)
    step.controller.theta = torch.quantile(scores.float(), 1.0 - target).to(step.controller.theta)
