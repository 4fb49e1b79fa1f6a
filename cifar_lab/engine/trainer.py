"""The one training loop of the book: every chapter, dense or AST, every dataset, CPU or GPU.

`train(config, out_dir)` writes config.json, metrics.csv (a row per epoch), summary.json, evaluation.json,
best.pt and last.pt into `out_dir`, and returns a `RunResult` for notebooks to plot from. It reads in four
named parts, as torchvision's reference scripts do: `setup` (data, model, optimizer, schedule, step, and the
state of a resumed run), `train_one_epoch`, `save_checkpoints` and `summarize`.
"""
from __future__ import annotations

import contextlib
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

from .. import distributed, models, provenance
from ..config import TrainConfig, from_dict, save_json, validate
from ..data import registry as data_registry
from ..data.bundle import DataBundle
from ..errors import TrainingDiverged, UsageError
from ..io import atomic_link, atomic_write_text, folder_lock, make_folder, remove_stale_temporaries
from ..measure import sync
from . import checkpoint
from .evaluate import evaluate
from .optim import build_optimizer, build_scheduler
from .runtime import (autocast, resolve_device, resolve_precision, rng_state, seed_everything, set_deterministic,
                      set_rng_state)
from .distill_step import DistillStep
from .sparse_step import SparseStep
from .steps import DenseStep, TrainStep, planned_optimizer_steps


# A training loss above this many times ln(num_classes) (a uniform guess) stops the run as diverged.
DIVERGENCE_FACTOR = 1e4


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
    evaluator: Optional[torch.nn.Module] = None      # several processes: what evaluates (not DDP's wrapper)
    writes: bool = True                              # this process writes the run's files (rank 0)


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


def initialise(model: torch.nn.Module, config: TrainConfig, data: DataBundle) -> None:
    """Start `model` from the checkpoint `config.init_from` names (`checkpoint.initialise_from`: every layer
    but the classifier), and record that in the bundle's info (the summary shows it)."""
    from ..config import init_checkpoint

    path = init_checkpoint(config)
    done = checkpoint.initialise_from(model, path, config.model, data.class_names)
    data.info["initialised_from"] = {"checkpoint": path, "copied": len(done["copied"]), "fresh": done["fresh"]}
    source = done["source_input"] or {}
    if source.get("mean") and max(abs(a - b) for a, b in zip(source["mean"], data.mean)) > 0.01:
        # The copied layers learned on inputs normalised with the checkpoint's statistics; other statistics
        # shift every input the first layer sees.
        print(f"note: init_from={path} was trained on inputs normalised with mean {source['mean']}, this run "
              f"normalises with {list(data.mean)}; a fixed normalization (half or unit) keeps them the same",
              file=sys.stderr)


