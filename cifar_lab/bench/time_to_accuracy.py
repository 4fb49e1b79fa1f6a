"""`cifar-lab bench time-to-accuracy`: wall-clock seconds until a test accuracy is reached, ours against two
plain PyTorch loops, on the real Fashion-MNIST images.

Three paths train the preset's network with the preset's recipe - optimizer, learning rate and its schedule
(planned over the preset's epochs, stepped per batch), weight decay, label smoothing, batch size, shuffled
batches and augmentation - until the first epoch whose test accuracy reaches the target:

- `ours`: `engine.train` with the preset as it is (precision `auto`, channels_last, the device-resident loader
  with batched augmentation) and `target_acc` set;
- `reference`: the plain loop of most tutorials (`bench.plain_loop.PlainLoop`: fp32, contiguous memory format),
  fed by torchvision's `DataLoader` over the same image tensors with torchvision's transforms (random crop
  with padding 4 and horizontal flip for `augment=crop_flip`, normalisation with the same statistics);
- `informed`: the same plain loop and loader with the switches PyTorch's performance tuning guide advises,
  where the hardware has them: bf16 autocast where bf16 runs natively, and channels_last
  (`PlainLoop.informed`).

Each path evaluates the whole test split after every epoch. Each run records how many test images it
evaluated; where two paths evaluated different numbers, their ratio is withheld and `incomparable` says why.

Each clock starts before the data is read and stops when the target epoch's evaluation is done, so it
includes the path's own loading, augmentation and evaluation. Within each repeat the paths run in turn,
reference first, at least `MIN_REPEATS` times. Reported per path: seconds to the target, epochs, seconds
per training epoch (so that a path that crosses the threshold an epoch earlier cannot hide slower epochs),
and the training throughput in FLOP/s - the model's forward and backward FLOPs per image (counted by
`torch.utils.flop_counter`) times the images trained, over the training seconds - against the device's peak
at the path's precision, measured in the same run (`measure.matmul_flops`). The ratios, per repeat where both
paths reached the target and summarised by median, min and max (`measure.timing_summary`): `ratio`
(reference / ours) and `ratio_informed` (informed / ours), above 1 when ours reaches the target sooner;
`epoch_ratio` and `epoch_ratio_informed`, the same for seconds per training epoch. A path that does not
reach the target within the preset's epochs is reported as such, never as a time.

The CPU's vector capability (`torch.backends.cpu.get_cpu_capability()`: AVX2, AVX512, ...), its native bf16,
torch's threads and the load average before the start are part of the result: a ratio measured on a busy
machine says less, and the record says so (`quiet`: the 1-minute load average before the start was below
`QUIET_LOAD`). Interrupted (Ctrl-C), `run` returns the repeats it completed, marked `partial`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from pathlib import Path
from typing import Callable, Optional

import torch

from .. import models, presets
from ..config import validate
from ..data import fashion_mnist
from ..data.reference import make_loader
from ..engine.optim import build_optimizer
from ..engine.runtime import cpu_supports_bf16, resolve_device, resolve_precision, seed_everything
from ..engine.sparse_step import count_flops_per_sample
from ..engine.trainer import train as engine_train
from ..errors import UsageError
from ..measure import matmul_flops, sync, timing_summary
from ..provenance import command_line, device_name, git_state, short_commit, software_versions, utc_now
from . import progress
from .plain_loop import PlainLoop

PATHS = ("reference", "informed", "ours")   # the order within each repeat: reference first
MIN_REPEATS = 3                             # a median with a min and a max needs three
QUIET_LOAD = 1.5                            # the 1-minute load average below which the machine counts as quiet
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
RECIPE = ("optimizer", "lr", "weight_decay", "schedule", "label_smoothing", "batch_size", "shuffle", "augment")
DESCRIPTIONS = {"ours": "ours: engine.train", "reference": "plain loop", "informed": "informed plain loop"}


def check_config(preset: str, target: float, repeats: int, workers: int, device: str, sets) -> object:
    """The preset with the overrides, or a one-line error where the plain loop cannot train it as the engine
    does."""
    if not 0.0 < target <= 1.0:
        raise UsageError(f"--target must be a test accuracy in (0, 1], got {target}")
    if repeats < MIN_REPEATS or workers < 0:
        raise UsageError(f"--repeats must be at least {MIN_REPEATS} (a median with its min and max) and --workers "
                         f"0 or more")
    overrides = list(sets or []) + [("target_acc", target), ("save_checkpoints", False), ("progress", False),
                                    ("device", device)]
    config = validate(presets.resolve(preset, overrides))
    if config.dataset != fashion_mnist.NAME or config.image_channels != 3 or config.input_size == fashion_mnist.SIDE:
        raise UsageError(f"bench time-to-accuracy compares loops on Fashion-MNIST as the CIFAR models see it "
                         f"(3x32x32); preset {preset} is dataset={config.dataset}, {config.image_channels}x"
                         f"{config.input_size}px")
    unsupported = [text for text, present in (
        (f"augment={config.augment}", config.augment not in ("crop_flip", "none")),
        ("AST", config.ast.enabled), ("distillation", config.distill.enabled),
        (f"schedule={config.schedule}", config.schedule not in ("cosine", "constant")),
        (f"grad_accum={config.grad_accum}", config.grad_accum != 1),
        (f"grad_clip={config.grad_clip}", config.grad_clip != 0),
        (f"dropout={config.dropout}", config.dropout is not None),
        (f"classes={config.classes}", bool(config.classes)), (f"init_from={config.init_from}", bool(config.init_from)),
        (f"loader={config.loader}", config.loader != "device")) if present]
    if unsupported:
        raise UsageError(f"the plain loops implement the dense recipe (augment crop_flip or none, schedule cosine "
                         f"or constant, the device loader on our side); preset {preset} has "
                         f"{', '.join(unsupported)}")
    return config


def run(preset: str = "fmnist-simplecnn", target: float = 0.90, repeats: int = MIN_REPEATS, workers: int = 2,
        device: str = "cpu", sets: Optional[list[tuple[str, str]]] = None, peak_size: int = 2048) -> dict:
    """Train `preset` to test accuracy `target` on every path, in turn within each repeat (see the module
    docstring); `peak_size` is the side of the matrices of the peak FLOP/s measurement."""
    config = check_config(preset, target, repeats, workers, device, sets)
    fashion_mnist.locate(config)  # a missing dataset stops here, before anything is timed
    device = resolve_device(config.device)
    commit, dirty = git_state()
    stamp = {"commit": commit, "dirty": dirty, "started_utc": utc_now(), "command": command_line(),
             "software": software_versions(torch)}
    load_before = os.getloadavg()
    loops = {"reference": PlainLoop(label_smoothing=config.label_smoothing),
             "informed": PlainLoop.informed(device, config.label_smoothing)}
    precisions = {"reference": loops["reference"].precision, "informed": loops["informed"].precision,
                  "ours": resolve_precision(config.precision, device)}
    peaks: dict[str, dict] = {}
    flops_per_image = None
    runs: dict[str, list[dict]] = {name: [] for name in PATHS}
    partial = False
    bar = progress(total=repeats * len(PATHS), desc="time to accuracy", unit="run")
    try:
        with bar:
            bar.set_description("peak FLOP/s")
            for precision in sorted(set(precisions.values())):
                peaks[precision] = matmul_flops(device, precision, size=peak_size)
            flops_per_image = training_flops_per_image(config, device)
            for index in range(repeats):
                done = {}
                for name in PATHS:
                    bar.set_description(f"repeat {index + 1}/{repeats}: {name}")

                    def on_epoch(epoch: int, accuracy: float) -> None:
                        bar.set_postfix_str(f"epoch {epoch}, test accuracy {accuracy:.3f}")

                    done[name] = (engine_run(config, on_epoch) if name == "ours"
                                  else plain_run(config, workers, loops[name], on_epoch))
                    bar.update(1)
                for name in PATHS:  # only whole repeats count: each ratio needs every path of its repeat
                    runs[name].append(done[name])
    except KeyboardInterrupt:
        partial = True
    return {**summarize(config, runs, target, workers, device, load_before, os.getloadavg(), peaks,
                        flops_per_image, precisions, planned=repeats, partial=partial), "provenance": stamp}


def training_flops_per_image(config, device) -> float:
    """Forward and backward FLOPs of one training image through the preset's network (the same at every
    precision: autocast changes the number format, not the operations)."""
    model = models.build_for(config).to(device)
    size = config.input_size
    images = torch.zeros(2, config.image_channels, size, size, device=device)
    labels = torch.zeros(2, dtype=torch.long, device=device)
    counted = count_flops_per_sample(model, images, labels, torch.nn.CrossEntropyLoss(), contextlib.nullcontext)
    return counted["train"]


def engine_run(config, on_epoch: Optional[Callable[[int, float], None]] = None) -> dict:
    """Ours: `engine.train` to the target, timed from before its data is read."""
    device = resolve_device(config.device)
    sync(device)
    start = time.perf_counter()
    result = engine_train(config, on_epoch_end=(lambda row: on_epoch(row["epoch"], row["test_acc"]))
                          if on_epoch else None)
    sync(device)
    seconds = time.perf_counter() - start
    s, used = result.summary, result.config
    loader = result.data.train_loader
    settings = {"loop": "engine.train", "precision": s["precision"], "channels_last": used.channels_last,
                "loader": type(loader).__name__, "optimizer": used.optimizer, "lr": used.lr,
                "weight_decay": used.weight_decay, "schedule": used.schedule, "label_smoothing": used.label_smoothing,
                "batch_size": used.batch_size, "shuffle": bool(getattr(loader, "train", False)),
                "augment": used.augment}
    return {"seconds": seconds, "reached": s["stop_reason"] == "target_acc", "epochs": s["epochs"],
            "final_acc": s["final_acc"], "train_seconds": s["train_seconds"], "precision": s["precision"],
            "images_trained": sum(int(row["samples_trained"]) for row in result.history),
            "test_images": int(result.evaluation["samples"]),
            "curve": [round(row["test_acc"], 4) for row in result.history], "settings": settings}


@dataclasses.dataclass
class PlainRun:
    """What a plain path trains and evaluates with, built from the config by `build_plain`."""

    loop: PlainLoop
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Optional[object]            # None: the constant schedule
    train_loader: torch.utils.data.DataLoader
    test_loader: torch.utils.data.DataLoader

    def settings(self) -> dict:
        """The recipe as these objects carry it (not as the config asks for it)."""
        group = self.optimizer.param_groups[0]
        steps = [type(step).__name__ for step in self.train_loader.dataset.transform.transforms]
        randomised = [step for step in steps if step.startswith("Random")]
        augment = ("crop_flip" if randomised == ["RandomCrop", "RandomHorizontalFlip"] else
                   "+".join(randomised) or "none")
        return {**self.loop.record(), "loader": f"DataLoader, {self.train_loader.num_workers} workers",
                "optimizer": {"SGD": "sgd", "AdamW": "adamw"}.get(type(self.optimizer).__name__,
                                                                 type(self.optimizer).__name__),
                "lr": group.get("initial_lr", group["lr"]), "weight_decay": group["weight_decay"],
                "schedule": "constant" if self.scheduler is None else
                ("cosine" if isinstance(self.scheduler, torch.optim.lr_scheduler.CosineAnnealingLR)
                 else type(self.scheduler).__name__),
                "label_smoothing": self.loop.label_smoothing, "batch_size": self.train_loader.batch_size,
                "shuffle": isinstance(self.train_loader.sampler, torch.utils.data.RandomSampler),
                "augment": augment}


def build_plain(config, workers: int, loop: PlainLoop, device) -> PlainRun:
    """The plain path's data, model, optimizer and schedule: the preset's recipe, written as a tutorial would."""
    seed_everything(config.seed)
    train_split, test_split = fashion_mnist.load_splits(config)
    mean, std = fashion_mnist.statistics(config.normalization, train_split.images)
    train_loader = make_loader(train_split.images, train_split.labels, config.batch_size, mean=mean, std=std,
                               train=True, num_workers=workers, seed=config.seed, augment=config.augment)
    test_loader = make_loader(test_split.images, test_split.labels, config.eval_batch_size, mean=mean, std=std,
                              train=False, num_workers=workers)
    model = loop.prepare(models.build_for(config).to(device))
    optimizer = build_optimizer(config, model)
    scheduler = None
    if config.schedule == "cosine":  # torch's own cosine, over every step of the preset's epochs
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * len(train_loader))
    return PlainRun(loop, model, optimizer, scheduler, train_loader, test_loader)


def plain_run(config, workers: int, loop: PlainLoop, on_epoch: Optional[Callable[[int, float], None]] = None) -> dict:
    """A plain path to the target, timed from before its data is read."""
    device = resolve_device(config.device)
    sync(device)
    start = time.perf_counter()
    built = build_plain(config, workers, loop, device)
    curve, train_seconds, images_trained, reached, test_images = [], 0.0, 0, False, 0
    for epoch in range(config.epochs):
        built.train_loader.set_epoch(epoch)
        epoch_start = time.perf_counter()
        images_trained += loop.train(built.model, built.optimizer, built.train_loader, device,
                                     scheduler=built.scheduler)["images"]
        sync(device)
        train_seconds += time.perf_counter() - epoch_start
        evaluated = loop.evaluate(built.model, built.test_loader, device)
        test_images = evaluated["images"]
        curve.append(round(evaluated["accuracy"], 4))
        if on_epoch is not None:
            on_epoch(epoch + 1, evaluated["accuracy"])
        if epoch + 1 >= config.min_epochs and evaluated["accuracy"] >= config.target_acc:
            reached = True
            break
    sync(device)
    return {"seconds": time.perf_counter() - start, "reached": reached, "epochs": len(curve),
            "final_acc": curve[-1], "train_seconds": train_seconds, "precision": loop.precision,
            "images_trained": images_trained, "test_images": test_images, "curve": curve,
            "settings": built.settings()}


def cpu_features() -> dict:
    """What decides a CPU's training speed: torch's vector capability, native bf16, the flags that matter."""
    flags: set[str] = set()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"cpu": model or None, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_bf16": cpu_supports_bf16(),
            "flags": {name: name in flags for name in CPU_FLAGS} if flags else None}


def quiet(load_before: tuple) -> bool:
    """Quiet: little else ran when the benchmark started (1-minute load average below `QUIET_LOAD`)."""
    return load_before[0] < QUIET_LOAD


def incomparable(runs: dict) -> Optional[str]:
    """Why the paths' times cannot be compared, or None: every run must have evaluated as many test images."""
    counts = {name: sorted({item["test_images"] for item in items}) for name, items in runs.items() if items}
    if len({count for found in counts.values() for count in found}) <= 1:
        return None
    return ("the paths evaluated different numbers of test images (" +
            ", ".join(f"{name} {'/'.join(f'{count:,}' for count in found)}" for name, found in counts.items()) +
            "); a time to a test accuracy compares only on the same test images")


