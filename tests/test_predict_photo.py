"""Predictions on photos that are not from the dataset: a photo is prepared to look like the training images as
the checkpoint records them (Fashion-MNIST: grey, light garment on black, trimmed, aspect ratio kept and padded,
never stretched), the answer names the preparation and warns when the input is unlike the training images, and
`cifar-lab predict` answers the same on a checkpoint and on the files `cifar-lab export` writes from it.

The model is trained here for one epoch on a small Fashion-MNIST-format set the test writes (the four gzipped
IDX files, read by the dataset's own loader), so the test needs neither the real files nor a long run."""
import gzip
import re
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from cifar_lab import export, inference, presets
from cifar_lab.data import fashion_mnist
from cifar_lab.engine import checkpoint
from cifar_lab.engine.trainer import train

TRAIN_IMAGES, TEST_IMAGES = 300, 60
# The photo: 200 wide, 300 tall, light background, a dark T-shirt (body and sleeves) whose bounding box is
# SHIRT_W x SHIRT_H pixels.
PHOTO_W, PHOTO_H, BACKGROUND = 200, 300, 232
SHIRT_TOP, SHIRT_LEFT, SHIRT_W, SHIRT_H = 50, 30, 140, 210


def write_idx(path, array: np.ndarray) -> None:
    """A gzipped IDX file (LeCun's MNIST format): magic 0x08 0x0N, big-endian sizes, unsigned bytes."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def garment_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28x28 grey images like the dataset's: a light object on a black (0) background whose width, height and
    brightness depend on its class, plus noise inside the object."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 10
    images = np.zeros((count, 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        h = 26 - label // 2 + int(rng.integers(-1, 2))
        w = 8 + 2 * label + int(rng.integers(-1, 2))
        top, left = (28 - h) // 2, (28 - w) // 2
        level = 130 + 12 * label
        images[i, top:top + h, left:left + w] = np.clip(rng.normal(level, 15, (h, w)), 1, 255)
    return images, labels


@pytest.fixture(scope="module")
def fmnist_files(tmp_path_factory):
    """A Fashion-MNIST-format folder, used instead of the real one for this module's runs and commands."""
    folder = tmp_path_factory.mktemp("fmnist-files")
    for train_split, count, seed in ((True, TRAIN_IMAGES, 0), (False, TEST_IMAGES, 1)):
        images, labels = garment_images(count, seed)
        image_file, label_file = fashion_mnist.FILES[train_split]
        write_idx(folder / image_file, images)
        write_idx(folder / label_file, labels)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(fashion_mnist.DIR_VARIABLE, str(folder))
        yield folder


def train_run(root, preset: str, **overrides):
    config = presets.resolve(preset, {"epochs": 1, "batch_size": 64, "progress": False, "device": "cpu",
                                      "data_root": str(root / "data"), **overrides})
    train(config, root / "run")
    return root / "run" / "last.pt"


@pytest.fixture(scope="module")
def last_pt(fmnist_files, tmp_path_factory):
    """`fmnist-simplecnn` (3x32x32 inputs: the 28x28 images padded by 2) after one epoch."""
    return train_run(tmp_path_factory.mktemp("fmnist-run"), "fmnist-simplecnn")


def shirt_photo() -> np.ndarray:
    """uint8 [300, 200, 3]: a dark blue T-shirt on a light, slightly noisy background, as a phone photo of a
    garment on a table looks (not from the test split)."""
    rng = np.random.default_rng(7)
    photo = np.clip(rng.normal(BACKGROUND, 2, (PHOTO_H, PHOTO_W, 3)), 0, 255).astype(np.uint8)
    shirt = np.array([50, 70, 110], dtype=np.uint8)
    sleeve_h = 70
    body_left, body_w = SHIRT_LEFT + 35, SHIRT_W - 70
    photo[SHIRT_TOP:SHIRT_TOP + SHIRT_H, body_left:body_left + body_w] = shirt          # body
    photo[SHIRT_TOP:SHIRT_TOP + sleeve_h, SHIRT_LEFT:SHIRT_LEFT + SHIRT_W] = shirt      # shoulders and sleeves
    return photo


