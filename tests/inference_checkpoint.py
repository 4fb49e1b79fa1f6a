"""One small trained checkpoint for the export and inference-route tests, trained once per session."""
from cifar_lab import presets
from cifar_lab.engine import train


def small_checkpoint(tmp_path_factory):
    """A SimpleCNN trained for one epoch on 512 synthetic images (256 test images)."""
    root = tmp_path_factory.getbasetemp() / "inference-checkpoint"
    best = root / "run" / "best.pt"
    if not best.is_file():
        config = presets.resolve("cifar10-simplecnn", {
            "dataset": "synthetic", "epochs": 1, "synthetic_train_size": 512, "synthetic_test_size": 256,
            "batch_size": 64, "data_root": str(root / "data"), "progress": False, "device": "cpu"})
        train(config, out_dir=root / "run")
    return best
