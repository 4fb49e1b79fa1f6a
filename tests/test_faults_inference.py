"""Faults on the inference side: images that would exhaust memory (decompression bombs), 16-bit images, and
oversized uploads to the demo. Each gets one line naming the file and the fix; nothing is decoded first."""
from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cifar_lab import inference
from cifar_lab.errors import DataError
from inference_checkpoint import small_checkpoint as trained  # tests/ is on sys.path under pytest


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    return trained(tmp_path_factory)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path: Path, side: int = 15_000) -> Path:
    """A valid 1-bit greyscale PNG of side x side black pixels (225 megapixels for the default), a few tens of
    kB on disk: the PNG specification's chunks written by hand, the rows deflated as they are made, so the test
    itself never holds the image."""
    row = b"\x00" + bytes((side + 7) // 8)  # filter byte "none", then the packed 1-bit pixels
    deflate = zlib.compressobj(9)
    data = b"".join(deflate.compress(row) for _ in range(side)) + deflate.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # bit depth 1, greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data)
                     + png_chunk(b"IEND", b""))
    return path


def small_png(path: Path, seed: int = 0) -> Path:
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(path)
    return path


def cli(*args):
    return subprocess.run([sys.executable, "-m", "cifar_lab", *args], capture_output=True, text=True)


# --- decompression bombs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("side", [15_000, 7_000])  # above Pillow's own error limit, and between ours and it
def test_read_image_refuses_a_decompression_bomb_from_its_header(tmp_path, side):
    bomb = bomb_png(tmp_path / "bomb.png", side)
    assert bomb.stat().st_size < 200_000
    with pytest.raises(DataError, match=rf"bomb.png: .*more than 40 million.*downscale it") as err:
        inference.read_image(bomb)
    assert "\n" not in str(err.value)


def test_predict_answers_the_other_images_and_exits_2_after_a_bomb(small_checkpoint, tmp_path):
    # The command keeps going past a file it cannot use (as for a missing or damaged one): the good images
    # before and after the bomb are answered, the bomb gets one line, and the exit status says one failed.
    before, bomb, after = small_png(tmp_path / "a.png", 1), bomb_png(tmp_path / "bomb.png"), small_png(tmp_path / "b.png", 2)
    done = cli("predict", "--checkpoint", str(small_checkpoint), str(before), str(bomb), str(after))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "bomb.png" in lines[0] and "million pixels" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    answered = [line for line in done.stdout.splitlines() if not line.startswith(" ")]
    assert answered == [str(before), str(after)]


# --- 16-bit images -----------------------------------------------------------------------------------------

def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped(small_checkpoint, tmp_path):
    grey8 = np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)
    Image.fromarray(grey8).save(tmp_path / "grey8.png")
    Image.fromarray(grey8.astype(np.uint16) * 257).save(tmp_path / "grey16.png")  # the same picture, 16 bits
    with Image.open(tmp_path / "grey16.png") as check:
        assert check.mode.startswith("I")  # Pillow reads it as 16-bit, not as 8-bit

    wide, narrow = inference.read_image(tmp_path / "grey16.png"), inference.read_image(tmp_path / "grey8.png")
    assert torch.equal(wide, narrow) and wide.shape == (3, 40, 40)
    assert float((wide == 255).float().mean()) < 0.01  # not clipped to white

    predictor = inference.Predictor(small_checkpoint, device="cpu")
    assert torch.equal(predictor.preprocess([tmp_path / "grey16.png"]), predictor.preprocess([tmp_path / "grey8.png"]))
    with Image.open(tmp_path / "grey16.png") as handle:  # a PIL image given directly takes the same path
        assert torch.equal(inference.to_uint8_chw(handle), narrow)


# --- the ONNX file the ONNX routes share ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_and_meta(small_checkpoint):
    from cifar_lab import export
    from cifar_lab.engine import checkpoint

    state = checkpoint.load(small_checkpoint)
    return checkpoint.load_model(state, "cpu"), export.metadata(state)


