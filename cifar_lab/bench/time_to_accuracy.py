"""`cifar-lab bench time-to-accuracy`: wall-clock seconds until a test accuracy is reached, ours against a
plain PyTorch loop, on the real Fashion-MNIST images.

Ours: `engine.train` with the preset as it is (precision `auto`, channels_last, the device-resident loader
with batched augmentation) and `target_acc` set, so it stops after the first epoch whose test accuracy reaches
the target. Reference: the loop of most tutorials, written out here - the same network, optimizer, learning
rate schedule (planned over the preset's epochs, stepped per batch), batch size and augmentation, but fp32 in
the contiguous memory format, fed by torchvision's `DataLoader` over the same image tensors with torchvision's
transforms (random crop with padding 4, horizontal flip, normalisation with the same statistics), evaluated
after every epoch on the same test split.

Both clocks start before the data is read and stop when the target epoch's evaluation is done, so each
includes its own loading, augmentation and evaluation. The two alternate, reference first, `repeats` times;
the result holds each repeat's seconds and epochs, the medians, and the ratio reference / ours (above 1: ours
reaches the target sooner) with its median, min and max over the repeats, as `measure.spread` gives them.
A path that does not reach the target within the preset's epochs is reported as such, never as a time.

The CPU's vector features and the load average before and after are part of the result: a ratio measured on
a busy machine says less, and the record must say so.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from .. import models, presets
from ..config import validate
from ..data import fashion_mnist
from ..data.reference import make_loader
from ..engine.runtime import resolve_device, seed_everything
from ..errors import UsageError
from ..measure import spread, sync

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def run(preset: str = "fmnist-simplecnn", target: float = 0.90, repeats: int = 3, workers: int = 2,
        device: str = "cpu", sets: Optional[list[tuple[str, str]]] = None, log=print) -> dict:
    """Train `preset` to test accuracy `target` with both loops, alternating, `repeats` times each."""
    if not 0.0 < target <= 1.0:
        raise UsageError(f"--target must be a test accuracy in (0, 1], got {target}")
    if repeats < 1 or workers < 0:
        raise UsageError("--repeats must be at least 1 and --workers 0 or more")
    overrides = list(sets or []) + [("target_acc", target), ("save_checkpoints", False), ("progress", False),
                                    ("device", device)]
    config = validate(presets.resolve(preset, overrides))
    if config.dataset != fashion_mnist.NAME or config.image_channels != 3 or config.input_size == fashion_mnist.SIDE:
        raise UsageError(f"bench time-to-accuracy compares loops on Fashion-MNIST as the CIFAR models see it "
                         f"(3x32x32); preset {preset} is dataset={config.dataset}, {config.image_channels}x"
                         f"{config.input_size}px")
    if config.augment not in ("crop_flip", "none") or config.ast.enabled or config.distill.enabled:
        raise UsageError(f"the reference loop implements the dense recipe with augment crop_flip or none; preset "
                         f"{preset} has augment={config.augment}, AST {config.ast.enabled}, distillation "
                         f"{config.distill.enabled}")
    fashion_mnist.locate(config)  # a missing dataset stops here, before anything is timed
    load_before = os.getloadavg()
    runs = {"ours": [], "reference": []}
    for index in range(repeats):
        log(f"repeat {index + 1}/{repeats}: reference (plain loop, fp32, torchvision DataLoader)")
        runs["reference"].append(reference_run(config, workers))
        log(_line(runs["reference"][-1]))
        log(f"repeat {index + 1}/{repeats}: ours (engine.train)")
        runs["ours"].append(engine_run(config))
        log(_line(runs["ours"][-1]))
    load_after = os.getloadavg()
    return summarize(config, runs, target, workers, load_before, load_after)


def engine_run(config) -> dict:
    from ..engine import train

    device = resolve_device(config.device)
    sync(device)
    start = time.perf_counter()
    result = train(config)
    sync(device)
    seconds = time.perf_counter() - start
    s = result.summary
    return {"seconds": seconds, "reached": s["stop_reason"] == "target_acc", "epochs": s["epochs"],
            "final_acc": s["final_acc"], "train_seconds": s["train_seconds"], "precision": s["precision"],
            "curve": [round(row["test_acc"], 4) for row in result.history]}


def reference_run(config, workers: int) -> dict:
    """The plain loop: what a tutorial writes, with the preset's recipe."""
    device = resolve_device(config.device)
    sync(device)
    start = time.perf_counter()
    seed_everything(config.seed)
    train_split, test_split = fashion_mnist.load_splits(config)
    mean, std = fashion_mnist.statistics(config.normalization, train_split.images)
    train_loader = make_loader(train_split.images, train_split.labels, config.batch_size, mean=mean, std=std,
                               train=config.augment == "crop_flip", num_workers=workers, seed=config.seed)
    if config.augment == "none":  # shuffled, not augmented
        train_loader = torch.utils.data.DataLoader(train_loader.dataset, batch_size=config.batch_size,
                                                   shuffle=True, num_workers=workers)
    test_loader = make_loader(test_split.images, test_split.labels, config.eval_batch_size, mean=mean, std=std,
                              train=False, num_workers=workers)
    model = models.build(config.model, config.num_classes).to(device)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                    nesterov=config.nesterov and config.momentum > 0,
                                    weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total_steps = config.epochs * len(train_loader)
    if config.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    elif config.schedule == "constant":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    else:
        raise UsageError(f"the reference loop implements the cosine and constant schedules, not {config.schedule}")
    curve, train_seconds, reached = [], 0.0, False
    for epoch in range(config.epochs):
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(epoch)
        model.train()
        epoch_start = time.perf_counter()
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            loss = F.cross_entropy(model(images), labels, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        sync(device)
        train_seconds += time.perf_counter() - epoch_start
        accuracy = test_accuracy(model, test_loader, device)
        curve.append(round(accuracy, 4))
        if epoch + 1 >= config.min_epochs and accuracy >= config.target_acc:
            reached = True
            break
    sync(device)
    return {"seconds": time.perf_counter() - start, "reached": reached, "epochs": len(curve),
            "final_acc": curve[-1], "train_seconds": train_seconds, "precision": "fp32", "curve": curve}


@torch.no_grad()
def test_accuracy(model: torch.nn.Module, loader, device) -> float:
    model.eval()
    correct = total = 0
    for images, labels in loader:
        predictions = model(images.to(device)).argmax(1).cpu()
        correct += int((predictions == labels).sum())
        total += len(labels)
    return correct / max(1, total)


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
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_bf16": bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()),
            "flags": {name: name in flags for name in CPU_FLAGS} if flags else None}


