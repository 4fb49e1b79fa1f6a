"""Training on several processes (gloo on the CPU), launched through the command line as a user would.

The equivalence runs use a configuration with no randomness that depends on how a batch is split over
processes: simple_cnn has no BatchNorm (whose batch statistics would be per rank), `dropout=0` removes its one
Dropout layer (its masks come from each process's own random stream), `augment=none` removes the per-rank
crops and flips, and fp32 avoids bf16 autocast. The optimizer is SGD: AdamW divides by the root of the second
moment, which turns the last-bit differences between one sum over 128 samples and two sums over 64 (plus an
all-reduce) into differences of the size of the learning rate for parameters whose gradient is near zero.
Those last-bit differences (about 3e-6 of a gradient on this CPU, as much as between one and two threads) are
amplified by training itself, the more the larger the learning rate and the longer the run, so the runs are
short (1000 samples, 2 epochs) at a moderate learning rate.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

DATA = os.environ.get("CIFAR_LAB_DATA", "data")
EXACT = ["dataset=synthetic", "synthetic_train_size=1000", "synthetic_test_size=500", "dropout=0", "augment=none",
         "precision=fp32", "optimizer=sgd", "lr=0.02", "progress=false", f"data_root={DATA}", "deterministic=true",
         "checkpoint_every=1"]


def train(out, nproc, *sets, preset="cifar10-simplecnn", extra=(), check=True):
    launch = ["--nproc-per-node", str(nproc)] if nproc else []  # 0: a plain process, no torchrun
    command = [sys.executable, "-m", "cifar_lab", "train", *launch, *extra]
    if preset:
        command += ["--preset", preset]
    if sets:
        command += ["--set", *sets]
    if out is not None:
        command += ["--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def rows(out) -> list[dict]:
    with open(Path(out) / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def weights(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


def relative_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).norm() / a[k].double().norm().clamp(min=1e-12)) for k in a)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two processes with 64 samples each per batch, and one process with 128: the same global batches."""
    root = tmp_path_factory.mktemp("ddp")
    train(root / "two", 2, *EXACT, "epochs=2", "batch_size=64")
    train(root / "one", 1, *EXACT, "epochs=2", "batch_size=128")
    return root


def test_two_processes_train_the_weights_of_one_process_with_the_global_batch(runs):
    assert relative_difference(weights(runs / "one/last.pt"), weights(runs / "two/last.pt")) < 1e-5
    one, two = rows(runs / "one"), rows(runs / "two")
    assert [r["test_acc"] for r in one] == [r["test_acc"] for r in two]
    assert [r["samples_trained"] for r in two] == ["1000"] * 2   # every sample once per epoch, over both ranks
    assert [r["optimizer_steps"] for r in one] == [r["optimizer_steps"] for r in two]


def test_config_records_world_size_global_batch_and_learning_rate(runs):
    recorded = json.loads((runs / "two/config.json").read_text())
    assert recorded["dist"]["world_size"] == 2 and recorded["dist"]["global_batch"] == 128
    assert recorded["dist"]["effective_lr"] == pytest.approx(0.02)
    assert recorded["batch_size"] == 64  # per rank
    summary = json.loads((runs / "two/summary.json").read_text())
    assert summary["epochs"] == 2
    assert int(rows(runs / "two")[0]["comm_bytes"]) > 0