def onnx_matches_eager(model, meta, work_dir: Path) -> bool:
    """Build the onnxruntime route in `work_dir` and compare its logits with the eager model's."""
    from cifar_lab import inference_routes

    resolution = meta["input"]["resolution"]
    images = torch.randn(8, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    route = inference_routes.build("onnxruntime", model, meta, "cpu", work_dir)
    with torch.inference_mode():
        expected = model(images)
    return torch.allclose(inference_routes.logits(route, images, batch_size=8), expected, atol=1e-4)


def test_a_truncated_model_onnx_is_exported_again_not_trusted(model_and_meta, tmp_path):
    """Mutant caught: the ONNX routes reuse `work_dir/model.onnx` whenever the file exists, so the file a kill
    cut short mid-write (here: its first half) is handed to ONNX Runtime, which fails to load it."""
    model, meta = model_and_meta
    assert onnx_matches_eager(model, meta, tmp_path)
    whole = (tmp_path / "model.onnx").read_bytes()
    (tmp_path / "model.onnx").write_bytes(whole[:len(whole) // 2])
    assert onnx_matches_eager(model, meta, tmp_path)
    assert (tmp_path / "model.onnx").read_bytes() == whole
    assert not [path.name for path in tmp_path.iterdir() if path.name.endswith(".tmp")]


def test_another_models_onnx_in_a_kept_work_folder_is_not_reused(model_and_meta, tmp_path):
    """Mutant caught: reuse checks that the file is a whole, valid ONNX model (onnx.checker, or its own hash)
    but not that it is the export of this model: a kept work folder still holding another checkpoint's export
    would then be timed and scored in this model's name."""
    import copy

    model, meta = model_and_meta
    other = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.mul_(-1.0)
    assert onnx_matches_eager(other, meta, tmp_path)       # the other model's export and record are in place
    assert onnx_matches_eager(model, meta, tmp_path)       # exported again for this one


def test_a_whole_export_of_the_same_model_is_reused(model_and_meta, tmp_path, monkeypatch):
    """Mutant caught: a check that never passes (a record never written, or hashed over other bytes) exports
    the model again for every ONNX route, and a kill between the model and its record goes unnoticed: the
    first build exports, the second reuses, and a model without its record is exported again."""
    from cifar_lab import export

    model, meta = model_and_meta
    exports = []
    real = export.onnx_bytes
    monkeypatch.setattr(export, "onnx_bytes", lambda *args, **kwargs: exports.append(1) or real(*args, **kwargs))
    assert onnx_matches_eager(model, meta, tmp_path) and len(exports) == 1
    assert onnx_matches_eager(model, meta, tmp_path) and len(exports) == 1
    (tmp_path / "model.onnx.json").unlink()                # killed after the model, before its record
    assert onnx_matches_eager(model, meta, tmp_path) and len(exports) == 2


# --- the demo ------------------------------------------------------------------------------------------------

DEMO_EXTRA = "the demo needs the optional extra: pip install -e .[demo]"


@pytest.fixture(scope="module")
def served(small_checkpoint):
    pytest.importorskip("gradio", reason=DEMO_EXTRA)
    from cifar_lab import demo

    classifier = demo.Classifier(small_checkpoint, device="cpu", examples=0)
    app, url = demo.serve(classifier, port=_free_port())
    yield app, url
    demo._close(app)
    classifier.cleanup()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _upload(url: str, name: str, payload: bytes):
    import httpx

    return httpx.post(url.rstrip("/") + "/gradio_api/upload", files={"files": (name, payload, "image/png")},
                      timeout=60)


def test_the_demo_server_refuses_an_upload_over_its_size_limit(served):
    from gradio.utils import _parse_file_size

    from cifar_lab import demo

    _, url = served
    limit = _parse_file_size(demo.MAX_UPLOAD)
    assert _upload(url, "big.png", b"\0" * (limit + 1)).status_code == 413
    assert _upload(url, "small.png", b"\0" * 1000).status_code == 200


def test_the_demo_refuses_a_bomb_before_decoding_it(served, tmp_path):
    gradio = pytest.importorskip("gradio", reason=DEMO_EXTRA)
    from gradio.data_classes import FileData

    app, _ = served
    bomb = bomb_png(tmp_path / "bomb.png", 7_000)  # under Pillow's own error limit: only ours stops it
    image = next(block for block in app.blocks.values() if getattr(block, "elem_id", None) == "demo-image")
    decoded = []
    real_decode = Image.Image.load
    try:
        Image.Image.load = lambda self, *a, **k: decoded.append(self.size) or real_decode(self, *a, **k)
        with pytest.raises(gradio.Error, match=r"bomb.png: the image is 7000 x 7000 pixels, more than 40 million"):
            image.preprocess(FileData(path=str(bomb), orig_name="bomb.png"))
    finally:
        Image.Image.load = real_decode
    assert decoded == []
