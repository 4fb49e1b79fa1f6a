"""`cifar-lab export` and `cifar_lab.export`: validated files that carry their metadata, nothing left behind
by a failing export, one-line errors."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from cifar_lab import export
from cifar_lab.engine import checkpoint
from cifar_lab.errors import UsageError
from inference_checkpoint import small_checkpoint as trained  # tests/ is on sys.path under pytest


def cli(*args):
    return subprocess.run([sys.executable, "-m", "cifar_lab", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    return trained(tmp_path_factory)


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_export_validates_and_round_trips_the_metadata(small_checkpoint, tmp_path, fmt):
    """Mutants (among those the assertions below catch): a TorchScript .pt export taken for a checkpoint by
    `export.file_kind` (so `predict` would fail on it); the file's metadata without the checkpoint's whole input
    record (the dataset's conventions or the training images' statistics left out)."""
    out = tmp_path / f"model{export.SUFFIXES[fmt]}"
    result = export.export(small_checkpoint, fmt, out, images=32)
    assert out.is_file() and leftovers(tmp_path) == [out.name]
    assert 0 <= result["max_abs_diff"] <= result["allowed_diff"] and result["images"] == 32
    assert result["size_mb"] == pytest.approx(out.stat().st_size / 1e6)

    state = checkpoint.load(small_checkpoint)
    loaded = export.load(out)
    assert loaded.format == fmt
    # `predict` tells a TorchScript .pt from a checkpoint .pt by its contents, and every export from a checkpoint
    assert export.file_kind(out) == fmt and export.file_kind(small_checkpoint) == "checkpoint"
    assert loaded.class_names == state["class_names"]
    # the whole input record travels with the file: sizes, normalisation, conventions, training statistics
    assert loaded.metadata["input"] == json.loads(json.dumps(checkpoint.input_record(state)))
    assert loaded.input_record["colour"] == "rgb" and loaded.input_record["statistics"]["images"] == 512
    assert loaded.metadata["input"]["mean"] == list(state["input"]["mean"])
    assert loaded.metadata["input"]["std"] == list(state["input"]["std"])
    assert loaded.metadata["input"]["resolution"] == 32

    model = checkpoint.load_model(state)
    images, _ = export.test_split(state, limit=5)
    for batch in (images[:1], images):  # the batch dimension is dynamic
        with torch.inference_mode():
            expected = model(batch)
        assert torch.allclose(loaded(batch), expected, atol=1e-3 * max(1, float(expected.abs().max())))

    # The file alone, given the raw uint8 test images, computes what the eager model computes on the batches
    # of the run's own test loader (an independent preparation: the loader's normalisation on the device).
    raw = raw_test_images(state, 16)
    loader_batch, labels = export.test_split(state, limit=16)
    assert torch.equal(labels, raw_test_labels(state, 16))  # the same images in the same order
    with torch.inference_mode():
        eager = model(loader_batch)
    from_file = loaded(loaded.preprocess(raw))
    assert torch.allclose(from_file, eager, atol=1e-3 * max(1, float(eager.abs().max())))
    assert loaded.predict(raw) == [state["class_names"][i] for i in eager.argmax(1).tolist()]


def raw_test_images(state, count):
    from cifar_lab.config import from_dict
    from cifar_lab.data.cifar_bundle import load_cifar_splits

    return load_cifar_splits(from_dict(state["config"]))[1].images[:count]


def raw_test_labels(state, count):
    from cifar_lab.config import from_dict
    from cifar_lab.data.cifar_bundle import load_cifar_splits

    return load_cifar_splits(from_dict(state["config"]))[1].labels[:count]


def test_a_failing_validation_leaves_no_file(small_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "compare", lambda *args: (5.0, 1.0))
    out = tmp_path / "model.onnx"
    with pytest.raises(export.ExportError, match="does not match the eager model.*nothing written"):
        export.export(small_checkpoint, "onnx", out, images=8)
    assert leftovers(tmp_path) == []

    out.write_bytes(b"previous")  # an earlier file is kept: it is only ever replaced by a validated one
    with pytest.raises(export.ExportError):
        export.export(small_checkpoint, "onnx", out, images=8)
    assert out.read_bytes() == b"previous" and leftovers(tmp_path) == [out.name]


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_a_corrupt_export_leaves_no_file(small_checkpoint, tmp_path, monkeypatch, fmt):
    real = export.serialize
    monkeypatch.setattr(export, "serialize", lambda *args: real(*args)[:1000])  # truncated
    out = tmp_path / f"model{export.SUFFIXES[fmt]}"
    with pytest.raises(export.ExportError, match="could not be read back"):
        export.export(small_checkpoint, fmt, out, images=8)
    assert leftovers(tmp_path) == []


KILLED_EXPORT = """
import os, signal, sys
from cifar_lab import export, io
real_fsync = os.fsync
def die(fd):  # SIGKILL at the moment the exported bytes are on their way to disk
    os.kill(os.getpid(), signal.SIGKILL)
