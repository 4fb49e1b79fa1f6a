"""The one training loop of the book: every chapter, dense or AST, every dataset, CPU or GPU.

`train(config, out_dir)` writes config.json, metrics.csv (a row per epoch), summary.json, evaluation.json,
best.pt and last.pt into `out_dir`, and returns a `RunResult` for notebooks to plot from. It reads in four
named parts, as torchvision's reference scripts do: `setup` (data, model, optimizer, schedule, step, and the
state of a resumed run), `train_one_epoch`, `save_checkpoints` and `summarize`.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch
from tqdm import tqdm

from .. import models, provenance
from ..config import TrainConfig, from_dict, save_json, validate
from ..data import registry as data_registry
from ..data.bundle import DataBundle
from ..errors import TrainingDiverged, UsageError
from ..io import atomic_write_text, make_folder, remove_stale_temporaries
from ..measure import sync
from . import checkpoint
from .evaluate import evaluate
from .optim import build_optimizer, build_scheduler
from .runtime import (autocast, resolve_device, resolve_precision, rng_state, seed_everything, set_deterministic,
                      set_rng_state)
from .sparse_step import SparseStep
from .steps import DenseStep, TrainStep, planned_optimizer_steps


@dataclass
class RunResult:
    summary: dict
    history: list[dict]
    model: torch.nn.Module
    data: DataBundle
    evaluation: dict                     # the final epoch's evaluation (confusion matrix, per-class accuracy)
    config: TrainConfig
    out_dir: Optional[Path] = None
    extra: dict = field(default_factory=dict)


@dataclass
class Run:
    """Everything a training run holds between its parts."""

    config: TrainConfig                  # resolved: what the data builder found is recorded in it
    out: Optional[Path]
    device: torch.device
    precision: str
    data: DataBundle
    model: torch.nn.Module               # the unwrapped model (what checkpoints hold)
    runner: torch.nn.Module              # what is called: the model, or its torch.compile wrapper
    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: Optional[torch.amp.GradScaler]
    step: TrainStep
    generator: torch.Generator
    start_epoch: int = 0
    best_acc: float = -1.0
    best_epoch: int = -1
    since_best: int = 0
    history: list = field(default_factory=list)
    trained_seconds: float = 0.0
    earlier_wall: float = 0.0            # wall-clock of the epochs done before a resume
    wall_start: float = field(default_factory=time.perf_counter)
    evaluation: dict = field(default_factory=dict)   # the latest epoch's evaluation
    environment: dict = field(default_factory=dict)  # provenance: code, software, hardware (environment.json)


def write_metrics_csv(path: Path, history: list[dict]) -> None:
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buffer.getvalue())


def resolved_config(config: TrainConfig, data: DataBundle) -> TrainConfig:
    """The config as the run uses it: the class count, crop sizes and pretrained weights the data allows."""
    changes = {"num_classes": data.num_classes}
    if data.eval_resize:  # JPEG routes: record the crop and resize the dataset defaults resolved to
        changes.update(image_size=data.resolution, eval_resize=data.eval_resize)
    if not data.pretrained_usable and config.pretrained != "none":
        print(f"note: dataset={config.dataset} trains from random initialisation (pretrained={config.pretrained} "
              f"not used: generated images, offline run); to fine-tune pretrained weights on a generated tree use "
              f"dataset=imagenet1k imagenet_root={data.info.get('source', 'DIR')}", file=sys.stderr)
        data.info["pretrained_not_used"] = config.pretrained
        changes["pretrained"] = "none"
    return dataclasses.replace(config, **changes)


def make_step(config, model, optimizer, scaler, device, precision, scheduler, batches_per_epoch) -> TrainStep:
    kind = SparseStep if config.ast.enabled else DenseStep
    return kind(model, optimizer, scaler, config, device, precision, scheduler, batches_per_epoch)


def setup(config: Optional[TrainConfig], out: Optional[Path], resume: bool,
          resume_from: Optional[Path] = None) -> Run:
    """Build the run from `config`, or with `resume` from `out/last.pt` (or from the checkpoint `resume_from`,
    e.g. an `epoch_NNN.pt`): its config and full state."""
    state = None
    if resume or resume_from is not None:
        if out is None:
            raise UsageError("--resume needs --out DIR, the folder of the run to continue")
        last = Path(resume_from) if resume_from is not None else out / "last.pt"
        if not last.is_file():
            raise UsageError(f"--resume: {last} does not exist; start the run without --resume")
        state = checkpoint.load(last)
        config = from_dict(state["config"])
        check_same_run(out, config)
    validate(config)

    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    seed_everything(config.seed)
    set_deterministic(config.deterministic)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    data = data_registry.build(config, device, generator)
    config = resolved_config(config, data)

    model = models.build_for(config).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    runner = torch.compile(model) if config.compile else model
    optimizer = build_optimizer(config, model)
    batches_per_epoch = len(data.train_loader)
    scheduler = build_scheduler(config, optimizer, planned_optimizer_steps(config, batches_per_epoch))
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    step = make_step(config, runner, optimizer, scaler, device, precision, scheduler, batches_per_epoch)
    run = Run(config, out, device, precision, data, model, runner, optimizer, scheduler, scaler, step, generator)
    if state is not None:
        try:
            model.load_state_dict(checkpoint.strip_compile_prefix(state["model"]))
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError):
            raise UsageError(f"--resume: {out / 'last.pt'} holds weights that do not fit its own config "
                             f"(model {config.model}); it is not a checkpoint this run can continue") from None
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        step.load_state_dict(state.get("step", {}))
        set_rng_state(state["rng"], generator)
        run.start_epoch, run.best_acc, run.best_epoch = state["epoch"] + 1, state["best_acc"], state["best_epoch"]
        run.since_best, run.history = state.get("since_best", 0), state.get("history", [])
        run.trained_seconds = state.get("trained_seconds", 0.0)
        run.earlier_wall = state.get("wall_seconds", 0.0)
    if out is not None:
        make_folder(out)
        remove_stale_temporaries(out)  # what a kill during a checkpoint write left behind
        save_json(config, out / "config.json")
        run.environment = provenance.write(provenance.collect(), out)
    return run


def check_same_run(out: Path, config: TrainConfig) -> None:
    """Refuse to resume when `last.pt` belongs to another run than the folder's config.json says."""
    recorded = out / "config.json"
    if not recorded.is_file():
        return
    try:
        folder = json.loads(recorded.read_text())
    except (OSError, ValueError):
        raise UsageError(f"--resume: {recorded} cannot be read as JSON; the folder does not hold a complete "
                         f"run") from None
    mine = {key: folder.get(key) for key in ("preset", "model", "dataset")}
    theirs = {key: getattr(config, key) for key in mine}
    if mine != theirs:
        raise UsageError(f"--resume: {out / 'last.pt'} was written by a run of preset {theirs['preset']!r}, model "
                         f"{theirs['model']!r}, dataset {theirs['dataset']!r}, but {recorded} is for preset "
                         f"{mine['preset']!r}, model {mine['model']!r}, dataset {mine['dataset']!r}; resume in the "
                         f"folder of that run or start a new one with another --out")


