"""`cifar-lab bench ast --model NAME`: seconds per epoch of AST training against dense training, same run.

Both paths are the engine's own steps (`SparseStep` with the scoring pass, gate and controller, and
`DenseStep`), on the same model architecture and initial weights, the same optimizer and the same
device-resident synthetic batches; they alternate `--repeats` times and the medians are kept. An "epoch"
here is `--batches` batches (a short subset, so that a CPU run takes a minute, not an hour); the ratio
AST / dense is what carries over to full epochs.

Before timing, the controller's threshold is set at the (1 - target) quantile of one batch's scores and a
few AST batches run untimed, so the timed batches run at the target rate rather than through the
controller's start-up transient (which `cifar-lab train` and notebook 03 show).

Expected: with a scoring forward (1 unit per sample) and training steps (3 units per active sample),
compute at a 10 % target is (1 + 0.3) / 3 ≈ 0.43 of dense. By default the selected samples are packed
into full training batches (`ast.pack`): a training step on a dozen samples costs almost as much wall-clock
as one on 128 on a CPU (bf16 backward has a large fixed cost per step), so without packing (`--no-pack`,
one small step per scoring batch) AST saves little time there. On a CPU the no-grad scoring forward is also
much cheaper than a third of a training step, so the packed ratio can land well below 0.43.
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
from ..measure import spread, sync
from ..sparse.config import validate_ast
from ..sparse.score import score_batch
from . import check_model_and_precision


def run(model: str = "resnet18_cifar", classes: int = 10, batch_size: int = 128, batches: int = 10,
        repeats: int = 3, target: float = 0.10, gains: str = "tuned", pack: bool = True, precision: str = "auto",
        device: str = "auto", data_root: str = "data") -> dict:
    """Seconds per epoch of AST and dense training, alternated `repeats` times; medians and their ratio."""
    check_model_and_precision(model, precision)
    if min(classes, batch_size, batches, repeats) < 1:
        raise UsageError("--classes, --batch-size, --batches and --repeats must be positive")
    config = TrainConfig(batch_size=batch_size, grad_accum=1, channels_last=True, seed=0,
                         ast=ASTConfig(enabled=True, target=target, gains=gains, pack=pack))
    validate_ast(config)
    if pack:  # at least one full packed training batch per timed epoch
        batches = max(batches, math.ceil(1.0 / target))
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
    dense_model = models.build(model, num_classes=classes).to(device, memory_format=torch.channels_last)
    ast_model = models.build(model, num_classes=classes).to(device, memory_format=torch.channels_last)
    ast_model.load_state_dict(dense_model.state_dict())
    scaler = (lambda: torch.amp.GradScaler(device.type)) if precision == "fp16" else (lambda: None)
    dense = DenseStep(dense_model, torch.optim.SGD(dense_model.parameters(), lr=0.01, momentum=0.9), scaler(),
                      config, device, precision)
    sparse = SparseStep(ast_model, torch.optim.SGD(ast_model.parameters(), lr=0.01, momentum=0.9), scaler(),
                        config, device, precision)

    def epoch(step, count: int) -> float:
        step.start_epoch(0)
        sync(device)
        start = time.perf_counter()
        for _ in range(count):
            step.train_batch(*next(stream))
        row = step.end_epoch()  # waits for the queued work (and flushes a packing buffer)
        sync(device)
        epoch.last_row = row
        return time.perf_counter() - start

    _settle_threshold(sparse, next(stream), target)
    epoch(dense, 2)   # warm-up: allocator, kernel choice, the sparse path's odd batch sizes
    epoch(sparse, 3)
    dense_runs, ast_runs, rates, computes = [], [], [], []
    for _ in range(repeats):
        dense_runs.append(epoch(dense, batches))
        ast_runs.append(epoch(sparse, batches))
        rates.append(epoch.last_row["activation_rate"])
        computes.append(epoch.last_row["compute_vs_dense"])
    dense_s, ast_s = statistics.median(dense_runs), statistics.median(ast_runs)
    result = {
        "benchmark": "ast", "model": model, "ast_epoch_s": ast_s, "dense_epoch_s": dense_s,
        "ratio": ast_s / dense_s, "ratio_spread": spread(a / d for a, d in zip(ast_runs, dense_runs)),
        "activation_rate": statistics.mean(rates),
        "compute_vs_dense": statistics.mean(computes), "target": target, "gains": gains,
        "pack": pack, "batches_per_epoch": batches, "batch_size": batch_size,
        "ast_runs": ast_runs, "dense_runs": dense_runs, "repeats": repeats, "device": str(device),
        "precision": precision, "channels_last": True, "torch_threads": torch.get_num_threads(),
    }
    return result


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
