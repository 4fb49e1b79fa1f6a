"""`cifar-lab export` and `cifar_lab.export`: validated files that carry their metadata, nothing left behind
by a failing export, one-line errors."""
import json
import subprocess
import sys

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
    out = tmp_path / f"model{export.SUFFIXES[fmt]}"
    result = export.export(small_checkpoint, fmt, out, images=32)
    assert out.is_file() and leftovers(tmp_path) == [out.name]
    assert 0 <= result["max_abs_diff"] <= result["allowed_diff"] and result["images"] == 32
    assert result["size_mb"] == pytest.approx(out.stat().st_size / 1e6)

    state = checkpoint.load(small_checkpoint)
    loaded = export.load(out)
    assert loaded.format == fmt
    assert loaded.class_names == state["class_names"]
    assert loaded.metadata["input"]["mean"] == list(state["input"]["mean"])
    assert loaded.metadata["input"]["std"] == list(state["input"]["std"])
    assert loaded.metadata["input"]["resolution"] == 32

    model = checkpoint.load_model(state)
    images, _ = export.test_split(state, limit=5)
    for batch in (images[:1], images):  # the batch dimension is dynamic
        with torch.inference_mode():
            expected = model(batch)
        assert torch.allclose(loaded(batch), expected, atol=1e-3 * max(1, float(expected.abs().max())))

    # The file alone classifies raw uint8 images as the eager model does after the test loader's steps.
    raw = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    with torch.inference_mode():
        eager = model(loaded.preprocess(raw)).argmax(1).tolist()
    assert loaded.predict(raw) == [state["class_names"][i] for i in eager]


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


def test_load_refuses_a_file_that_is_not_an_export(tmp_path):
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"not a model")
    with pytest.raises(UsageError, match="cannot be read as a cifar-lab onnx export"):
        export.load(bogus)
    with pytest.raises(UsageError, match="no such file"):
        export.load(tmp_path / "missing.pt2")


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


def test_cli_missing_checkpoint_is_one_line(tmp_path):
    done = cli("export", "--checkpoint", str(tmp_path / "none.pt"), "--format", "onnx", "--out",
               str(tmp_path / "m.onnx"))
    assert done.returncode == 2 and "does not exist" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and leftovers(tmp_path) == []
