"""Faults of multi-process training: each one ends with every rank agreeing, or with one line, never a hang.

- local SGD evaluates and saves one model, the average of the ranks' (`summary.json` agrees with `cifar-lab
  eval` of `last.pt`, and the ranks end with equal weights);
- the time budget is decided once for all ranks, even when their clocks disagree;
- a JPEG batch that cannot be decoded on one rank does not cost that rank a step;
- fp16 with local SGD is refused (GradScaler's skipped steps would put the averages out of step);
- the launcher: its ranks die with it, it refuses more processes than cores, and a rendezvous port held by
  another program ends in one line.

Two-process runs share one torchrun group (`python -m torch.distributed.run --nproc-per-node 2 THIS_FILE
OUT`): each rank runs `worker` and records what it saw in OUT.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SMALL = ["dataset=synthetic", "synthetic_train_size=256", "synthetic_test_size=128", "batch_size=32",
         "progress=false", "precision=fp32", "deterministic=true"]


def _config(root: Path, *pairs):
    from cifar_lab import presets

    sets = [tuple(item.split("=", 1)) for item in (*SMALL, *pairs)] + [("data_root", str(root / "data"))]
    return presets.resolve("cifar10-simplecnn", sets)


def _skewed_clock_run(rank: int, root: Path) -> dict:
    """A run whose time budget runs out on rank 0's clock while rank 1's clock, four times slower, is far from
    it: each rank alone would stop at another epoch."""
    import time as real_time
    import types

    from cifar_lab.engine import trainer

    origin, rate = real_time.perf_counter(), 1.0 if rank == 0 else 0.25
    trainer.time = types.SimpleNamespace(perf_counter=lambda: origin + (real_time.perf_counter() - origin) * rate)
    try:
        result = trainer.train(_config(root, "epochs=200", "time_budget_s=4", "dist.timeout_s=30"),
                               root / "budget")
    finally:
        trainer.time = real_time
    return {"epochs": len(result.history), "stop_reason": result.summary["stop_reason"]}


def _local_sgd_run(rank: int, root: Path) -> dict:
    """Local SGD whose period is longer than the run: without the average at the end of each epoch, every
    rank would end with a model of its own."""
    import torch

    from cifar_lab.engine import train

    result = train(_config(root, "epochs=2", "optimizer=sgd", "lr=0.05", "dist.strategy=local_sgd",
                           "dist.local_sgd_period=1000"), root / "local_sgd")
    torch.save(result.model.state_dict(), root / f"local_sgd_weights_rank{rank}.pt")
    return {"final_acc": result.summary["final_acc"]}


def worker(out: Path) -> None:
    import torch

    from cifar_lab import distributed

    distributed.init(torch.device("cpu"), 60)
    rank = distributed.rank()
    record = {"budget": _skewed_clock_run(rank, out), "local_sgd": _local_sgd_run(rank, out)}
    (out / f"rank_{rank}.json").write_text(json.dumps(record))
    distributed.barrier()
    distributed.shutdown()


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    out = tmp_path_factory.mktemp("faults")
    # The timeout only ends a hang (ranks that stop at different epochs wait in a collective until
    # dist.timeout_s); a group that agrees finishes long before it.
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           __file__, str(out)], capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, done.stderr[-4000:]
    return out, [json.loads((out / f"rank_{r}.json").read_text()) for r in (0, 1)]


def test_ranks_whose_clocks_disagree_stop_at_the_same_epoch_on_the_time_budget(records):
    _, ranks = records
    assert ranks[0]["budget"] == ranks[1]["budget"]
    assert ranks[0]["budget"]["stop_reason"] == "time_budget"
    assert 1 <= ranks[0]["budget"]["epochs"] < 200


def test_a_two_process_run_out_of_time_budget_exits_0_with_both_ranks_stopped(tmp_path):
    out = tmp_path / "run"
    # The timeout only ends a hang: ranks that stopped at different epochs would wait for dist.timeout_s.
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "train", "--nproc-per-node", "2", "--preset",
                           "cifar10-simplecnn", "--set", *SMALL, "epochs=500", "time_budget_s=3", "dist.timeout_s=60",
                           f"data_root={tmp_path / 'data'}", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "time_budget" and summary["epochs"] < 500
    assert summary["train_seconds"] >= 3


def test_local_sgd_evaluates_and_saves_the_averaged_model(records):
    import torch

    from cifar_lab.engine import checkpoint

    out, ranks = records
    weights = [torch.load(out / f"local_sgd_weights_rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])   # one model on both ranks
    saved = checkpoint.load(out / "local_sgd/last.pt")["model"]
    assert all(torch.equal(saved[k], weights[0][k]) for k in weights[0])          # and last.pt holds it
    summary = json.loads((out / "local_sgd/summary.json").read_text())
    assert summary["final_acc"] == ranks[0]["local_sgd"]["final_acc"] == ranks[1]["local_sgd"]["final_acc"]
    report = out / "eval.json"
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "eval", "--checkpoint", str(out / "local_sgd/last.pt"),
                           "--json", str(report)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    evaluated = json.loads(report.read_text())
    assert evaluated["samples"] == 128
    assert abs(evaluated["top1"] - summary["final_acc"]) <= 1e-6


# --- a JPEG batch that no file of decodes ---------------------------------------------------------------

def _jpeg_tree(root: Path, n: int, good: set) -> list[str]:
    import numpy as np
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        path = root / f"img_{i:03d}.JPEG"
        if i in good:
            pixels = np.random.default_rng(i).integers(0, 256, (24, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path, format="JPEG")
        else:
            path.write_bytes(b"not a JPEG file")
        files.append(str(path))
    return files


def _loader(route: str, files: list[str], rank: int, world: int):
    from cifar_lab.data.jpeg_pipeline import CpuJpegLoader, DeviceJpegLoader, FolderSource, SkipLog

    source = FolderSource(files, [i % 3 for i in range(len(files))])
    common = dict(train=True, size=16, resize=18, skip_log=SkipLog({}), num_workers=0, seed=3)
    loader = (DeviceJpegLoader(source, 4, device="cpu", **common) if route == "gpu"
              else CpuJpegLoader(source, 4, **common))
    return loader.sharded(rank, world, seed=3) if world > 1 else loader


@pytest.mark.parametrize("route", ["cpu", "gpu"])   # the device route runs on the CPU here
def test_a_rank_whose_whole_batch_is_unreadable_still_takes_every_step(tmp_path, route):
    files = _jpeg_tree(tmp_path / "train", 32, good=set(range(0, 32, 4)))
    whole_batch_bad = False
    for rank in (0, 1):
        loader = _loader(route, files, rank, 2)
        loader.set_epoch(0)
        order = list(loader.loader.sampler)
        batches = [order[i:i + 4] for i in range(0, len(order), 4)]
        whole_batch_bad |= any(all(index % 4 for index in batch) for batch in batches)
        yielded = list(loader)
        assert len(yielded) == len(loader) == 4       # as many steps as the other rank
        assert all(len(labels) > 0 for _, labels in yielded)
    assert whole_batch_bad  # the case this test is about occurred


@pytest.mark.parametrize("world", [1, 2])
def test_a_split_with_no_readable_image_is_a_usage_error(tmp_path, world):
    from cifar_lab.errors import UsageError

    files = _jpeg_tree(tmp_path / "train", 16, good=set())
    loader = _loader("cpu", files, 0, world)
    loader.set_epoch(0)
    with pytest.raises(UsageError, match="none of the training images this process read could be decoded"):
        list(loader)


# --- fp16 with local SGD ------------------------------------------------------------------------------

def test_fp16_with_local_sgd_is_refused_with_one_line(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "train", "--preset", "cifar10-simplecnn", "--set",
                           "dataset=synthetic", "precision=fp16", "dist.strategy=local_sgd", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "precision=fp16 cannot train with dist.strategy=local_sgd" in lines[0], done.stderr
    assert not out.exists()


def test_automatic_precision_never_trains_fp16_under_local_sgd(tmp_path, monkeypatch):
    from cifar_lab import distributed
    from cifar_lab.engine import trainer

    assert distributed.precision_for_strategy("fp16", "local_sgd") == "fp32"
    assert distributed.precision_for_strategy("fp16", "ddp") == "fp16"
    assert distributed.precision_for_strategy("bf16", "local_sgd") == "bf16"
    # What precision=auto resolves to on an older GPU, here on the CPU: the run trains in fp32.
    monkeypatch.setattr(trainer, "resolve_precision", lambda name, device: "fp16")
    config = _config(tmp_path, "epochs=1", "precision=auto", "dist.strategy=local_sgd", "synthetic_train_size=64",
                     "synthetic_test_size=32")
    assert trainer.train(config).summary["precision"] == "fp32"


# --- the launcher ------------------------------------------------------------------------------------

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


def _alive(pid: int) -> bool:
    """Running or sleeping; a zombie (dead, not yet reaped by its new parent) counts as gone."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_ranks_die_with_a_launcher_killed_by_sigkill(tmp_path):
    """Mutant caught: the ranks are not tied to their launcher (no parent-death signal in
    `distributed.die_with_launcher`), so after the launcher's SIGKILL they train on as orphans. The test waits
    until every rank is gone, up to a deadline that only ends a hang: it neither sleeps a fixed time nor
    assumes how quickly the signal arrives."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "cifar_lab", "train", "--nproc-per-node", "2", "--preset", "cifar10-simplecnn",
               "--set", *SMALL, "epochs=500", f"data_root={tmp_path / 'data'}", "--out", str(out)]
    launcher = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ranks: list[int] = []
    try:
        deadline = time.time() + 240
        while not (out / "config.json").exists() and time.time() < deadline and launcher.poll() is None:
            time.sleep(0.1)
        assert (out / "config.json").exists(), "the run never started"  # rank 0 is past the rendezvous
        ranks = _children(launcher.pid)
        assert len(ranks) == 2
        launcher.send_signal(signal.SIGKILL)
        launcher.wait(timeout=30)
        deadline = time.monotonic() + 120
        while [pid for pid in ranks if _alive(pid)] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in ranks if _alive(pid)] == []
    finally:
        for pid in [launcher.pid, *ranks]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_more_processes_than_cores_is_refused_with_one_line_unless_forced(tmp_path):
    from cifar_lab import distributed
    from cifar_lab.errors import UsageError

    cores = distributed.usable_devices("cpu")
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "train", "--nproc-per-node", str(cores + 1),
                           "--preset", "cifar10-simplecnn", "--set", "dataset=synthetic", "device=cpu",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"more processes than the {cores} CPU cores" in lines[0], done.stderr
    assert "--force" in lines[0]
    assert not out.exists()
    distributed.check_process_count(cores, "cpu")
    distributed.check_process_count(cores + 1, "cpu", force=True)
    gpus = distributed.usable_devices("cuda")
    with pytest.raises(UsageError, match=f"more processes than the {gpus} CUDA GPUs"):
        distributed.check_process_count(gpus + 1, "cuda", force=True)  # a rank without a GPU cannot run


def test_a_rendezvous_port_held_by_another_program_fails_with_one_line(tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(8)  # accepts connections (the kernel's backlog) and never answers
    port = holder.getsockname()[1]
    out = tmp_path / "run"
    try:
        # The timeout only ends a hang; the launcher gives up on its own after at most 60 s.
        done = subprocess.run([sys.executable, "-m", "cifar_lab", "train", "--nproc-per-node", "2",
                               "--rdzv-endpoint", f"127.0.0.1:{port}", "--preset", "cifar10-simplecnn", "--set",
                               "dataset=synthetic", "--out", str(out)], capture_output=True, text=True, timeout=180)
    finally:
        holder.close()
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"another program holds port {port}" in lines[0], done.stderr
    assert not out.exists()


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
