"""Periodic checkpoints: `checkpoint_every` keeps epoch_NNN.pt beside best.pt and last.pt, `keep_checkpoints`
deletes the oldest, and `--resume-from` continues from any of them to the same weights."""
import torch

from cifar_lab.cli import main
from cifar_lab.engine import checkpoint

SETTINGS = ["dataset=synthetic", "train_subset=512", "test_subset=128", "progress=false", "deterministic=true",
            "device=cpu"]


def test_keep_the_newest_periodic_checkpoints_and_resume_from_one(tmp_path):
    data = f"data_root={tmp_path / 'data'}"
    full = tmp_path / "full"
    assert main(["train", "--preset", "cifar10-simplecnn", "--set", *SETTINGS, data, "epochs=4",
                 "checkpoint_every=1", "keep_checkpoints=2", "--out", str(full)]) == 0
    assert sorted(p.name for p in full.glob("*.pt")) == ["best.pt", "epoch_003.pt", "epoch_004.pt", "last.pt"]
    assert checkpoint.load(full / "epoch_003.pt")["epoch"] == 2
    # One copy on disk per epoch: the newest periodic checkpoint is last.pt's file, the older one its own.
    assert (full / "epoch_004.pt").samefile(full / "last.pt")
    assert not (full / "epoch_003.pt").samefile(full / "last.pt")
    best = checkpoint.load(full / "best.pt")
    assert best["epoch"] + 1 == best["best_epoch"]   # the epoch it was linked at (epoch is 0-based)

    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for name in ("config.json", "epoch_003.pt"):
        (resumed / name).write_bytes((full / name).read_bytes())
    assert main(["train", "--resume-from", str(resumed / "epoch_003.pt")]) == 0
    ours, theirs = checkpoint.load(resumed / "last.pt"), checkpoint.load(full / "last.pt")
    assert ours["epoch"] == theirs["epoch"] == 3
    assert all(torch.equal(ours["model"][k], theirs["model"][k]) for k in theirs["model"])
    assert [r["test_acc"] for r in ours["history"]] == [r["test_acc"] for r in theirs["history"]]


def test_resume_from_a_missing_file_is_one_line(tmp_path, capsys):
    assert main(["train", "--resume-from", str(tmp_path / "epoch_009.pt")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "does not exist" in err