def as_tensor(photo: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(photo).permute(2, 0, 1).contiguous()


def object_box(plane: torch.Tensor, threshold: float) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the pixels above `threshold` in a 2-D image."""
    rows = (plane > threshold).any(1).nonzero().flatten()
    cols = (plane > threshold).any(0).nonzero().flatten()
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def split_background(last_pt) -> int:
    """The background value of the training split as the model saw it: the median of its images' borders."""
    from cifar_lab.config import from_dict

    train_split, _ = fashion_mnist.load_splits(from_dict(checkpoint.load(last_pt)["config"]))
    return int(inference.border_pixels(train_split.images[:, 0]).flatten().median())


def test_a_light_background_photo_is_prepared_with_the_splits_polarity_and_shape(last_pt):
    """Mutants: the light background kept (no inversion: the background stays near 232 instead of the split's
    0); the photo stretched to the square (the shirt's aspect ratio changes by a third); padding with white or with
    the photo's own light border instead of the split's background (the bands are light); the colour kept (the
    channels differ)."""
    predictor = inference.Predictor(last_pt, device="cpu")
    prepared = predictor.prepare(as_tensor(shirt_photo()))
    image = prepared.image
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
    assert torch.equal(image[0], image[1]) and torch.equal(image[0], image[2])  # grey, as the split
    plane = image[0].float()

    background = split_background(last_pt)
    assert background == 0
    border = inference.border_pixels(image[:1]).float()
    assert (border - background).abs().max() <= 8            # the padding is the split's background
    assert plane.max() > background + 150                      # a light garment on a dark background
    top, bottom, left, right = object_box(plane, 128)

    # No stretching: the shirt keeps its aspect ratio (its longer side fills the published 28 px).
    height, width = bottom - top, right - left
    assert height == 28
    assert abs(width - SHIRT_W * height / SHIRT_H) <= 1, (width, height)
    # Padding bands on both sides of the narrower dimension, wider than the loader's own 2 px.
    assert left >= 3 and 32 - right >= 3
    assert (plane[:, :left] - background).abs().max() <= 8 and (plane[:, right:] - background).abs().max() <= 8
    assert prepared.warning is None


def test_an_input_unlike_the_training_images_carries_a_warning_and_a_test_image_does_not(last_pt):
    """Mutants: the check never fires (a blank photo, or the colour photo stretched and kept light as it was
    prepared before, would be answered without a word); the check fires on images like the training ones (a
    test-split image warned about); the check compares with the wrong reference (the range of the training images
    not read from the input record)."""
    predictor = inference.Predictor(last_pt, device="cpu")
    stats = predictor.input["statistics"]
    assert stats["images"] == TRAIN_IMAGES and stats["image_mean"][0] < stats["image_mean"][1]

    blank = np.full((PHOTO_H, PHOTO_W, 3), 200, dtype=np.uint8)
    warning = predictor.prepare(blank).warning
    assert warning and warning.startswith("input unlike the training images (")
    assert f"contrast 0.00 vs {stats['image_std'][0]:.2f}-{stats['image_std'][1]:.2f} in training" in warning
    assert warning.endswith("): the answer may be meaningless")

    # What the photo looked like to the model before: stretched to 32x32, colour, light background.
    stretched = torch.nn.functional.interpolate(as_tensor(shirt_photo())[None].float(), size=(32, 32),
                                                mode="bilinear", antialias=True)[0].round().byte()
    warning = inference.unlike_training(stretched, predictor.input)
    mean = float(stretched.float().mean() / 255)
    assert warning and f"mean {mean:.2f} vs {stats['image_mean'][0]:.2f}-{stats['image_mean'][1]:.2f}" in warning

    from cifar_lab.config import from_dict
    _, test_split = fashion_mnist.load_splits(from_dict(checkpoint.load(last_pt)["config"]))
    answers = predictor.answer_batch(list(test_split.images[:20]))
    assert [a.warning for a in answers] == [None] * 20
    assert all(a.preparation.line == "prepared: grey, 32x32 as stored" for a in answers)


def test_an_older_checkpoint_is_prepared_by_the_conventions_of_its_dataset(last_pt, tmp_path):
    """Mutants: a checkpoint without the convention fields (the previous version wrote only sizes and
    normalisation) is prepared as a colour image (kept light, no inversion, padded with its border colour); its
    inputs are never warned about, since it records no statistics of its training images (the normalisation's,
    measured on the training split, are the reference then)."""
    state = checkpoint.load(last_pt)
    old = dict(state, input={key: state["input"][key] for key in
                             ("resolution", "eval_resize", "source_size", "padded_from", "mean", "std")})
    checkpoint.save(tmp_path / "old.pt", old)
    photo = as_tensor(shirt_photo())
    new_way = inference.Predictor(last_pt, device="cpu").prepare(photo)
    older = inference.Predictor(tmp_path / "old.pt", device="cpu")
    old_way = older.prepare(photo)
    assert torch.equal(old_way.image, new_way.image) and old_way.line == new_way.line
    assert "inverted (light background)" in old_way.line
    blank = np.full((PHOTO_H, PHOTO_W, 3), 200, dtype=np.uint8)
    std = state["input"]["std"][0]
    warning = older.prepare(blank).warning
    assert warning and f"contrast 0.00 vs at least {std / 6:.2f} in training" in warning


PREDICTED = re.compile(r"^  1\. (.+?)\s+\(class\s+(\d+)\)\s+([0-9.]+)$")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "cifar_lab", *args], capture_output=True, text=True)


