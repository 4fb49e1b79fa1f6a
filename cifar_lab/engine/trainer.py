"""The one training loop of the book: every chapter, dense or AST, every dataset, CPU or GPU.

`train(config, out_dir)` writes config.json, metrics.csv (a row per epoch), summary.json, best.pt and
last.pt into `out_dir`, and returns a `RunResult` for notebooks to plot from.
"""
from __future__ import annotations

import csv
import io
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch
from tqdm import tqdm

from .. import models
from ..config import TrainConfig, from_dict, save_json, validate
from ..data import registry as data_registry
from ..errors import UsageError
from ..io import atomic_write_text
from . import checkpoint
from .evaluate import evaluate
from .optim import build_optimizer, build_scheduler
from .runtime import (autocast, resolve_device, resolve_precision, rng_state, seed_everything, set_deterministic,
                      set_rng_state)
from .steps import make_step


@dataclass
class RunResult:
    summary: dict
    history: list[dict]
    model: torch.nn.Module
    data: data_registry.DataBundle
    evaluation: dict                     # the final epoch's evaluation (confusion matrix, per-class accuracy)
    config: TrainConfig
    out_dir: Optional[Path] = None
    extra: dict = field(default_factory=dict)


def write_metrics_csv(path: Path, history: list[dict]) -> None:
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buffer.getvalue())


def _resume_state(out_dir: Path) -> dict:
    last = out_dir / "last.pt"
    if not last.is_file():
        raise UsageError(f"--resume: {last} does not exist; start the run without --resume")
    return checkpoint.load(last)


def train(config: TrainConfig, out_dir=None, resume: bool = False,
          on_epoch_end: Optional[Callable[[dict], None]] = None) -> RunResult:
    """Train as `config` says. With `resume`, continue the run saved in `out_dir/last.pt`."""
    out = Path(out_dir) if out_dir is not None else None
    state = None
    if resume:
        if out is None:
            raise UsageError("--resume needs --out DIR, the folder of the run to continue")
        state = _resume_state(out)
        config = from_dict(state["config"])
    validate(config)

    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    seed_everything(config.seed)
    set_deterministic(config.deterministic)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    data = data_registry.build(config, device, generator)
    config.num_classes = data.num_classes

    model = models.build_for(config).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    runner = torch.compile(model) if config.compile else model
    optimizer = build_optimizer(config, model)
    scheduler = build_scheduler(config, optimizer, len(data.train_loader))
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    step = make_step(config, runner, optimizer, scaler, device, precision)

    start_epoch, best_acc, best_epoch, since_best, history, trained_seconds = 0, -1.0, -1, 0, [], 0.0
    earlier_wall = 0.0  # wall-clock of the epochs done before a resume
    if state is not None:
        model.load_state_dict(checkpoint.strip_compile_prefix(state["model"]))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        step.load_state_dict(state.get("step", {}))
        set_rng_state(state["rng"], generator)
        start_epoch, best_acc, best_epoch = state["epoch"] + 1, state["best_acc"], state["best_epoch"]
        since_best, history = state.get("since_best", 0), state.get("history", [])
        trained_seconds = state.get("trained_seconds", 0.0)
        earlier_wall = state.get("wall_seconds", 0.0)

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        save_json(config, out / "config.json")

    params = models.count_parameters(model)
    evaluation: dict = {}
    stop_reason = "completed"
    wall_start = time.perf_counter()
    for epoch in range(start_epoch, config.epochs):
        step.start_epoch(epoch)
        if hasattr(data.train_loader, "set_epoch"):  # loaders whose randomness is not in the checkpoint
            data.train_loader.set_epoch(epoch)
        sync(device)
        epoch_start = time.perf_counter()
        bar = tqdm(data.train_loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
                   disable=not config.progress, dynamic_ncols=True)
        for batch_index, (images, labels) in enumerate(bar):
            step.train_batch(images.to(device, non_blocking=True), labels.to(device, non_blocking=True))
            with warnings.catch_warnings():  # gradient accumulation steps the schedule before the optimizer
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
                scheduler.step()
            if config.progress and (batch_index + 1) % config.log_every == 0:
                bar.set_postfix(step.running())
            if config.time_budget_s and trained_seconds + time.perf_counter() - epoch_start >= config.time_budget_s:
                break  # the budget ends inside the epoch: evaluate what was trained and stop
        row = {"epoch": epoch + 1, **step.end_epoch()}
        sync(device)
        row["epoch_seconds"] = time.perf_counter() - epoch_start
        trained_seconds += row["epoch_seconds"]
        evaluation = evaluate(runner, data.test_loader, config.num_classes, device,
                              lambda: autocast(device, precision), data.coarse_of_fine)
        row.update(test_loss=evaluation["loss"], test_acc=evaluation["top1"], test_top5=evaluation["top5"])
        if "superclass_top1" in evaluation:
            row["test_superclass_acc"] = evaluation["superclass_top1"]
        row["lr"] = optimizer.param_groups[0]["lr"]
        history.append(row)

        improved = row["test_acc"] > best_acc
        if improved:
            best_acc, best_epoch, since_best = row["test_acc"], epoch + 1, 0
        else:
            since_best += 1
        if config.progress:
            tqdm.write(_epoch_line(row, config.epochs))
        stop_reason = _stop_reason(config, epoch + 1, row["test_acc"], since_best, trained_seconds)

        if out is not None:
            write_metrics_csv(out / "metrics.csv", history)
            if config.save_checkpoints:
                full = {
                    "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler else None,
                    "step": step.state_dict(), "best_acc": best_acc, "best_epoch": best_epoch,
                    "since_best": since_best, "history": history, "trained_seconds": trained_seconds,
                    "wall_seconds": earlier_wall + time.perf_counter() - wall_start,
                    "rng": rng_state(generator), "config": config.to_dict(),
                    "class_names": data.class_names, "mean": data.mean, "std": data.std,
                }
                if improved:
                    checkpoint.save(out / "best.pt", full)
                checkpoint.save(out / "last.pt", full)
        if on_epoch_end is not None:
            on_epoch_end(row)
        if stop_reason != "completed":
            break

    summary = {
        "preset": config.preset, "model": config.model, "dataset": config.dataset,
        "best_acc": best_acc, "best_epoch": best_epoch,
        "final_acc": history[-1]["test_acc"] if history else None,
        "final_top5": history[-1]["test_top5"] if history else None,
        "epochs": len(history), "stop_reason": stop_reason,
        "wall_seconds": earlier_wall + time.perf_counter() - wall_start,
        "train_seconds": trained_seconds, "params": params, "device": device_name(device),
        "precision": precision, "channels_last": config.channels_last, "compile": config.compile,
        "train_samples": data.info.get("train_samples"), "test_samples": data.info.get("test_samples"),
    }
    if history and "test_superclass_acc" in history[-1]:
        summary["final_superclass_acc"] = history[-1]["test_superclass_acc"]
        summary["best_superclass_acc"] = max(r["test_superclass_acc"] for r in history)
    if "skipped_files" in data.info:
        summary["skipped_files"] = data.info["skipped_files"]
    summary.update(step.summary(history))
    extra = step.artifacts(out) if hasattr(step, "artifacts") else {}  # e.g. AST's per-batch trace
    if out is not None:
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
        if evaluation:
            atomic_write_text(out / "evaluation.json", json.dumps(evaluation_report(evaluation, data), indent=2) + "\n")
    return RunResult(summary, history, model, data, evaluation, config, out, extra)


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


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