def make_step(config, model, optimizer, scaler, device, precision, scheduler, batches_per_epoch) -> TrainStep:
    kind = DistillStep if config.distill.enabled else SparseStep if config.ast.enabled else DenseStep
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
        flag = "--resume-from" if resume_from is not None else "--resume"
        if not last.is_file():
            fix = "give the path of a checkpoint (last.pt, best.pt or epoch_NNN.pt)" if resume_from is not None \
                else "start the run without --resume"
            raise UsageError(f"{flag}: {last} does not exist; {fix}")
        state = checkpoint.load(last)
        config = from_dict(state["config"])
        check_same_run(out, config, last, flag)
    validate(config)

    device = distributed.device_for(resolve_device(config.device))
    if distributed.init(device, config.dist.timeout_s) or distributed.active():
        distributed.check_same_config(config.to_dict())
    rank, world = distributed.rank(), distributed.world_size()
    precision = distributed.precision_for_strategy(resolve_precision(config.precision, device),
                                                   config.dist.strategy)
    seed_everything(config.seed)
    set_deterministic(config.deterministic)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    data = build_data(config, device, generator)
    config = resolved_config(config, data)
    config, optim_config = distributed_fields(config, world)

    model = models.build_for(config).to(device)
    if config.dropout is not None:
        for module in model.modules():
            if isinstance(module, torch.nn.modules.dropout._DropoutNd):
                module.p = config.dropout
    if config.init_from and state is None:  # a resumed run has its own weights in last.pt
        initialise(model, config, data)
    if distributed.active():
        model = distributed.convert_sync_batchnorm(model, device, config.dist.sync_batchnorm)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    runner = torch.compile(model) if config.compile else model
    evaluator, counter = runner, None
    optimizer = build_optimizer(optim_config, model)
    stepping = optimizer               # what the step calls: PostLocalSGDOptimizer wraps it for local SGD
    if distributed.active():
        runner, stepping, counter = distributed.wrap(runner, device, optimizer, config.dist)
    batches_per_epoch = len(data.train_loader)
    scheduler = build_scheduler(optim_config, optimizer, planned_optimizer_steps(config, batches_per_epoch))
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    step = make_step(config, runner, stepping, scaler, device, precision, scheduler, batches_per_epoch)
    step.comm = counter
    if isinstance(step, DistillStep):  # the teacher sees the batch in its own normalisation
        step.set_input_statistics(data.mean, data.std)
    run = Run(config, out, device, precision, data, model, runner, optimizer, scheduler, scaler, step, generator)
    run.evaluator, run.writes = evaluator, rank == 0
    if state is not None:
        try:
            model.load_state_dict(checkpoint.strip_compile_prefix(state["model"]))
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError):
            raise UsageError(f"{flag}: {last} holds weights that do not fit its own config "
                             f"(model {config.model}); it is not a checkpoint this run can continue") from None
        if state["config"].get("dist", {}).get("world_size", 1) == world:
            scheduler.load_state_dict(state["scheduler"])
        # else: another world size takes another number of steps per epoch; the schedule, planned for this
        # one, catches up with the finished epochs at the first step (`follow_schedule`)
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        step.load_state_dict(state.get("step", {}))
        set_rng_state(state["rng"], generator)
        run.start_epoch, run.best_acc, run.best_epoch = state["epoch"] + 1, state["best_acc"], state["best_epoch"]
        run.since_best, run.history = state.get("since_best", 0), state.get("history", [])
        run.trained_seconds = state.get("trained_seconds", 0.0)
        run.earlier_wall = state.get("wall_seconds", 0.0)
        if stepping is not optimizer:  # local SGD: the averager counts steps from the run's start
            stepping.averager.step = step.optimizer_steps
        if run.writes:
            print(f"resuming at epoch {run.start_epoch + 1} of {config.epochs} from {last}"
                  if run.start_epoch < config.epochs else
                  f"nothing to resume: {last} already holds all {config.epochs} epochs of the run", flush=True)
    if out is not None and run.writes:
        make_folder(out)
        remove_stale_temporaries(out)  # what a kill during a checkpoint write left behind
        save_json(config, out / "config.json")
        now = provenance.collect(world_size=world)
        earlier = earlier_environment(out, state) if state is not None else None
        run.environment = provenance.write(provenance.resumed(earlier, now), out)
    return run


def earlier_environment(out: Path, state: dict) -> Optional[dict]:
    """The provenance of the run a resume continues: the folder's environment.json when it belongs to the run
    the checkpoint was saved by (the same first start), else the record inside the checkpoint."""
    saved = state.get("environment") or None
    folder = provenance.read(out)
    if folder and (not saved or folder.get("start_utc") == saved.get("start_utc")):
        return folder
    return saved


def build_data(config: TrainConfig, device, generator) -> DataBundle:
    """The dataset; with several processes, each loader as this rank's share. A rank that fails to build its
    data stops every rank with its message, instead of leaving the others waiting in a collective."""
    if not distributed.active():
        return data_registry.build(config, device, generator)
    error, data = None, None
    first = distributed.local_rank() == 0  # writes generated or downloaded data while the others wait
    if not first:
        distributed.barrier()
    try:
        data = data_registry.build(config, device, generator)
        for name in ("train_loader", "test_loader"):
            loader = getattr(data, name)
            if not hasattr(loader, "sharded"):
                raise UsageError(f"dataset={config.dataset} has no loader for several processes ({name}); train "
                                 f"it in one process")
            setattr(data, name, loader.sharded(distributed.rank(), distributed.world_size(), config.seed))
    except UsageError as exc:
        error = str(exc)
    if first:
        distributed.barrier()
    distributed.agree(error)
    return data