def test_a_run_of_two_processes_resumes_in_one(runs):
    out = runs / "resumed"
    done = train(out, 0, preset=None, extra=["--resume-from", str(runs / "two/epoch_001.pt")])
    assert "results in" in done.stdout
    resumed = rows(out)
    assert [r["epoch"] for r in resumed] == ["1", "2"]
    assert resumed[0] == rows(runs / "two")[0]                   # the first epoch is the two-process one
    assert json.loads((out / "config.json").read_text())["dist"]["world_size"] == 1
    assert json.loads((out / "config.json").read_text())["dist"]["global_batch"] == 64  # batch_size is per rank
    assert set(weights(out / "last.pt")) == set(weights(runs / "two/last.pt"))


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def test_a_killed_rank_restarts_the_group_from_last_pt_and_ends_with_the_uninterrupted_weights(runs):
    out = runs / "killed"
    command = [sys.executable, "-m", "cifar_lab", "train", "--nproc-per-node", "2", "--max-restarts", "1",
               "--preset", "cifar10-simplecnn", "--set", *EXACT, "epochs=2", "batch_size=64", "--out", str(out)]
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "epoch_001.pt").exists() and time.time() < deadline and launcher.poll() is None:
        time.sleep(0.05)
    assert (out / "epoch_001.pt").exists(), "epoch 1 never finished"
    assert not (out / "epoch_002.pt").exists()
    ranks = _children(launcher.pid)
    assert len(ranks) == 2
    os.kill(ranks[-1], signal.SIGKILL)  # during epoch 2
    stdout, stderr = launcher.communicate(timeout=180)
    assert launcher.returncode == 0, stderr[-3000:]
    assert [r["epoch"] for r in rows(out)] == ["1", "2"]
    assert relative_difference(weights(runs / "two/last.pt"), weights(out / "last.pt")) == 0.0
    assert [r["test_acc"] for r in rows(out)] == [r["test_acc"] for r in rows(runs / "two")]


def test_ast_has_one_global_threshold_at_the_target(tmp_path):
    out = tmp_path / "ast"
    train(out, 2, "dataset=synthetic", "epochs=3", "progress=false", f"data_root={DATA}",
          preset="cifar10-simplecnn-ast")
    history = rows(out)
    assert len(history) == 3
    for row in history[1:]:
        assert abs(float(row["activation_rate"]) - 0.10) <= 0.02
        assert int(row["scored_samples"]) == 5000  # the rate is over both ranks' samples
    summary = json.loads((out / "summary.json").read_text())
    assert summary["theta_trace_ranks_equal"] is True
    trace = list(csv.DictReader(open(out / "ast_trace.csv")))
    assert len(trace) == 3 * len({r["batch"] for r in trace})


@pytest.mark.parametrize("options, message", [
    (["--nproc-per-node", "0"], "--nproc-per-node must be at least 1"),
    (["--nproc-per-node", "2", "--set", "dist.strategy=async"], "dist.strategy='async' is not one of"),
])
def test_bad_launch_options_are_one_line_errors_that_write_nothing(tmp_path, options, message):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "train", "--preset", "cifar10-simplecnn",
                           "--out", str(out), *options], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert not out.exists()


@pytest.mark.parametrize("options, message", [
    (dict(nproc_per_node=2, nnodes="2"), "--nnodes 2 needs --rdzv-endpoint"),
    (dict(nproc_per_node=2, max_restarts=-1), "--max-restarts must be 0 or more"),
    (dict(nproc_per_node=2, nnodes="2", rdzv_endpoint="node0"), "expected HOST:PORT"),
])
def test_launch_options_are_checked_before_anything_starts(options, message):
    from cifar_lab import distributed
    from cifar_lab.errors import UsageError

    with pytest.raises(UsageError, match=message):
        distributed.launch_arguments(["train"], **options)


def test_torchrun_arguments_for_one_machine_and_for_several():
    from cifar_lab import distributed

    one = distributed.launch_arguments(["train", "--out", "D"], nproc_per_node=2, max_restarts=1)
    assert "--standalone" in one and "--max-restarts=1" in one and "--nproc-per-node=2" in one
    assert one[one.index("-m") + 1:] == ["cifar_lab", "train", "--out", "D"]
    many = distributed.launch_arguments(["train"], nproc_per_node=8, nnodes="2", node_rank=1,
                                        rdzv_endpoint="node0:29400")
    assert {"--rdzv-backend=c10d", "--rdzv-endpoint=node0:29400", "--node-rank=1", "--nnodes=2"} <= set(many)
    assert "--rdzv-conf=join_timeout=60" in many  # nodes that never join end the launch after 60 s
    assert "--standalone" not in many