def summarize(config, runs: dict, target: float, workers: int, device, load_before, load_after, peaks: dict,
              flops_per_image: Optional[float], precisions: dict, planned: int, partial: bool = False) -> dict:
    """The result dict (see the module docstring) of the completed repeats in `runs`."""
    for items in runs.values():
        for item in items:
            item["epoch_seconds"] = item["train_seconds"] / max(1, item["epochs"])
            item["flop_s"] = flops_per_image * item["images_trained"] / item["train_seconds"] \
                if item["train_seconds"] > 0 else None
    paths = {}
    for name, items in runs.items():
        reached = [item for item in items if item["reached"]]
        peak = peaks.get(precisions[name], {}).get("flop_s")
        timed = [item["flop_s"] for item in items if item["flop_s"]]
        paths[name] = {
            "description": DESCRIPTIONS[name], "precision": precisions[name],
            "settings": items[0]["settings"] if items else None,
            "reached": f"{len(reached)}/{len(items)}",
            "seconds": timing_summary(item["seconds"] for item in reached) if reached else None,
            "epochs": timing_summary(item["epochs"] for item in reached) if reached else None,
            "epoch_seconds": timing_summary(item["epoch_seconds"] for item in items) if items else None,
            "flop_s": timing_summary(timed) if timed else None,
            "peak_fraction": timing_summary(value / peak for value in timed) if timed and peak else None,
            "runs": items,
        }
    withheld = incomparable(runs)

    def ratios(other: str, key: str, both_reached: bool) -> list[float]:
        if withheld:
            return []
        return [o[key] / u[key] for o, u in zip(runs[other], runs["ours"])
                if not both_reached or (o["reached"] and u["reached"])]

    result = {
        "benchmark": "time-to-accuracy", "preset": config.preset, "model": config.model, "dataset": config.dataset,
        "target_acc": target, "max_epochs": config.epochs, "batch_size": config.batch_size,
        "repeats": len(runs["ours"]), "repeats_planned": planned, "partial": partial,
        "order": list(PATHS), "reference_workers": workers, "device": device_name(device),
        "recipe": {key: getattr(config, key) for key in RECIPE if hasattr(config, key)},
        **paths, "incomparable": withheld,
        "flops_per_image_train": flops_per_image, "peak_flop_s": peaks,
        "cpu": cpu_features(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in load_after],
        "quiet": quiet(load_before), "quiet_rule": f"1-minute load average before the start below {QUIET_LOAD}",
    }
    # other seconds / our seconds, per repeat: above 1, ours is faster
    for other, suffix in (("reference", ""), ("informed", "_informed")):
        found = ratios(other, "seconds", both_reached=True)
        per_epoch = ratios(other, "epoch_seconds", both_reached=False)
        result[f"ratio{suffix}"] = timing_summary(found) if found else None
        result[f"ratio{suffix}_runs"] = found
        result[f"epoch_ratio{suffix}"] = timing_summary(per_epoch) if per_epoch else None
    return result