def distributed_fields(config: TrainConfig, world: int) -> tuple[TrainConfig, TrainConfig]:
    """Record the world size, global batch and learning rate; return the config and the one the optimizer
    and schedule are built from. `lr_scaling=linear` multiplies the learning rate by the global batch over
    `lr_reference_batch` (Goyal et al. 2017, "Accurate, Large Minibatch SGD")."""
    global_batch = config.batch_size * world * config.grad_accum
    factor = global_batch / config.lr_reference_batch if config.lr_scaling == "linear" else 1.0
    recorded = dataclasses.replace(config, dist=dataclasses.replace(
        config.dist, world_size=world, global_batch=global_batch, effective_lr=config.lr * factor))
    return recorded, dataclasses.replace(recorded, lr=config.lr * factor,
                                         onecycle_max_lr=config.onecycle_max_lr * factor)


def check_same_run(out: Path, config: TrainConfig, last: Optional[Path] = None, flag: str = "--resume") -> None:
    """Refuse to resume when the checkpoint `last` (`out/last.pt` by default) belongs to another run than the
    folder's config.json says; `flag` is the option the messages name."""
    last = last if last is not None else out / "last.pt"
    recorded = out / "config.json"
    if not recorded.is_file():
        return
    try:
        folder = json.loads(recorded.read_text())
    except (OSError, ValueError):
        raise UsageError(f"{flag}: {recorded} cannot be read as JSON; the folder does not hold a complete "
                         f"run") from None
    mine = {key: folder.get(key) for key in ("preset", "model", "dataset")}
    theirs = {key: getattr(config, key) for key in mine}
    if mine != theirs:
        raise UsageError(f"{flag}: {last} was written by a run of preset {theirs['preset']!r}, model "
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
               disable=None if config.progress and run.writes else True, dynamic_ncols=True)  # no bar in pipes
    for batch_index, (images, labels) in enumerate(bar):
        step.train_batch(images.to(device, non_blocking=True), labels.to(device, non_blocking=True))
        if config.progress and (batch_index + 1) % config.log_every == 0:
            bar.set_postfix(step.running())
        if config.time_budget_s and distributed.stop_inside_epoch(
                run.trained_seconds + time.perf_counter() - epoch_start >= config.time_budget_s, batch_index,
                len(run.data.train_loader), device):
            break  # the budget ends inside the epoch: evaluate what was trained and stop
    row = {"epoch": epoch + 1, **step.end_epoch()}
    sync(device)
    # The slowest rank's seconds: every rank then counts the same training time against the budget.
    row["epoch_seconds"] = distributed.max_over_ranks(time.perf_counter() - epoch_start, device)
    run.trained_seconds += row["epoch_seconds"]
    # Each rank evaluates its share with the plain model (DDP's forward would expect every rank to take as
    # many batches); the sums are all-reduced.
    run.evaluation = evaluate(run.evaluator or run.runner, run.data.test_loader, config.num_classes, device,
                              lambda: autocast(device, run.precision), run.data.coarse_of_fine,
                              reduce=distributed.all_reduce_sum if distributed.active() else None)
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
    # One serialisation per epoch: best.pt and epoch_NNN.pt are hard links to the bytes of this last.pt (an
    # atomic copy where the file system has no links), which halves the disk a run leaves behind.
    checkpoint.save(run.out / "last.pt", full)
    if improved:
        atomic_link(run.out / "last.pt", run.out / "best.pt")
    every = run.config.checkpoint_every
    if every and (epoch + 1) % every == 0:
        atomic_link(run.out / "last.pt", run.out / f"epoch_{epoch + 1:03d}.pt")
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
        "device": provenance.device_name(run.device), "precision": run.precision,
        "channels_last": config.channels_last,
        "compile": config.compile, "resolution": data.resolution,
        "train_samples": data.info.get("train_samples"), "test_samples": data.info.get("test_samples"),
        "data_source": data.info.get("source"),   # where the images were read from
    }
    if history and "test_superclass_acc" in history[-1]:
        summary["final_superclass_acc"] = history[-1]["test_superclass_acc"]
        summary["best_superclass_acc"] = max(r["test_superclass_acc"] for r in history)
    if "skipped_files" in data.info:
        summary["skipped_files"] = data.info["skipped_files"]
    if "initialised_from" in data.info:
        summary["initialised_from"] = data.info["initialised_from"]
    summary.update(run.step.summary(history))
    return summary