def train_one_epoch(run: Run, epoch: int) -> dict:
    """Train one epoch (or until the time budget runs out inside it), evaluate, and return its metrics row."""
    config, step, device = run.config, run.step, run.device
    step.start_epoch(epoch)
    run.data.train_loader.set_epoch(epoch)
    sync(device)
    epoch_start = time.perf_counter()
    bar = tqdm(run.data.train_loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
               disable=None if config.progress else True, dynamic_ncols=True)  # no bar in pipes
    for batch_index, (images, labels) in enumerate(bar):
        step.train_batch(images.to(device, non_blocking=True), labels.to(device, non_blocking=True))
        if config.progress and (batch_index + 1) % config.log_every == 0:
            bar.set_postfix(step.running())
        if config.time_budget_s and run.trained_seconds + time.perf_counter() - epoch_start >= config.time_budget_s:
            break  # the budget ends inside the epoch: evaluate what was trained and stop
    row = {"epoch": epoch + 1, **step.end_epoch()}
    sync(device)
    row["epoch_seconds"] = time.perf_counter() - epoch_start
    run.trained_seconds += row["epoch_seconds"]
    run.evaluation = evaluate(run.runner, run.data.test_loader, config.num_classes, device,
                              lambda: autocast(device, run.precision), run.data.coarse_of_fine)
    row.update(test_loss=run.evaluation["loss"], test_acc=run.evaluation["top1"], test_top5=run.evaluation["top5"])
    if "superclass_top1" in run.evaluation:
        row["test_superclass_acc"] = run.evaluation["superclass_top1"]
    row["lr"] = run.optimizer.param_groups[0]["lr"]
    return row