def quiet(load_before: tuple, load_after: tuple, threads: int) -> bool:
    """Quiet: nothing else ran. The 1-minute load average before the first run is under 0.5, and after the
    last one it is no more than this benchmark's own threads (plus 0.5)."""
    return load_before[0] < 0.5 and load_after[0] <= threads + 0.5


def summarize(config, runs: dict, target: float, workers: int, load_before, load_after) -> dict:
    both = [(r, o) for r, o in zip(runs["reference"], runs["ours"]) if r["reached"] and o["reached"]]
    ratios = [r["seconds"] / o["seconds"] for r, o in both]
    paths = {}
    for name, items in runs.items():
        reached = [item for item in items if item["reached"]]
        paths[name] = {
            "reached": f"{len(reached)}/{len(items)}",
            "seconds": spread(item["seconds"] for item in reached) if reached else None,
            "epochs": spread(item["epochs"] for item in reached) if reached else None,
            "runs": items,
        }
    threads = torch.get_num_threads()
    return {
        "preset": config.preset, "model": config.model, "dataset": config.dataset, "target_acc": target,
        "max_epochs": config.epochs, "batch_size": config.batch_size, "repeats": len(runs["ours"]),
        "reference_workers": workers, "device": str(resolve_device(config.device)),
        "ours": paths["ours"], "reference": paths["reference"],
        # reference seconds / our seconds, per repeat where both reached the target: above 1, ours is faster
        "ratio": spread(ratios) if ratios else None, "ratio_runs": ratios,
        "cpu": cpu_features(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in load_after],
        "quiet": quiet(load_before, load_after, threads),
    }


def _line(item: dict) -> str:
    state = "reached" if item["reached"] else "did not reach"
    return (f"  {state} the target after {item['epochs']} epochs in {item['seconds']:.1f} s "
            f"(training {item['train_seconds']:.1f} s, {item['precision']}); test accuracy by epoch {item['curve']}")


def page_record(result: dict, command: str, commit: str, date: str, software: str, notes: list[str]) -> dict:
    """The result as a record for the book's reproduction page (format: `cifar_lab.book.records`)."""
    cpu = result["cpu"]
    flags = ", ".join(name for name, present in (cpu["flags"] or {}).items() if present) or "not read"

    def seconds(path: dict) -> str:
        s = path["seconds"]
        return "not reached" if s is None else f"{s['median']:.1f} ({s['min']:.1f}-{s['max']:.1f})"

    def epochs(path: dict) -> str:
        e = path["epochs"]
        return "-" if e is None else f"{e['median']:g} ({e['min']}-{e['max']})"

    rows = [[words, seconds(result[name]), epochs(result[name]), result[name]["reached"],
             ", ".join(str(run["curve"]) for run in result[name]["runs"])]
            for name, words in (("ours", "ours: engine.train (" + result["ours"]["runs"][0]["precision"]
                                 + ", channels_last, device-resident loader)"),
                                ("reference", "plain loop (fp32, torchvision DataLoader, "
                                 f"{result['reference_workers']} workers)"))]
    ratio = result["ratio"]
    ratio_text = (f"{ratio['median']:.2f}x (runs {ratio['min']:.2f}-{ratio['max']:.2f}x)" if ratio
                  else "none: no repeat where both reached the target")
    load = (f"load average (1 min) {result['load_average_before'][0]:.2f} before, "
            f"{result['load_average_after'][0]:.2f} after: {'quiet' if result['quiet'] else 'not quiet'}")
    return {
        "title": f"Time to {result['target_acc']:.0%} test accuracy on Fashion-MNIST: the engine against a plain "
                 f"PyTorch loop ({result['preset']}, CPU)",
        "provenance": {"commit": commit, "date": date,
                       "device": f"CPU only: {cpu['cores']}-core {cpu['cpu']}, {cpu['torch_threads']} torch threads",
                       "machine": f"torch CPU capability {cpu['cpu_capability']}, native bf16 {cpu['cpu_bf16']}; "
                                  f"flags: {flags}",
                       "software": software, "conditions": load},
        "notes": notes,
        "measurements": [{
            "title": f"bench time-to-accuracy: {result['model']} to test accuracy {result['target_acc']:g}, "
                     f"{result['repeats']} repeats alternating (reference first)",
            "description": f"wall-clock seconds to the first epoch whose test accuracy reaches the target, "
                           f"median (min-max), each clock including its own data loading and per-epoch "
                           f"evaluation; epochs needed; ratio reference / ours {ratio_text}",
            "command": command,
            "table": {"columns": ["path", "seconds", "epochs", "reached", "test accuracy by epoch, per repeat"],
                      "rows": rows},
        }],
    }
