"""Smith's learning-rate range test (L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", 2017;
popularised as fastai's LR finder), on a config's own data, model and optimizer.

The test itself is the `torch-lr-finder` package (`LRFinder.range_test`): train for `num_iter` batches while
the learning rate grows exponentially from `start_lr` to `end_lr`, record the (exponentially smoothed)
training loss, and stop once it exceeds `diverge` times the best loss so far. The package fits as it is: it
takes any model, optimizer and loss, and a loader through its `TrainDataLoaderIter`, which is how the
device-resident loader plugs in here; it restores the model and optimizer afterwards. What is ours is the
wiring to a `TrainConfig` and the reading of the curve (`steepest_lr`).
"""
from __future__ import annotations

import contextlib
import io
import math
import warnings

import numpy as np
import torch
import torch.nn as nn

from .engine.optim import build_optimizer
from .engine.trainer import setup
from .errors import UsageError


def _finder_classes():
    # tqdm.autonotebook, which the package imports, warns inside Jupyter when ipywidgets is missing; the
    # text progress bar it falls back to is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch_lr_finder import LRFinder, TrainDataLoaderIter
    return LRFinder, TrainDataLoaderIter


def range_test(config, start_lr: float = 1e-6, end_lr: float = 10.0, num_iter: int = 100,
               smooth: float = 0.05, diverge: float = 5.0) -> dict:
    """Run the range test on `config` (its dataset, model, optimizer, loss with label smoothing, precision).

    Returns {"lr": [...], "loss": [...], "steepest_lr", "min_loss_lr", "config_lr", "batches", "batch_size",
    "model", "dataset", "optimizer", "stopped_early"}.
    """
    if not 0 < start_lr < end_lr:
        raise UsageError(f"the range test needs 0 < start_lr < end_lr (got {start_lr} and {end_lr})")
    if num_iter < 10:
        raise UsageError(f"num_iter={num_iter} is too short for a range test; take at least 10 batches (100 is usual)")
    LRFinder, TrainDataLoaderIter = _finder_classes()
    run = setup(config, None, resume=False)  # data and model exactly as a run of this config builds them
    # A fresh optimizer: the run's own has a schedule attached, which the range test replaces with its own.
    optimizer = build_optimizer(run.config, run.model)
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    amp = {}
    if run.precision != "fp32":
        amp = dict(amp_backend="torch", grad_scaler=torch.amp.GradScaler(run.device.type,
                                                                         enabled=run.precision == "fp16"),
                   amp_config={"device_type": run.device.type,
                               "dtype": torch.bfloat16 if run.precision == "bf16" else torch.float16})
    finder = LRFinder(run.model, optimizer, criterion, device=run.device, **amp)
    batches = TrainDataLoaderIter(run.data.train_loader)  # starts the loader again when an epoch runs out
    quiet = io.StringIO()  # the package's progress bar (stderr) and its closing print (stdout)
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        finder.range_test(batches, start_lr=start_lr, end_lr=end_lr, num_iter=num_iter, smooth_f=smooth,
                          diverge_th=diverge)
    finder.reset()
    lrs, losses = [float(v) for v in finder.history["lr"]], [float(v) for v in finder.history["loss"]]
    return {"lr": lrs, "loss": losses, "steepest_lr": steepest_lr(lrs, losses),
            "min_loss_lr": lrs[int(np.nanargmin(losses))], "config_lr": config.lr,
            "batches": len(lrs), "batch_size": config.batch_size, "model": config.model,
            "dataset": config.dataset, "optimizer": config.optimizer, "stopped_early": len(lrs) < num_iter}


def steepest_lr(lrs: list[float], losses: list[float], skip_start: int = 10, skip_end: int = 5) -> float:
    """The learning rate where the smoothed loss falls fastest per decade of learning rate, leaving out the
    first and last batches (the start is noise, the end is divergence): the usual first guess for the peak
    learning rate of a OneCycle or cosine schedule. The search stops at the lowest loss: past it the loss is
    blowing up, and a curve that drifts down again after a blow-up (without reaching the divergence stop) must
    not place the suggestion there."""
    finite_losses = [loss if math.isfinite(loss) else math.inf for loss in losses]
    lowest = int(np.argmin(finite_losses)) if finite_losses else 0
    end = min(len(lrs) - skip_end, lowest + 1)
    start = min(skip_start, max(0, end - 3))
    x = np.log10(np.asarray(lrs[start:end]))
    y = np.asarray(losses[start:end])
    if len(x) < 3 or not np.all(np.isfinite(y)):
        finite = [lr for lr, loss in zip(lrs, losses) if math.isfinite(loss)]
        return finite[len(finite) // 2] if finite else lrs[0]
    return float(10 ** x[int(np.argmin(np.gradient(y, x)))])
