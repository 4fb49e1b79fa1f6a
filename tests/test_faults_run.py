"""Faults around a run folder and its data, each met with one line, exit 2 (or `diverged`), and nothing lost or
left behind: two writers on one folder, flags a resume would ignore, a finite blow-up of the loss, a run that
fails in its first epoch, and CIFAR files this user may not read.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cifar_lab import presets, provenance
from cifar_lab.cli import main
from cifar_lab.data import synthetic
from cifar_lab.engine import checkpoint, train
from cifar_lab.errors import TrainingDiverged

SMALL = ["dataset=synthetic", "train_subset=320", "test_subset=100", "progress=false", "device=cpu"]


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("faults-run-data"))


def snapshot(folder: Path) -> dict:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


# --- one writer per run folder -------------------------------------------------------------------------------

def test_a_second_writer_on_the_same_out_gets_one_line_naming_the_first_and_writes_nothing(tmp_path, data_root):
    out = tmp_path / "run"
    train_command = [sys.executable, "-m", "cifar_lab", "train", "--preset", "cifar10-simplecnn", "--out", str(out),
                     "--set", *SMALL, f"data_root={data_root}"]
    # The data is generated first, so that the second process reaches the folder while the first one trains.
    synthetic.write(data_root, num_classes=10, n_train=5000, n_test=1000, seed=0)
    first = subprocess.Popen([*train_command, "epochs=200", "seed=1"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not (out / "config.json").exists():  # written while the first run holds the folder
            assert first.poll() is None, first.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the first run did not start"
            time.sleep(0.2)
        second = subprocess.run([*train_command, "epochs=1", "seed=2"], capture_output=True, text=True,
                                timeout=180)
        line = one_line(second.stderr)
        assert second.returncode == 2 and f"PID {first.pid}" in line and str(out) in line
        assert first.poll() is None  # the first run goes on
        config = json.loads((out / "config.json").read_text())
        assert config["seed"] == 1 and config["epochs"] == 200  # the first run's, not the second's
        assert "seed=2" not in (provenance.read(out) or {}).get("command", "")
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert json.loads((out / "config.json").read_text())["seed"] == 1
    assert not (out / ".lock").exists()  # the lock file goes with its holder


def test_a_folder_freed_by_its_writer_takes_the_next_run(tmp_path, data_root):
    out = tmp_path / "run"
    config = presets.resolve("cifar10-simplecnn", dict(kv.split("=") for kv in SMALL) | {
        "data_root": data_root, "epochs": 1})
    train(config, out)
    assert main(["train", "--out", str(out), "--resume"]) == 0  # the lock of the first run was released


# --- resume: every session recorded, ignored flags refused ---------------------------------------------------

class StopAfter(Exception):
    pass


def cli_as_typed(monkeypatch, args: list[str]) -> int:
    """Run `cifar-lab ARGS` in this process, with the command line the run records."""
    monkeypatch.setattr(sys, "argv", ["cifar-lab", *args])
    return main(args)


def test_a_resumed_run_keeps_its_first_command_and_start_and_adds_a_session(tmp_path, data_root, monkeypatch):
    out = tmp_path / "run"
    assert cli_as_typed(monkeypatch, ["train", "--preset", "cifar10-simplecnn", "--set", *SMALL,
                                      f"data_root={data_root}", "epochs=2", "--out", str(out)]) == 0
    first = provenance.read(out)
    state = checkpoint.load(out / "last.pt")
    state["epoch"], state["history"] = 0, state["history"][:1]  # as if the run had been stopped after epoch 1
    checkpoint.save(out / "last.pt", state)

    assert cli_as_typed(monkeypatch, ["train", "--out", str(out), "--resume"]) == 0
    record = provenance.read(out)
    assert record["command"] == first["command"] and record["start_utc"] == first["start_utc"]
    assert record["command"].startswith("cifar-lab train --preset") and "--resume" not in record["command"]
    assert len(record["sessions"]) == 2
    assert record["sessions"][0] == first["sessions"][0] and record["sessions"][0]["end_utc"]
    assert record["sessions"][1]["command"] == f"cifar-lab train --out {out} --resume"
    assert record["sessions"][1]["end_utc"]
    assert record["end_utc"] == record["sessions"][1]["end_utc"]
    assert checkpoint.load(out / "last.pt")["environment"]["sessions"][:1] == first["sessions"]
    assert "sessions: 2 (resumed 1 time" in "\n".join(provenance.describe(record))


@pytest.mark.parametrize("flags", [["--preset", "cifar10-resnet18"], ["--show-config"], ["--set", "epochs=9"]])
@pytest.mark.parametrize("resume", ["--resume", "--resume-from"])
def test_resume_refuses_flags_it_would_ignore(resume, flags, tmp_path, data_root, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "cifar10-simplecnn", "--set", *SMALL, f"data_root={data_root}", "epochs=1",
                 "--out", str(out)]) == 0
    before = snapshot(out)
    capsys.readouterr()
    target = ["--resume"] if resume == "--resume" else ["--resume-from", str(out / "last.pt")]
    code = main(["train", "--out", str(out), *target, *flags])
    captured = capsys.readouterr()
    line = one_line(captured.err)
    assert code == 2 and resume in line and flags[0] in line and captured.out == ""
    assert snapshot(out) == before


# --- divergence ----------------------------------------------------------------------------------------------

def test_a_finite_blow_up_of_the_loss_stops_the_run_as_diverged(tmp_path, data_root, capsys):
    # AdamW at lr=1e4 drives the training loss to about 1e28 in the first epoch, without reaching inf or NaN.
    out = tmp_path / "run"
    code = main(["train", "--preset", "cifar10-simplecnn", "--set", *SMALL, f"data_root={data_root}",
                 "optimizer=adamw", "lr=1e4", "epochs=3", "--out", str(out)])
    line = one_line(capsys.readouterr().err)
    assert code == TrainingDiverged.exit_code and "diverged in epoch 1" in line and "above" in line
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "diverged" and summary["diverged_epoch"] == 1
    assert float(summary["diverged_loss"]) > summary["divergence_bound"]
    assert not (out / "best.pt").exists() and not (out / "last.pt").exists()


def test_a_sane_run_stays_far_below_the_divergence_bound(tmp_path, data_root):
    from cifar_lab.engine.trainer import divergence_bound

    config = presets.resolve("cifar10-simplecnn", dict(kv.split("=") for kv in SMALL) | {
        "data_root": data_root, "epochs": 1})
    result = train(config, tmp_path / "run")
    assert result.summary["stop_reason"] == "completed"
    assert result.history[0]["train_loss"] < divergence_bound(result.config) / 1000


# --- a run that fails in its first epoch ---------------------------------------------------------------------

def test_a_run_that_fails_in_its_first_epoch_leaves_no_files_and_the_same_command_runs_later(
        tmp_path, data_root, monkeypatch, capsys):
    import cifar_lab.engine.trainer as trainer

    out = tmp_path / "run"
    command = ["train", "--preset", "cifar10-simplecnn", "--set", *SMALL, f"data_root={data_root}", "epochs=1",
               "--out", str(out)]
    original = trainer.train_one_epoch

    def failing_epoch(run, epoch):
        assert (out / "config.json").exists() and (out / "environment.json").exists()  # written by setup
        raise MemoryError("out of memory in the first batch")

    monkeypatch.setattr(trainer, "train_one_epoch", failing_epoch)
    with pytest.raises(MemoryError):
        main(command)
    assert not out.exists()  # the folder the run created goes too, being empty

    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(MemoryError):
        main(command)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # a folder that was there stays, with its files

    monkeypatch.setattr(trainer, "train_one_epoch", original)
    assert main(command) == 0
    assert {"config.json", "environment.json", "last.pt", "metrics.csv", "summary.json"} <= set(os.listdir(out))


def test_a_full_disk_in_the_first_epoch_leaves_no_run_folder(tmp_path, data_root):
    from test_faults import run_in_tmpfs

    result = run_in_tmpfs(tmp_path, "2m", ["--preset", "cifar10-simplecnn", "--set", *SMALL,
                                          f"data_root={data_root}", "epochs=2"])
    assert result["code"] == 2 and "No space left on device" in one_line(result["err"])
    assert result["files"] == []


# --- CIFAR files this user may not read ----------------------------------------------------------------------

def test_an_unreadable_cifar_batch_is_a_permission_problem_not_corruption(tmp_path, data_root):
    written = synthetic.write(tmp_path / "generated", num_classes=10, n_train=200, n_test=50)
    root = tmp_path / "cifar"
    shutil.copytree(written / "cifar-10-batches-py", root / "cifar-10-batches-py")
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    batch.chmod(0)
    command = [sys.executable, "-m", "cifar_lab", "train", "--preset", "cifar10-simplecnn", "--set",
               "dataset=cifar10", f"data_root={root}", "download=false", "epochs=1", "progress=false", "device=cpu",
               "--out", str(tmp_path / "run")]
    if os.geteuid() == 0:
        # root reads any file; in a new user namespace without a mapping it is no one to this file system, so
        # the permission bits apply to it as to any user
        if shutil.which("unshare") is None:
            pytest.skip("unshare is not installed")
        probe = subprocess.run(["unshare", "--user", "cat", str(batch)], capture_output=True)
        if probe.returncode == 0 or b"Permission denied" not in probe.stderr:
            pytest.skip("cannot drop root's file access here (unshare --user)")
        command = ["unshare", "--user", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    line = one_line(done.stderr)
    assert done.returncode == 2 and str(batch) in line and "permission denied" in line
    assert "chmod" in line and "corrupt" not in line and "delete" not in line
    assert batch.exists() and not (tmp_path / "run").exists()
    batch.chmod(0o644)


# --- several processes ---------------------------------------------------------------------------------------

def test_a_two_process_run_records_its_world_size_and_frees_its_folder(tmp_path, data_root):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "train", "--nproc-per-node", "2", "--preset",
                           "cifar10-simplecnn", "--set", *SMALL, f"data_root={data_root}", "epochs=1",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    record = provenance.read(out)
    assert record["world_size"] == 2 and record["sessions"][0]["world_size"] == 2
    assert not (out / ".lock").exists()
