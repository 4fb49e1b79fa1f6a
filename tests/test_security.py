"""Files from elsewhere never run code: checkpoints load weights-only everywhere, and CIFAR batches are read with
an unpickler that admits only what the official files hold.

The payloads here are real: unpickled with plain `pickle.load` or `torch.load(weights_only=False)`, each one
creates a marker file. Every command must refuse them with one line (exit 2), and the marker never appears.
"""
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cifar_lab import presets
from cifar_lab.cli import main
from cifar_lab.data import synthetic
from cifar_lab.engine import checkpoint, train
from cifar_lab.errors import UsageError

PACKAGE = Path(__file__).resolve().parent.parent / "cifar_lab"
SMALL = {"dataset": "synthetic", "train_subset": 256, "test_subset": 100, "progress": False, "device": "cpu",
         "epochs": 1}


class CreatesFile:
    """Unpickling this calls open(path, "w"): the file appears if a loader ran the pickle's code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("security-data"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root):
    """A real checkpoint of this version (the ingredients of the crafted ones below)."""
    out = tmp_path_factory.mktemp("security-run") / "run"
    train(presets.resolve("cifar10-simplecnn", {**SMALL, "data_root": data_root}), out)
    return out / "last.pt"


@pytest.fixture
def payload(tmp_path, trained):
    """A checkpoint that looks like a run's last.pt but carries a payload next to the real weights."""
    marker = tmp_path / "pwned"
    state = checkpoint.load(trained)
    state["extra"] = CreatesFile(marker)
    path = tmp_path / "run" / "last.pt"
    path.parent.mkdir()
    torch.save(state, path)
    # The payload works: a trusting load creates the marker (then it is removed again for the real test).
    torch.load(path, weights_only=False)  # noqa: S614 - the demonstration of what the loaders must refuse
    assert marker.exists()
    marker.unlink()
    return path, marker


def test_no_loader_in_the_package_unpickles_more_than_weights():
    offenders = [f"{path}:{number}" for path in PACKAGE.rglob("*.py")
                 for number, line in enumerate(path.read_text().splitlines(), 1) if "weights_only=False" in line]
    assert offenders == []
    loads = [f"{path}:{number}" for path in PACKAGE.rglob("*.py")
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"torch\.load\(", line) and "weights_only=True" not in line]
    assert loads == []


def test_a_checkpoint_of_this_version_loads_weights_only(trained):
    state = torch.load(trained, weights_only=True)
    assert {"model", "optimizer", "rng", "config", "environment"} <= set(state)


@pytest.mark.parametrize("command", ["eval", "predict", "export", "resume-from", "distill-teacher", "latency"])
def test_every_command_refuses_a_checkpoint_that_would_run_code(command, payload, tmp_path, data_root, capsys):
    path, marker = payload
    image = tmp_path / "image.png"
    from PIL import Image
    Image.new("RGB", (32, 32), (200, 30, 30)).save(image)
    args = {
        "eval": ["eval", "--checkpoint", str(path)],
        "predict": ["predict", "--checkpoint", str(path), str(image)],
        "export": ["export", "--checkpoint", str(path), "--format", "onnx", "--out", str(tmp_path / "m.onnx")],
        "resume-from": ["train", "--resume-from", str(path), "--out", str(tmp_path / "continued")],
        "distill-teacher": ["train", "--preset", "cifar10-distill-mobilenetv3", "--set", "dataset=synthetic",
                            f"data_root={data_root}", "train_subset=256", "test_subset=100", "epochs=1",
                            "progress=false", "device=cpu", f"distill.teacher={path}",
                            "--out", str(tmp_path / "student")],
        "latency": ["latency", "--checkpoint", str(path)],
    }[command]
    capsys.readouterr()
    code = main(args)
    line = one_line(capsys.readouterr().err)
    assert code == 2 and str(path) in line and "io.open" in line, line
    assert not marker.exists()
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "continued").exists()
    assert not (tmp_path / "student").exists()


def test_the_demo_loader_refuses_a_checkpoint_that_would_run_code(payload):
    from cifar_lab import demo

    path, marker = payload
    with pytest.raises(UsageError) as refused:
        demo.Classifier(path, device="cpu", examples=0)
    assert str(path) in one_line(str(refused.value)) and not marker.exists()


def test_an_old_checkpoint_with_numpy_objects_inside_is_one_line(trained, tmp_path, capsys):
    # The previous release kept numpy's RNG state as numpy's own tuple with an array inside.
    state = checkpoint.load(trained)
    state["rng"]["numpy"] = np.random.get_state()
    old = tmp_path / "old.pt"
    torch.save(state, old)
    code = main(["eval", "--checkpoint", str(old)])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and str(old) in line and "numpy" in line and "needs more than weights" in line


@pytest.mark.parametrize("entry", ["model", "config"])
def test_eval_of_a_checkpoint_whose_model_or_config_is_not_a_dict_is_one_line(entry, trained, tmp_path, capsys):
    state = checkpoint.load(trained)
    state[entry] = ["not", "a", "dict"]
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    code = main(["eval", "--checkpoint", str(bad)])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and f"'{entry}' entry is a list" in line


# --- CIFAR batches -------------------------------------------------------------------------------------------

@pytest.fixture
def cifar_folder(tmp_path):
    """A folder in the CIFAR-10 layout (the synthetic writer's files under the official folder name)."""
    written = synthetic.write(tmp_path / "generated", num_classes=10, n_train=200, n_test=50)
    root = tmp_path / "cifar"
    shutil.copytree(written / "cifar-10-batches-py", root / "cifar-10-batches-py")
    return root


def test_a_crafted_cifar_batch_is_refused_without_running_code(cifar_folder, tmp_path, capsys):
    marker = tmp_path / "pwned"
    batch = cifar_folder / "cifar-10-batches-py" / "data_batch_1"
    with open(batch, "rb") as handle:
        original = pickle.load(handle, encoding="bytes")
    crafted = {**original, b"data": CreatesFile(marker)}
    with open(batch, "wb") as handle:
        pickle.dump(crafted, handle, protocol=2)
    with open(batch, "rb") as handle:  # what the plain pickle reader did with it
        pickle.load(handle, encoding="bytes")
    assert marker.exists()
    marker.unlink()

    code = main(["train", "--preset", "cifar10-simplecnn", "--set", "dataset=cifar10", f"data_root={cifar_folder}",
                 "download=false", "epochs=1", "progress=false", "device=cpu", "--out", str(tmp_path / "run")])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and str(batch) in line and "io.open" in line
    assert not marker.exists() and not (tmp_path / "run").exists()
    assert "delete" not in line  # the file is hostile, not damaged: no advice to throw the folder away


def test_the_batch_reader_admits_the_official_layout(cifar_folder):
    """The globals a numpy array needs (as the official files and the synthetic writer pickle them) pass."""
    from cifar_lab.data import cifar

    split = cifar.load_split(cifar.CIFAR10, cifar_folder, train=True)
    assert split.images.shape == (200, 3, 32, 32) and split.images.dtype == torch.uint8
    assert len(split.class_names) == 10 and split.labels.max() < 10