def save_checkpoints(run: Run, epoch: int, improved: bool) -> None:
    """last.pt after every epoch and best.pt when test accuracy improved, with the full training state."""
    full = {
        "epoch": epoch, "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(), "scaler": run.scaler.state_dict() if run.scaler else None,
        "step": run.step.state_dict(), "best_acc": run.best_acc, "best_epoch": run.best_epoch,
        "since_best": run.since_best, "history": run.history, "trained_seconds": run.trained_seconds,
        "wall_seconds": run.earlier_wall + time.perf_counter() - run.wall_start,
        "rng": rng_state(run.generator), "config": run.config.to_dict(),
        "class_names": run.data.class_names, "mean": run.data.mean, "std": run.data.std,
        "input": run.data.input_record(), "environment": run.environment,
    }
    if improved:
        checkpoint.save(run.out / "best.pt", full)
    checkpoint.save(run.out / "last.pt", full)
    every = run.config.checkpoint_every
    if every and (epoch + 1) % every == 0:
        checkpoint.save(run.out / f"epoch_{epoch + 1:03d}.pt", full)
        keep = run.config.keep_checkpoints
        periodic = sorted(run.out.glob("epoch_[0-9][0-9][0-9]*.pt"))
        for old in periodic[:-keep] if keep else []:  # written atomically, so deleting the oldest is safe
            old.unlink(missing_ok=True)


def summarize(run: Run, stop_reason: str) -> dict:
    config, history, data = run.config, run.history, run.data
    summary = {
        "preset": config.preset, "model": config.model, "dataset": config.dataset,
        "best_acc": run.best_acc, "best_epoch": run.best_epoch,
        "final_acc": history[-1]["test_acc"] if history else None,
        "final_top5": history[-1]["test_top5"] if history else None,
        "epochs": len(history), "stop_reason": stop_reason,
        "wall_seconds": run.earlier_wall + time.perf_counter() - run.wall_start,
        "train_seconds": run.trained_seconds, "params": models.count_parameters(run.model),
        "device": device_name(run.device), "precision": run.precision, "channels_last": config.channels_last,
        "compile": config.compile, "resolution": data.resolution,
        "train_samples": data.info.get("train_samples"), "test_samples": data.info.get("test_samples"),
    }
    if history and "test_superclass_acc" in history[-1]:
        summary["final_superclass_acc"] = history[-1]["test_superclass_acc"]
        summary["best_superclass_acc"] = max(r["test_superclass_acc"] for r in history)
    if "skipped_files" in data.info:
        summary["skipped_files"] = data.info["skipped_files"]
    summary.update(run.step.summary(history))
    return summary