def train(config: Optional[TrainConfig], out_dir=None, resume: bool = False,
          on_epoch_end: Optional[Callable[[dict], None]] = None, resume_from=None) -> RunResult:
    """Train as `config` says. With `resume`, continue the run saved in `out_dir/last.pt`; with
    `resume_from`, continue from that checkpoint (any `epoch_NNN.pt`, `best.pt` or `last.pt`) into `out_dir`."""
    out = Path(out_dir) if out_dir is not None else None
    joined = not distributed.active()
    try:
        with run_folder(out, fresh=not resume and resume_from is None):
            return _train(config, out, resume, on_epoch_end, resume_from)
    finally:
        if joined and distributed.active():  # this call joined the process group: leave it
            distributed.shutdown()


# Files a run writes before its first epoch ends; without a checkpoint or metrics beside them they describe
# nothing, so a fresh run that fails that early removes them.
START_FILES = ("config.json", provenance.FILE_NAME)
RESULT_FILES = ("last.pt", "metrics.csv", "summary.json")


@contextlib.contextmanager
def run_folder(out: Optional[Path], fresh: bool):
    """Hold the run folder's lock for the whole run (the writing process only: rank 0): a second run with the
    same folder stops with one line naming this one's PID, before it writes anything. A fresh run that fails
    before finishing an epoch leaves no config.json and environment.json behind, nor a folder it created."""
    if out is None or distributed.rank() != 0:
        yield
        return
    existed = out.exists()
    try:
        with folder_lock(out, "cifar-lab run"):
            try:
                yield
            except TrainingDiverged:
                raise  # a result: summary.json says where and why
            except BaseException:
                if fresh and not any((out / name).exists() for name in RESULT_FILES):
                    for name in START_FILES:
                        (out / name).unlink(missing_ok=True)
                raise
    except BaseException:
        if not existed:
            with contextlib.suppress(OSError):
                out.rmdir()  # only if nothing is left in it
        raise


def divergence_bound(config: TrainConfig) -> float:
    """The training loss above which a run has diverged: DIVERGENCE_FACTOR times the cross-entropy of a
    uniform guess over the classes, ln(num_classes), which is where a freshly initialised classifier starts.
    A fixed reference also catches a blow-up inside the first epoch, where no earlier loss exists."""
    return DIVERGENCE_FACTOR * math.log(max(config.num_classes, 2))


def _train(config, out, resume, on_epoch_end, resume_from) -> RunResult:
    run = setup(config, out, resume, resume_from)
    stop_reason = "completed"
    diverged = None
    for epoch in range(run.start_epoch, run.config.epochs):
        row = train_one_epoch(run, epoch)
        # The loss is computed in fp32 from the logits. With fp16, GradScaler skips the steps whose scaled
        # gradients overflow and lowers its scale; those never make the loss itself NaN or inf, so a
        # non-finite loss here is divergence, not loss scaling at work.
        # A finite loss far above chance is a blow-up too (AdamW at lr=1e4 reaches 1e23 without an overflow).
        if not math.isfinite(row["train_loss"]) or row["train_loss"] > divergence_bound(run.config):
            diverged, stop_reason = row, "diverged"
            break
        run.history.append(row)
        improved = row["test_acc"] > run.best_acc
        if improved:
            run.best_acc, run.best_epoch, run.since_best = row["test_acc"], epoch + 1, 0
        else:
            run.since_best += 1
        if run.config.progress and run.writes:
            tqdm.write(_epoch_line(row, run.config.epochs))
        stop_reason = distributed.agree_on_stop(
            _stop_reason(run.config, epoch + 1, row["test_acc"], run.since_best, run.trained_seconds))
        if out is not None and run.writes:
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
                       diverged_lr=diverged["lr"], divergence_bound=divergence_bound(run.config))
    extra = run.step.artifacts(out if run.writes else None)
    if out is not None and run.writes:
        atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
        provenance.write(provenance.finish(run.environment), out)
        if run.evaluation and diverged is None:
            report = evaluation_report(run.evaluation, run.data)
            atomic_write_text(out / "evaluation.json", json.dumps(report, indent=2) + "\n")
    if diverged is not None:
        kept = f"; {out / 'last.pt'} still holds epoch {diverged['epoch'] - 1}" if out and run.history else ""
        loss = diverged["train_loss"]
        bound_note = f" (above {divergence_bound(run.config):.4g}, where a run counts as diverged)" \
            if math.isfinite(loss) else ""
        raise TrainingDiverged(
            f"training diverged in epoch {diverged['epoch']}: the training loss is {diverged['train_loss']:.4g}"
            f"{bound_note} at learning rate {diverged['lr']:g}; the usual causes are a learning rate too high for this model and "
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