def answers(stdout: str) -> dict:
    """{image path: (top-1 class, its probability, [the lines under the answer])} from `predict`'s output."""
    found, current = {}, None
    for line in stdout.splitlines():
        if not line.startswith(" "):
            current = line
            found[current] = [None, None, []]
        elif (match := PREDICTED.match(line)):
            found[current][:2] = match.group(1), float(match.group(3))
        elif not re.match(r"^  \d+\. ", line):
            found[current][2].append(line.strip())
    return {path: tuple(value) for path, value in found.items()}


def test_cli_predict_names_the_preparation_and_warns(last_pt, tmp_path):
    """Mutants: the answer without its preparation line (the command says nothing of how the photo was
    changed); a preparation line that does not name the inversion or the kept aspect ratio; no warning line for
    a blank photo."""
    photo, blank = tmp_path / "shirt.png", tmp_path / "blank.png"
    Image.fromarray(shirt_photo()).save(photo)
    Image.new("RGB", (PHOTO_W, PHOTO_H), (200, 200, 200)).save(blank)
    done = cli("predict", "--checkpoint", str(last_pt), str(photo), str(blank), "--top-k", "3")
    assert done.returncode == 0, done.stderr
    found = answers(done.stdout)
    shirt_lines = found[str(photo)][2]
    assert len(shirt_lines) == 1, shirt_lines
    line = shirt_lines[0]
    assert line.startswith("prepared: grey, inverted (light background), ")
    assert f"trimmed to the object ({SHIRT_W}x{SHIRT_H} of {PHOTO_W}x{PHOTO_H})" in line
    assert f"scaled {SHIRT_W}x{SHIRT_H} -> 19x28 (aspect kept)" in line and line.endswith("padded to 32x32")
    blank_lines = found[str(blank)][2]
    assert len(blank_lines) == 2 and blank_lines[0].startswith("prepared: grey, inverted (light background)")
    assert blank_lines[1].startswith("warning: input unlike the training images (") and "contrast 0.00 vs " in \
        blank_lines[1]


