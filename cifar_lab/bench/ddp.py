"""`cifar-lab bench ddp --nproc-per-node N`: training images/s with one process and with N, and the bytes
each rank hands to all-reduce per optimizer step with DDP and with post-local SGD.

Every measurement is a real `cifar-lab train` run: one plain process, and N processes launched through
torchrun (`--nproc-per-node N`), with the same preset, per-process batch and data, so it includes DDP's bucketed
all-reduce as training uses it. The two
paths alternate, `repeats` times each; the result holds the median and the spread (min, max) of each.
Images/s is counted over the training loop of the last epoch (all ranks' samples over its wall-clock), so
process start, rendezvous and evaluation stay out. Scaling efficiency is img_s_N / (N x img_s_1): 1.0 when N
processes train N times as fast (weak scaling: the per-rank batch stays the same).

The byte counts come from the tensors actually handed to all-reduce: DDP's gradient buckets (counted in its
communication hook) and, for local SGD, the warm-up steps' buckets plus the flat parameter tensor of every
periodic average (PyTorch's `PeriodicModelAverager`). Lin et al. 2020 ("Don't use large mini-batches, use
local SGD") motivate the second strategy.
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

from ..errors import UsageError
from ..measure import spread


def launch_train(out: Path, nproc: int, preset: str, sets: list[str], timeout_s: float = 600) -> dict:
    """Run `cifar-lab train --nproc-per-node nproc` into `out`; its metrics rows and summary."""
    launch = ["--nproc-per-node", str(nproc)] if nproc > 1 else []  # one process: no launcher to start
    command = [sys.executable, "-m", "cifar_lab", "train", *launch, "--preset", preset, "--set", *sets,
               "--out", str(out)]
    # torchrun gives each of several processes OMP_NUM_THREADS=1 unless it is set; the one-process baseline
    # gets the same, so that the efficiency compares equal resources per process (weak scaling).
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise UsageError(f"the {nproc}-process training run failed: {last}")
    with open(out / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    return {"rows": rows, "summary": json.loads((out / "summary.json").read_text())}


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
    for repeat in range(repeats):
        for world in (1, nproc):  # alternate, so drifting machine load falls on both paths alike
            results[world].append(launch_train(root / f"ddp_{world}_{repeat}", world, preset, common))
    local = launch_train(root / f"local_sgd_{nproc}", nproc, preset,
                         common + ["dist.strategy=local_sgd", f"dist.local_sgd_period={local_sgd_period}"])
    one_runs, many_runs = [_img_s(r) for r in results[1]], [_img_s(r) for r in results[nproc]]
    one, many = {**spread(one_runs), "runs": one_runs}, {**spread(many_runs), "runs": many_runs}
    ddp_last = results[nproc][-1]["rows"][-1]
    local_last = local["rows"][-1]
    return {
        "nproc": nproc, "preset": preset, "batch_size_per_rank": batch_size, "train_size": train_size,
        "epochs": epochs, "repeats": repeats, "device": device,
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
