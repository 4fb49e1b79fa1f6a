"""Resume continues the same run: stop after epoch k, resume, and the weights equal an uninterrupted run's."""
import pytest
import torch

from cifar_lab import presets
from cifar_lab.engine import checkpoint, train


class StopAfter(Exception):
    pass


def config(data_root):
    # SimpleCNN has dropout, so this also checks that the RNG state is restored, not only the weights.
    return presets.resolve("cifar10-simplecnn", {
        "dataset": "synthetic", "data_root": str(data_root), "epochs": 3, "train_subset": 800,
        "test_subset": 200, "deterministic": True, "progress": False, "device": "cpu"})


def test_resume_after_epoch_2_gives_the_uninterrupted_weights(tmp_path):
    full = train(config(tmp_path / "data"), tmp_path / "full")

    def stop_after_two(row):
        if row["epoch"] == 2:
            raise StopAfter

    with pytest.raises(StopAfter):
        train(config(tmp_path / "data"), tmp_path / "cut", on_epoch_end=stop_after_two)
    assert checkpoint.load(tmp_path / "cut" / "last.pt")["epoch"] == 1  # epochs are 0-based inside
    resumed = train(None, tmp_path / "cut", resume=True)

    assert resumed.summary["epochs"] == 3
    full_state, resumed_state = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(full_state[k], resumed_state[k]) for k in full_state)
    assert [r["test_acc"] for r in resumed.history] == [r["test_acc"] for r in full.history]
    last = checkpoint.load(tmp_path / "cut" / "last.pt")
    for key in ("model", "optimizer", "scheduler", "rng", "config", "best_acc", "epoch"):
        assert key in last


def test_resume_on_a_jpeg_tree_repeats_shuffles_and_crops(tmp_path):
    # The JPEG loaders draw in worker processes, whose random state is not in the checkpoint: each epoch's
    # shuffle and augmentation seeds are derived from (seed, epoch) instead, so resume still repeats them.
    from cifar_lab.data import synthetic_jpeg

    tree = synthetic_jpeg.write_tree(tmp_path / "tree", num_classes=3, train_per_class=6, val_per_class=2, size=48)

    def jpeg_config():
        return presets.resolve("imagenet1k-resnet18", {
            "dataset": "imagenet1k", "imagenet_root": str(tree), "image_size": 32, "epochs": 3, "batch_size": 6,
            "grad_accum": 1, "num_workers": 2, "deterministic": True, "progress": False, "device": "cpu",
            "precision": "fp32"})

    full = train(jpeg_config(), tmp_path / "full")

    def stop_after_two(row):
        if row["epoch"] == 2:
            raise StopAfter

    with pytest.raises(StopAfter):
        train(jpeg_config(), tmp_path / "cut", on_epoch_end=stop_after_two)
    resumed = train(None, tmp_path / "cut", resume=True)
    full_state, resumed_state = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(full_state[k], resumed_state[k]) for k in full_state)
