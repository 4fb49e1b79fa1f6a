"""`cifar-lab bench ddp --nproc-per-node N`: training images/s with one process and with N, and the bytes
each rank hands to all-reduce per optimizer step with DDP and with post-local SGD.

Every measurement is a real `cifar-lab train` run launched through torchrun: one process
(`--nproc-per-node 1`) and N processes (`--nproc-per-node N`), with the same preset, per-process batch and data,
so it includes DDP's bucketed all-reduce as training uses it. The two paths alternate, `repeats` times each;
the result holds the median, min and max of each (`measure.timing_summary`).
Images/s is counted over the training loop of the last epoch (all ranks' samples over its wall-clock), so
process start, rendezvous and evaluation stay out. Scaling efficiency is img_s_N / (N x img_s_1): 1.0 when N
processes train N times as fast (weak scaling: the per-rank batch stays the same).

The byte counts come from the tensors actually handed to all-reduce: DDP's gradient buckets (counted in its
communication hook) and, for local SGD, the warm-up steps' buckets plus the flat parameter tensor of every
periodic average (PyTorch's `PeriodicModelAverager`). Lin et al. 2020 ("Don't use large mini-batches, use
local SGD") motivate the second strategy.

`same_global_batch` asks the other question of several processes, on real data: does training on N processes
with a batch of B/N each reach the accuracy of one process with batch B? It trains both over seeds, alternating,
and returns every seed's summary and learning curve as plain values.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

from ..engine.runtime import distinct_seeds
from ..errors import UsageError
from ..measure import timing_summary
from . import progress


def launch_train(out: Path, nproc: int, preset: str, sets: list[str], timeout_s: float = 600) -> dict:
    """Run `cifar-lab train --nproc-per-node nproc` into `out`; its metrics rows and summary.

    One process goes through torchrun too: it then joins a process group of one, and its loaders shard the
    epoch's permutation of (seed, epoch) over a world of one, which is the order whose strides the N ranks
    take; so one process with batch B sees the same samples in the same global batches as N with B/N each.
    Started without torchrun, it would shuffle with its own generator instead."""
    command = [sys.executable, "-m", "cifar_lab", "train", "--nproc-per-node", str(nproc), "--preset", preset,
               "--set", *sets, "--out", str(out)]
    # torchrun gives each of several processes OMP_NUM_THREADS=1 unless it is set, but not a single one; the
    # one-process baseline gets the same, so that the efficiency compares equal resources per process.
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise UsageError(f"the {nproc}-process training run failed: {last}")
    with open(out / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    return {"rows": rows, "summary": json.loads((out / "summary.json").read_text())}


def history(rows: list[dict]) -> list[dict]:
    """metrics.csv rows (text) as numbers: the epoch an int, every other column a float (None where empty)."""
    def number(key, value):
        if value in (None, ""):
            return None
        return int(value) if key == "epoch" else float(value)

    return [{key: number(key, value) for key, value in row.items()} for row in rows]


def same_global_batch(seeds, nproc: int = 2, preset: str = "fmnist-simplecnn", global_batch: int = 128,
                      overrides: Optional[dict] = None, out_root=None, timeout_s: float = 1800) -> dict:
    """One process with batch `global_batch` against `nproc` DDP processes with `global_batch / nproc` each,
    once per seed of `seeds`, alternating; every run a real `cifar-lab train` (`launch_train`, both process
    counts through torchrun).

    Both see the same samples in the same global batches: the loaders shard one permutation per (seed, epoch)
    over the ranks, and the learning rate stays the preset's (the global batch does not change). What differs is
    the random streams of augmentation and dropout (one per rank) and the all-reduced sum of the gradients.
    Returns plain values: `entries`, {label: {"processes", "batch_per_process", "runs"}} (labels
    `processes_label(1)` and `processes_label(nproc)`), each run {"seed", "summary" (its summary.json),
    "history" (its metrics.csv rows as numbers)} in the order of `seeds`; and what ran: `preset`, `overrides`
    (without `data_root`), `seeds`, `nproc`, `global_batch`, `threads_per_process`.
    """
    seeds = distinct_seeds(seeds)
    overrides = dict(overrides or {})
    if nproc < 2:
        raise UsageError(f"nproc must be at least 2 to compare with one process, got {nproc}")
    if global_batch < nproc or global_batch % nproc:
        raise UsageError(f"global_batch {global_batch} does not split evenly over {nproc} processes: "
                         f"give a multiple of {nproc}")
    fixed = {"seed", "batch_size"} & set(overrides)
    if fixed:
        raise UsageError(f"overrides may not set {', '.join(sorted(fixed))}: the comparison sets them "
                         f"(seeds=..., global_batch=...)")
    common = {"progress": False, "save_checkpoints": False, **overrides}
    root = Path(out_root) if out_root else Path(tempfile.mkdtemp(prefix="same-batch-"))
    root.mkdir(parents=True, exist_ok=True)
    worlds = (1, nproc)
    runs: dict[int, list[dict]] = {world: [] for world in worlds}
    with progress(total=len(seeds) * len(worlds), desc="same global batch", unit="run") as bar:
        for seed in seeds:
            for world in worlds:  # alternate, so drifting machine load falls on both alike
                bar.set_description(f"seed {seed}: {processes_label(world)}")
                sets = [f"{key}={value}" for key, value in common.items()]
                sets += [f"seed={seed}", f"batch_size={global_batch // world}"]
                done = launch_train(root / f"nproc{world}_seed{seed}", world, preset, sets, timeout_s)
                runs[world].append({"seed": seed, "summary": done["summary"], "history": history(done["rows"])})
                bar.update(1)
    return {
        "entries": {processes_label(world): {"processes": world, "batch_per_process": global_batch // world,
                                             "runs": runs[world]} for world in worlds},
        "preset": preset, "overrides": {key: value for key, value in overrides.items() if key != "data_root"},
        "seeds": seeds, "nproc": nproc, "global_batch": global_batch,
        # launch_train's setting: one thread per process unless OMP_NUM_THREADS says otherwise
        "threads_per_process": int(os.environ.get("OMP_NUM_THREADS", "1")),
    }


def processes_label(world: int) -> str:
    """The name of a process count's entry in `same_global_batch`'s entries."""
    return f"training on {world} process{'es' if world > 1 else ''}"


def _img_s(result: dict) -> float:
    last = result["rows"][-1]
    return int(last["samples_trained"]) / float(last["epoch_seconds"])


def run(nproc: int = 2, preset: str = "cifar10-simplecnn", train_size: int = 2000, batch_size: int = 64,
        epochs: int = 2, repeats: int = 3, local_sgd_period: int = 4, data_root: str = "data",
        out_root: Optional[str] = None, device: str = "cpu") -> dict:
    """Time 1 and `nproc` processes alternately, then measure local SGD's bytes; return a plain dict."""
    if nproc < 2:
        raise UsageError(f"--nproc-per-node must be at least 2 to compare with one process, got {nproc}")
    if min(train_size, batch_size, epochs, repeats, local_sgd_period) < 1:
        raise UsageError("--train-size, --batch-size, --epochs, --repeats and --local-sgd-period must be positive")
    common = ["dataset=synthetic", f"synthetic_train_size={train_size}", "synthetic_test_size=500",
              f"epochs={epochs}", f"batch_size={batch_size}", "progress=false", "save_checkpoints=false",
              f"device={device}", f"data_root={data_root}"]
    root = Path(out_root) if out_root else Path(tempfile.mkdtemp(prefix="bench-ddp-"))
    root.mkdir(parents=True, exist_ok=True)
    results: dict[int, list[dict]] = {1: [], nproc: []}
    with progress(total=2 * repeats + 1, desc="bench ddp", unit="run") as bar:
        for repeat in range(repeats):
            for world in (1, nproc):  # alternate, so drifting machine load falls on both paths alike
                bar.set_description(f"repeat {repeat + 1}/{repeats}: {world} process{'es' if world > 1 else ''}")
                results[world].append(launch_train(root / f"ddp_{world}_{repeat}", world, preset, common))
                bar.update(1)
        bar.set_description(f"local SGD, {nproc} processes")
        local = launch_train(root / f"local_sgd_{nproc}", nproc, preset,
                             common + ["dist.strategy=local_sgd", f"dist.local_sgd_period={local_sgd_period}"])
        bar.update(1)
    one_runs, many_runs = [_img_s(r) for r in results[1]], [_img_s(r) for r in results[nproc]]
    one, many = {**timing_summary(one_runs), "runs": one_runs}, {**timing_summary(many_runs), "runs": many_runs}
    ddp_last = results[nproc][-1]["rows"][-1]
    local_last = local["rows"][-1]
    return {
        "nproc": nproc, "preset": preset, "batch_size_per_rank": batch_size, "train_size": train_size,
        "epochs": epochs, "repeats": repeats,
        # what the ranks trained on, as the engine names it (the CPU with one rank's threads, or the GPU)
        "device": results[nproc][-1]["summary"]["device"],
        "backend": "gloo" if device == "cpu" else "nccl where CUDA is used, else gloo",
        "img_s_1": one["median"], "img_s_n": many["median"], "img_s_1_spread": one, "img_s_n_spread": many,
        "efficiency": many["median"] / (nproc * one["median"]),
        "ddp_bytes_per_step": float(ddp_last["comm_bytes_per_step"]),
        "local_sgd_bytes_per_step": float(local_last["comm_bytes_per_step"]),
        "ddp_bytes_per_epoch": int(ddp_last["comm_bytes"]),
        "local_sgd_bytes_per_epoch": int(local_last["comm_bytes"]),
        "local_sgd_period": local_sgd_period,
        "test_acc_1": float(results[1][-1]["rows"][-1]["test_acc"]),
        "test_acc_ddp": float(ddp_last["test_acc"]), "test_acc_local_sgd": float(local_last["test_acc"]),
        "history_1": results[1][-1]["rows"], "history_ddp": results[nproc][-1]["rows"],
        "history_local_sgd": local["rows"], "runs_folder": str(root),
    }