def train(config: Optional[TrainConfig], out_dir=None, resume: bool = False,
          on_epoch_end: Optional[Callable[[dict], None]] = None, resume_from=None) -> RunResult:
    """Train as `config` says. With `resume`, continue the run saved in `out_dir/last.pt`; with
    `resume_from`, continue from that checkpoint (any `epoch_NNN.pt`, `best.pt` or `last.pt`) into `out_dir`."""
    out = Path(out_dir) if out_dir is not None else None
    run = setup(config, out, resume, resume_from)
    stop_reason = "completed"
    diverged = None
    for epoch in range(run.start_epoch, run.config.epochs):
        row = train_one_epoch(run, epoch)
        # The loss is computed in fp32 from the logits. With fp16, GradScaler skips the steps whose scaled
        # gradients overflow and lowers its scale; those never make the loss itself NaN or inf, so a
        # non-finite loss here is divergence, not loss scaling at work.
        if not math.isfinite(row["train_loss"]):
            diverged, stop_reason = row, "diverged"
            break
        run.history.append(row)
        improved = row["test_acc"] > run.best_acc
        if improved:
            run.best_acc, run.best_epoch, run.since_best = row["test_acc"], epoch + 1, 0
        else:
            run.since_best += 1
        if run.config.progress:
            tqdm.write(_epoch_line(row, run.config.epochs))
        stop_reason = _stop_reason(run.config, epoch + 1, row["test_acc"], run.since_best, run.trained_seconds)
        if out is not None:
            # Checkpoints first: metrics.csv never lists an epoch whose checkpoint failed to be written.
            if run.config.save_checkpoints:
                save_checkpoints(run, epoch, improved)
            write_metrics_csv(out / "metrics.csv", run.history)
        if on_epoch_end is not None:
            on_epoch_end(row)
        if stop_reason != "completed":
            break

    summary = summarize(run, stop_reason)
    if diverged is not None:
        summary.update(diverged_epoch=diverged["epoch"], diverged_loss=str(diverged["train_loss"]),
                       diverged_lr=diverged["lr"])
    extra = run.step.artifacts(out)
    if out is not None:
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
        provenance.write(provenance.finish(run.environment), out)
        if run.evaluation and diverged is None:
            report = evaluation_report(run.evaluation, run.data)
            atomic_write_text(out / "evaluation.json", json.dumps(report, indent=2) + "\n")
    if diverged is not None:
        kept = f"; {out / 'last.pt'} still holds epoch {diverged['epoch'] - 1}" if out and run.history else ""
        raise TrainingDiverged(
            f"training diverged in epoch {diverged['epoch']}: the training loss is {diverged['train_loss']} at "
            f"learning rate {diverged['lr']:g}; the usual causes are a learning rate too high for this model and "
            f"batch size, no warm-up, or broken input data{kept}")
    return RunResult(summary, run.history, run.model, run.data, run.evaluation, run.config, out, extra)


def evaluation_report(evaluation: dict, data) -> dict:
    """The last epoch's evaluation in plain JSON: per-class accuracy and the confusion matrix, with names."""
    report = {"top1": evaluation["top1"], "top5": evaluation["top5"], "samples": evaluation["samples"],
              "class_names": data.class_names,
              "per_class_acc": dict(zip(data.class_names, evaluation["per_class"])),
              "confusion": evaluation["confusion"].tolist()}
    if "superclass_top1" in evaluation:
        report["superclass_top1"] = evaluation["superclass_top1"]
        report["coarse_names"] = data.coarse_names
    return report


def _stop_reason(config: TrainConfig, epochs_done: int, acc: float, since_best: int, seconds: float) -> str:
    if config.time_budget_s and seconds >= config.time_budget_s:
        return "time_budget"
    if epochs_done < config.min_epochs:
        return "completed"
    if config.target_acc and acc >= config.target_acc:
        return "target_acc"
    if config.patience and since_best >= config.patience:
        return "patience"
    return "completed"


def _epoch_line(row: dict, epochs: int) -> str:
    extra = f"  act {row['activation_rate']:.3f}" if "activation_rate" in row else ""
    return (f"epoch {row['epoch']:>3}/{epochs}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}  "
            f"test loss {row['test_loss']:.4f} acc {row['test_acc']:.4f}  {row['epoch_seconds']:.1f}s{extra}")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
