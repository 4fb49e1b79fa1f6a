"""The demo on a Fashion-MNIST checkpoint: its examples are real test images from the IDX files, written as
grey PNGs exactly as the model saw them (padded to 32x32), and a PNG uploaded from them is prepared as the
test loader prepared the image; the superclasses (tops, trousers, footwear, bags) come with them. Needs no
browser: the page's screenshot is tested in test_demo_browser.py."""
import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from cifar_lab import demo, export, inference, presets
from cifar_lab.data import fashion_mnist
from cifar_lab.engine import checkpoint as checkpoints
from cifar_lab.engine.trainer import train

pytestmark = pytest.mark.skipif(not fashion_mnist.has_files(fashion_mnist.debian_dir()),
                                reason="needs the Fashion-MNIST files (Debian package dataset-fashion-mnist)")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_fmnist")
    config = presets.resolve("fmnist-simplecnn", {"epochs": 1, "train_subset": 500, "test_subset": 200,
                                                  "progress": False, "device": "cpu"})
    train(config, root / "run")
    return root / "run" / "best.pt"


def test_examples_are_the_test_images_the_model_saw(checkpoint, tmp_path):
    classifier = demo.Classifier(checkpoint, device="cpu", examples=4, example_dir=tmp_path)
    assert classifier.note == ""
    assert len(classifier.examples) == 4
    assert len({name for _, name in classifier.examples}) == 4  # four different classes
    assert classifier.coarse_names == fashion_mnist.COARSE_NAMES
    _, test = fashion_mnist.load_splits(dataclasses.replace(classifier.config, download=False))
    loader_images, loader_labels = export.test_split(checkpoints.load(checkpoint))
    for path, name in classifier.examples:
        index = int(path.name.split("_")[1])
        assert name == test.class_names[int(test.labels[index])]
        with Image.open(path) as image:
            assert image.mode == "L" and image.size == (32, 32)
            pixels = torch.from_numpy(np.array(image))
        assert torch.equal(pixels, test.images[index, 0])
        assert pixels[:2].sum() == 0  # the 2-pixel zero border of the padding
        # The uploaded PNG reaches the model as the test loader's image did.
        uploaded = inference.model_input([path], classifier.predictor.input)[0]
        assert torch.allclose(uploaded, loader_images[index], atol=1e-6)
        assert int(loader_labels[index]) == int(test.labels[index])


def test_a_fashion_image_gets_classes_and_superclasses(checkpoint, tmp_path):
    classifier = demo.Classifier(checkpoint, device="cpu", examples=2, example_dir=tmp_path)
    fine, coarse = classifier.classify(classifier.examples[0][0])
    assert set(fine) == set(fashion_mnist.CLASS_NAMES)
    assert set(coarse) == set(fashion_mnist.COARSE_NAMES)
    assert sum(fine.values()) == pytest.approx(1.0, abs=1e-5)
    assert sum(coarse.values()) == pytest.approx(1.0, abs=1e-5)
    # footwear is the sum of sandal, sneaker and ankle boot
    assert coarse["footwear"] == pytest.approx(fine["Sandal"] + fine["Sneaker"] + fine["Ankle boot"], abs=1e-6)


def test_a_published_28px_image_is_padded_as_in_training_not_stretched(checkpoint):
    predictor = inference.Predictor(checkpoint, device="cpu")
    assert predictor.input["padded_from"] == fashion_mnist.SIDE
    _, test = fashion_mnist.load_splits(dataclasses.replace(predictor.config, download=False))
    padded = test.images[0]  # uint8 [3, 32, 32], as the loader holds it
    native = padded[:, 2:-2, 2:-2]  # the published 28x28 picture inside its zero border
    assert native.shape[-1] == fashion_mnist.SIDE and int(padded.sum()) == int(native.sum())
    assert torch.equal(inference.prepare(native, predictor.input), padded)
    assert torch.equal(inference.model_input([native], predictor.input),
                       inference.model_input([padded], predictor.input))


def test_an_upload_is_prepared_like_the_test_images_and_the_page_says_how(checkpoint, tmp_path):
    """A photo of a dark shirt on a light table (not from the test split) is inverted, trimmed and padded, never
    stretched, and the text under the answer names that; a blank photo gets the warning. Mutants: the demo
    classifies the photo as it comes (colour, light background, stretched: the line does not say "inverted" and
    the model sees a light frame); the page drops the preparation line or the warning."""
    photo = np.full((300, 200, 3), 230, dtype=np.uint8)
    photo[50:260, 65:135] = (50, 70, 110)     # body
    photo[50:120, 30:170] = (50, 70, 110)     # shoulders and sleeves
    path = tmp_path / "shirt.png"
    Image.fromarray(photo).save(path)
    classifier = demo.Classifier(checkpoint, device="cpu", examples=0)
    fine, coarse, notes = classifier.answer(path)
    assert set(fine) == set(fashion_mnist.CLASS_NAMES) and set(coarse) == set(fashion_mnist.COARSE_NAMES)
    assert notes.startswith("prepared: grey, inverted (light background), ")
    assert "trimmed to the object (140x210 of 200x300), scaled 140x210 -> 19x28 (aspect kept), padded to 32x32" \
        in notes and "warning" not in notes
    prepared = classifier.predictor.prepare(path).image
    assert prepared.shape == (3, 32, 32) and int(inference.border_pixels(prepared).max()) == 0
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 300), (210, 210, 210)).save(blank)
    _, _, notes = classifier.answer(blank)
    assert "**warning: input unlike the training images (" in notes and "contrast 0.00 vs " in notes
