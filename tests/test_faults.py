"""Faults a run must survive with one line on stderr, the right exit code and nothing broken on disk:
divergence, non-finite settings, full and read-only disks, paths under files, and resuming the wrong run.

Disk faults run the command inside a private mount namespace (`unshare`) on a small tmpfs, so they need no
privileges beyond what `unshare --map-root-user` grants; they are skipped only where that is refused.
"""
import json
import math
import shutil
import subprocess
import sys

import pytest
import torch

from cifar_lab import presets
from cifar_lab.cli import main
from cifar_lab.engine import checkpoint
from cifar_lab.engine.trainer import train
from cifar_lab.errors import TrainingDiverged

SMALL = ["dataset=synthetic", "train_subset=640", "test_subset=200", "progress=false"]


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.err


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fault-data"))


def test_a_huge_learning_rate_stops_the_run_as_diverged(tmp_path, data_root, capsys):
    out = tmp_path / "run"
    code, err = cli(["train", "--preset", "cifar10-simplecnn", "--set", *SMALL, f"data_root={data_root}",
                     "lr=1e6", "epochs=5", "--out", str(out)], capsys)
    assert code != 0 and "diverged in epoch 1" in one_line(err) and "learning rate 1e+06" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "diverged" and summary["diverged_epoch"] == 1
    assert not (out / "last.pt").exists() and not (out / "metrics.csv").exists()


def test_divergence_after_a_good_epoch_keeps_that_epochs_checkpoint(tmp_path, data_root):
    config = presets.resolve("cifar10-simplecnn", dict(kv.split("=") for kv in SMALL) | {
        "data_root": data_root, "epochs": 4})

    def poison(row):  # after epoch 1 is saved, the weights go bad: epoch 2 trains on NaN
        if row["epoch"] == 1:
            with torch.no_grad():
                for parameter in result_model[0].parameters():
                    parameter.fill_(math.nan)

    import cifar_lab.engine.trainer as trainer

    result_model = []
    original_setup = trainer.setup

    def setup(*args, **kwargs):
        run = original_setup(*args, **kwargs)
        result_model.append(run.model)
        return run

    trainer.setup = setup
    try:
        with pytest.raises(TrainingDiverged, match="epoch 2.*still holds epoch 1"):
            train(config, tmp_path / "run", on_epoch_end=poison)
    finally:
        trainer.setup = original_setup
    state = checkpoint.load(tmp_path / "run" / "last.pt")
    assert state["epoch"] == 0 and all(torch.isfinite(v).all() for v in state["model"].values())
    assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") == 2  # header + epoch 1
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["stop_reason"] == "diverged"


@pytest.mark.parametrize("setting", ["lr=nan", "lr=inf", "weight_decay=-inf", "ast.target=nan"])
def test_non_finite_settings_are_one_line_errors(setting, tmp_path, capsys):
    code, err = cli(["train", "--preset", "cifar10-simplecnn-ast", "--set", setting, "--out", str(tmp_path / "r")],
                    capsys)
    assert code == 2 and "not a finite number" in one_line(err)
    assert not (tmp_path / "r").exists()