def photo_of(picture: np.ndarray, scale: int = 6) -> np.ndarray:
    """A test-split picture (28x28, light on black) as a photo would show it: enlarged, dark on a light canvas
    wider than it, in RGB."""
    big = 255 - np.kron(picture, np.ones((scale, scale), dtype=np.uint8))
    canvas = np.full((big.shape[0] + 40, big.shape[1] + 70), 255, dtype=np.uint8)
    canvas[20:20 + big.shape[0], 30:30 + big.shape[1]] = big
    return np.repeat(canvas[:, :, None], 3, axis=2)


@pytest.fixture(scope="module")
def twenty_images(last_pt, tmp_path_factory):
    """20 test images as files: 10 as the dataset stores them (28x28 grey PNGs) and 10 as photos of them."""
    folder = tmp_path_factory.mktemp("twenty")
    pictures, _ = garment_images(TEST_IMAGES, 1)
    paths = []
    for i in range(10):
        paths.append(folder / f"test_{i}.png")
        Image.fromarray(pictures[i]).save(paths[-1])
        paths.append(folder / f"photo_{i}.png")
        Image.fromarray(photo_of(pictures[10 + i])).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def checkpoint_answers(last_pt, twenty_images):
    done = cli("predict", "--checkpoint", str(last_pt), *map(str, twenty_images))
    assert done.returncode == 0, done.stderr
    return answers(done.stdout)


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_predict_on_an_exported_file_answers_as_the_checkpoint(last_pt, twenty_images, checkpoint_answers,
                                                               tmp_path, fmt):
    """Mutants: `predict` reads the exported file as a checkpoint (the reported "cannot be read (its pickle is
    damaged)" error, exit 2); the exported model is given images prepared another way (the record without the
    dataset's conventions, another normalisation): its top-1 or probabilities differ from the checkpoint's on
    these 20 images."""
    out = tmp_path / f"model{export.SUFFIXES[fmt]}"
    done = cli("export", "--checkpoint", str(last_pt), "--format", fmt, "--out", str(out), "--images", "16")
    assert done.returncode == 0, done.stderr
    done = cli("predict", "--checkpoint", str(out), *map(str, twenty_images))
    assert done.returncode == 0, done.stderr
    exported = answers(done.stdout)
    assert list(exported) == list(checkpoint_answers) == list(map(str, twenty_images))
    for path in exported:
        (name, p, lines), (name_ckpt, p_ckpt, lines_ckpt) = exported[path], checkpoint_answers[path]
        assert name == name_ckpt and abs(p - p_ckpt) <= 2e-4 and lines == lines_ckpt, path
    photos = [exported[str(path)][2][0] for path in twenty_images if path.name.startswith("photo")]
    assert all("inverted (light background)" in line for line in photos)
    # The predictions are not all one class: agreement above is not the agreement of a constant model.
    assert len({exported[path][0] for path in exported}) > 1


def test_a_one_channel_model_gets_one_grey_channel_from_predict_and_from_its_export(fmnist_files,
                                                                                  tmp_path):
    """Mutants: three channels fed to a model that takes one (its first layer refuses them); the export traced
    on a 3-channel example (it fails or cannot take grey images); the native 28x28 run padded to 32."""
    last = train_run(tmp_path, "fmnist-tf-convnet", batch_size=400)
    predictor = inference.Predictor(last, device="cpu")
    assert predictor.input["channels"] == 1 and predictor.input["padded_from"] == 0
    answer = predictor.answer(shirt_photo())
    assert answer.preparation.image.shape == (1, 28, 28)
    assert answer.preparation.line.endswith("scaled 140x210 -> 19x28 (aspect kept), padded to 28x28")
    out = tmp_path / "tf.onnx"
    export.export(last, "onnx", out, images=8)
    from_file = export.predictor(out).answer(shirt_photo())
    assert from_file.top[0][0] == answer.top[0][0] and abs(from_file.top[0][2] - answer.top[0][2]) < 1e-4