def stamped_page_record(result: dict, notes: Optional[list[str]] = None) -> dict:
    """`page_record` with the provenance the run stamped on its result: its commit (with "+dirty" when the
    checkout had changes), start time, command line and software."""
    stamp = result["provenance"]
    commit = short_commit(stamp)
    date = stamp["started_utc"][:16].replace("T", " ") + " UTC"
    versions = stamp["software"]
    software = f"torch {versions['torch']}, torchvision {versions['torchvision']}, Python {versions['python']}"
    return page_record(result, stamp["command"] or "cifar-lab bench time-to-accuracy", commit, date, software,
                       setup_notes(result) + list(notes or []))


def setup_notes(result: dict) -> list[str]:
    """What the record's table does not say, in the result's own values: the data and recipe every path
    trained, and how the paths differ."""
    recipe, ours = result["recipe"], result["ours"]["runs"]
    trained = sorted({run["images_trained"] // max(1, run["epochs"]) for run in ours})
    tested = sorted({run["test_images"] for name in PATHS for run in result[name]["runs"]})
    return [
        f"Data: {result['dataset']}, {' or '.join(f'{n:,}' for n in trained)} training images per epoch, "
        f"{' or '.join(f'{n:,}' for n in tested)} test images evaluated after every epoch. Recipe of every "
        f"path ({result['preset']}): {recipe['optimizer']} at lr {recipe['lr']:g}, weight decay "
        f"{recipe['weight_decay']:g}, {recipe['schedule']} schedule planned over {result['max_epochs']} epochs "
        f"and stepped per batch, batch {recipe['batch_size']}, label smoothing {recipe['label_smoothing']:g}, "
        f"augmentation {recipe['augment']}; the target is checked at the end of each epoch.",
        f"The paths differ in how they train, not what: the plain loop trains in fp32 from torchvision's "
        f"DataLoader ({result['reference_workers']} worker processes); the informed plain loop is the same loop "
        f"with the switches PyTorch's performance tuning guide advises where the CPU has them "
        f"({result['informed']['precision']}, channels_last); ours is engine.train "
        f"({result['ours']['precision']}, channels_last, the device-resident loader with batched "
        f"augmentation). Each clock includes its path's own data loading and evaluation.",
    ]


def page_record(result: dict, command: str, commit: str, date: str, software: str, notes: list[str]) -> dict:
    """The result as a record for the book's reproduction page (the format `book/_ext/results_records.py`
    renders: title, provenance, notes, measurements with tables)."""
    cpu = result["cpu"]
    flags = ", ".join(name for name, present in (cpu["flags"] or {}).items() if present) or "not read"

    def span(summary: Optional[dict], digits: int = 1, unit: str = "") -> str:
        if summary is None:
            return "-"
        return (f"{summary['median']:.{digits}f}{unit} ({summary['min']:.{digits}f}-"
                f"{summary['max']:.{digits}f}{unit})")

    def flops(path: dict) -> str:
        if path["flop_s"] is None:
            return "-"
        return f"{path['flop_s']['median'] / 1e9:.1f} GFLOP/s ({path['peak_fraction']['median']:.0%} of peak)"

    rows = [[f"{path['description']} ({path['precision']})", "not reached" if path["seconds"] is None else
             span(path["seconds"]), span(path["epochs"], 0), span(path["epoch_seconds"]), flops(path),
             path["reached"], ", ".join(str(run["curve"]) for run in path["runs"])]
            for path in (result[name] for name in PATHS)]

    def ratio_text(key: str) -> str:
        ratio = result[key]
        return span(ratio, 2, "x") if ratio else "none"

    load = (f"load average (1 min) {result['load_average_before'][0]:.2f} before the start: "
            f"{'quiet' if result['quiet'] else 'not quiet'} ({result['quiet_rule']})")
    partial = f"; interrupted after {result['repeats']} of {result['repeats_planned']} repeats" \
        if result["partial"] else ""
    return {
        "title": f"Time to {result['target_acc']:.0%} test accuracy on Fashion-MNIST: the engine against plain "
                 f"PyTorch loops ({result['preset']}, CPU)",
        "provenance": {"commit": commit, "date": date,
                       "device": f"CPU only: {cpu['cores']}-core {cpu['cpu']}, {cpu['torch_threads']} torch threads",
                       "machine": f"torch CPU capability {cpu['cpu_capability']}, native bf16 {cpu['cpu_bf16']}; "
                                  f"flags: {flags}",
                       "software": software, "conditions": load + partial},
        "notes": notes,
        "measurements": [{
            "title": f"bench time-to-accuracy: {result['model']} to test accuracy {result['target_acc']:g}, "
                     f"{result['repeats']} repeats, paths in turn (reference first)",
            "description": f"wall-clock seconds to the first epoch whose test accuracy reaches the target, median "
                           f"(min-max), each clock including its own data loading and per-epoch evaluation; "
                           f"epochs needed; seconds per training epoch; training FLOP/s against the measured "
                           f"matrix-product peak at the path's precision. Ratios to ours: plain loop "
                           f"{ratio_text('ratio')}, informed plain loop {ratio_text('ratio_informed')}; per "
                           f"epoch {ratio_text('epoch_ratio')} and {ratio_text('epoch_ratio_informed')}"
                           + (f". Not compared: {result['incomparable']}" if result["incomparable"] else ""),
            "command": command,
            "table": {"columns": ["path", "seconds", "epochs", "s/epoch", "training FLOP/s", "reached",
                                  "test accuracy by epoch, per repeat"],
                      "rows": rows},
        }],
    }