def test_out_under_an_existing_file_is_one_line(tmp_path, data_root, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = cli(["train", "--preset", "cifar10-simplecnn", "--set", *SMALL, f"data_root={data_root}",
                     "epochs=1", "--out", str(blocker / "sub")], capsys)
    assert code == 2 and str(blocker / "sub") in one_line(err)
    assert blocker.read_text() == "x"


def test_data_root_on_a_file_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = cli(["data", "download", "cifar10", "--root", str(blocker)], capsys)
    assert code == 2 and str(blocker) in one_line(err)
    code, err = cli(["train", "--preset", "cifar10-simplecnn", "--set", "dataset=synthetic",
                     f"data_root={blocker / 'sub'}", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and one_line(err) and not (tmp_path / "r").exists()


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path, data_root, capsys):
    mine, other = tmp_path / "mine", tmp_path / "other"
    common = ["--set", *SMALL, f"data_root={data_root}", "epochs=1"]
    assert main(["train", "--preset", "cifar10-simplecnn", *common, "--out", str(mine)]) == 0
    assert main(["train", "--preset", "cifar10-resnet18", *common, "train_subset=256", "--out", str(other)]) == 0
    shutil.copy(other / "last.pt", mine / "last.pt")
    before = {name: (mine / name).read_bytes() for name in ("config.json", "metrics.csv")}
    capsys.readouterr()
    code, err = cli(["train", "--out", str(mine), "--resume"], capsys)
    line = one_line(err)
    assert code == 2 and "cifar10-resnet18" in line and "cifar10-simplecnn" in line
    assert {name: (mine / name).read_bytes() for name in before} == before


def test_stale_temporary_files_are_removed_when_a_run_resumes(tmp_path, data_root):
    out = tmp_path / "run"
    assert main(["train", "--preset", "cifar10-simplecnn", "--set", *SMALL, f"data_root={data_root}", "epochs=2",
                 "--out", str(out)]) == 0
    stale = out / ".last.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    state = checkpoint.load(out / "last.pt")
    state["epoch"] = 0  # pretend the run was killed during epoch 2's checkpoint write
    state["history"] = state["history"][:1]
    checkpoint.save(out / "last.pt", state)
    assert main(["train", "--out", str(out), "--resume"]) == 0
    assert not stale.exists()


def run_in_tmpfs(tmp_path, size: str, train_args: list[str], read_only: bool = False) -> dict:
    """Mount a tmpfs of `size` at tmp_path/disk in a private mount namespace, train into it, and report the
    exit code, stderr, the files left and the epoch of last.pt as loaded afterwards (inside the namespace)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    disk, report = tmp_path / "disk", tmp_path / "report.json"
    disk.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    probe = (
        "import json, subprocess, sys, pathlib\n"
        f"out = pathlib.Path({str(disk / 'run')!r})\n"
        f"done = subprocess.run([sys.executable, '-m', 'cifar_lab', 'train', *{train_args!r}, '--out', str(out)], "
        "capture_output=True, text=True)\n"
        "epoch = None\n"
        "if (out / 'last.pt').exists():\n"
        "    from cifar_lab.engine import checkpoint\n"
        "    epoch = checkpoint.load(out / 'last.pt')['epoch']\n"
        "files = sorted(p.name for p in out.iterdir()) if out.is_dir() else []\n"
        "metrics = (out / 'metrics.csv').read_text() if (out / 'metrics.csv').exists() else ''\n"
        f"pathlib.Path({str(report)!r}).write_text(json.dumps(dict(code=done.returncode, err=done.stderr, "
        "epoch=epoch, files=files, metrics=metrics)))\n"
    )
    script = f"mount -t tmpfs -o {options} tmpfs {disk} && exec {sys.executable} -c \"$0\""
    done = subprocess.run(["unshare", "--mount", "--map-root-user", "sh", "-c", script, probe],
                          capture_output=True, text=True)
    if not report.exists():
        pytest.skip(f"cannot mount a tmpfs in a private namespace here: {done.stderr.strip()[-200:]}")
    return json.loads(report.read_text())


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path, data_root):
    result = run_in_tmpfs(tmp_path, "2m", ["--preset", "cifar10-simplecnn", "--set", *SMALL,
                                          f"data_root={data_root}", "epochs=2"])
    assert result["code"] == 2 and "No space left on device" in one_line(result["err"])
    assert not [name for name in result["files"] if name.endswith(".tmp")]
    assert "metrics.csv" not in result["files"]  # no epoch listed whose checkpoint was not written


def test_when_the_disk_fills_up_later_the_previous_checkpoint_loads(tmp_path, data_root):
    # SimpleCNN's full checkpoint is about 7.5 MB, and best.pt is a hard link to last.pt: epoch 1's checkpoint
    # fits in 13 MB, but epoch 2's last.pt cannot be written beside it.
    result = run_in_tmpfs(tmp_path, "13m", ["--preset", "cifar10-simplecnn", "--set", *SMALL,
                                           f"data_root={data_root}", "epochs=3"])
    assert result["code"] == 2 and "No space left on device" in one_line(result["err"])
    assert result["epoch"] == 0  # last.pt is epoch 1's, complete
    assert result["metrics"].count("\n") == 2  # header + epoch 1 only
    assert not [name for name in result["files"] if name.endswith(".tmp")]


def test_a_read_only_out_folder_is_one_line(tmp_path, data_root):
    result = run_in_tmpfs(tmp_path, "1m", ["--preset", "cifar10-simplecnn", "--set", *SMALL,
                                          f"data_root={data_root}", "epochs=1"], read_only=True)
    assert result["code"] == 2 and "Read-only file system" in one_line(result["err"])
    assert result["files"] == []