os.fsync = die
export.export(sys.argv[1], "onnx", sys.argv[2], images=8)
"""


def test_a_killed_export_leaves_a_temporary_file_that_the_next_export_removes(small_checkpoint, tmp_path):
    out = tmp_path / "model.onnx"
    mine = tmp_path / ".notes.tmp"  # a file of the user's that only looks temporary: left alone
    mine.write_text("keep")
    killed = subprocess.run([sys.executable, "-c", KILLED_EXPORT, str(small_checkpoint), str(out)],
                            capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    stale = [p.name for p in tmp_path.iterdir() if p.name.startswith(".model.onnx.")]
    assert len(stale) == 1 and stale[0].endswith(".tmp") and not out.exists()

    export.export(small_checkpoint, "onnx", out, images=8)
    assert leftovers(tmp_path) == sorted([mine.name, out.name]) and mine.read_text() == "keep"


def test_load_refuses_a_file_that_is_not_an_export(tmp_path):
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"not a model")
    with pytest.raises(UsageError, match="cannot be read as a cifar-lab onnx export"):
        export.load(bogus)
    with pytest.raises(UsageError, match="no such file"):
        export.load(tmp_path / "missing.pt2")


def test_the_command_offers_the_librarys_formats_and_tolerance():
    """Mutant: a format or the tolerance changed in `cifar_lab.export` but not in the command's options (which
    are written out there so that `cifar-lab --help` does not load PyTorch)."""
    from cifar_lab.cli import export as command

    assert command.FORMATS == export.FORMATS and command.TOLERANCE == export.TOLERANCE


def test_cli_export_onnx_prints_the_difference_and_writes_json(small_checkpoint, tmp_path):
    out, report = tmp_path / "m.onnx", tmp_path / "export.json"
    done = cli("export", "--checkpoint", str(small_checkpoint), "--format", "onnx", "--out", str(out),
               "--images", "16", "--json", str(report))
    assert done.returncode == 0, done.stderr
    assert "max abs difference to eager fp32" in done.stdout and out.is_file()
    assert json.loads(report.read_text())["format"] == "onnx"


@pytest.mark.parametrize("args, message", [
    (["--format", "tflite"], "invalid choice: 'tflite'"),
    (["--format", "onnx", "--images", "0"], "--images at least 1"),
])
def test_cli_bad_options_exit_2_with_one_line_and_write_nothing(small_checkpoint, tmp_path, args, message):
    out = tmp_path / "m.onnx"
    done = cli("export", "--checkpoint", str(small_checkpoint), *args, "--out", str(out))
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert leftovers(tmp_path) == []


@pytest.fixture(scope="module")
def imagenet_checkpoint(tmp_path_factory):
    """ResNet-18 trained for one epoch on the generated ImageNet-style tree at 64 px (eval resize 73 px, centre
    crop 64 px); its 64 validation JPEGs are 80 x 80."""
    from cifar_lab import presets
    from cifar_lab.engine import train

    root = tmp_path_factory.mktemp("inet-export")
    config = presets.resolve("imagenet1k-resnet18", {
        "dataset": "synthetic-imagenet", "data_root": str(root / "data"), "num_classes": 4, "epochs": 1,
        "synthetic_jpeg_train_per_class": 4, "synthetic_jpeg_val_per_class": 16, "batch_size": 16,
        "num_workers": 0, "progress": False, "device": "cpu"})
    train(config, out_dir=root / "run")
    data = root / "data"
    return root / "run" / "best.pt", sorted(p for p in data.rglob("*") if p.is_file() and "val" in
                                            p.relative_to(data).parts)


def test_an_exported_imagenet_model_prepares_images_as_the_predictor_does(imagenet_checkpoint, tmp_path):
    from PIL import Image

    from cifar_lab.inference import Predictor

    best, val_files = imagenet_checkpoint
    assert len(val_files) == 64
    state = checkpoint.load(best)
    assert state["input"]["eval_resize"] > state["input"]["resolution"] == 64
    # 64 test images of another size and shape than the model's input: the validation JPEGs at 112 x 84.
    images = torch.stack([torch.from_numpy(np.array(Image.open(f).convert("RGB").resize((112, 84))))
                          .permute(2, 0, 1) for f in val_files])
    out = tmp_path / "model.onnx"
    export.export(best, "onnx", out, images=16)
    exported = export.load(out)
    predictor = Predictor(best, device="cpu")

    assert torch.allclose(exported.preprocess(images), predictor.preprocess(list(images)), atol=1e-6)
    top1 = [name for (name, _, _), in predictor.predict_batch(list(images), top_k=1)]
    assert exported.predict(images) == top1


def test_cli_missing_checkpoint_is_one_line(tmp_path):
    done = cli("export", "--checkpoint", str(tmp_path / "none.pt"), "--format", "onnx", "--out",
               str(tmp_path / "m.onnx"))
    assert done.returncode == 2 and "does not exist" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and leftovers(tmp_path) == []
