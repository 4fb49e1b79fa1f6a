"""The data path a run takes, checked on pixels: the loaders `data.registry.build(config, device, generator)`
builds from a preset, on both loader routes, for Fashion-MNIST's IDX files and CIFAR-format (synthetic)
pickles - the one in-memory builder (`data.in_memory.bundle`) serving both the same way."""
from __future__ import annotations

from collections import Counter

import pytest
import torch

from cifar_lab import presets
from cifar_lab.config import TrainConfig, validate
from cifar_lab.data import fashion_mnist, registry
from cifar_lab.errors import UsageError
from data_files import key, random_garments, served, write_fashion_mnist  # tests/ is on sys.path under pytest

N_TRAIN, N_TEST = 48, 16
ROUTES = ("device", "torchvision")
DATASETS = ("fashion_mnist", "synthetic")


def run_config(dataset: str, tmp_path, monkeypatch, **sets) -> TrainConfig:
    """A small run of the dataset's SimpleCNN preset: Fashion-MNIST from IDX files in the Debian package's
    place, or the synthetic CIFAR-10 stand-in written in the official pickle layout."""
    common = {"num_workers": 0, "batch_size": 16, "eval_batch_size": 16, "progress": False, **sets}
    if dataset == "fashion_mnist":
        folder = write_fashion_mnist(tmp_path / "fashion-mnist", random_garments(N_TRAIN, 0)[0],
                                     random_garments(N_TEST, 1)[0])
        monkeypatch.setenv(fashion_mnist.DIR_VARIABLE, str(folder))
        config = presets.resolve("fmnist-simplecnn", {"data_root": str(tmp_path / "empty"), "download": False,
                                                      **common})
    else:
        config = presets.resolve("cifar10-simplecnn", {"dataset": "synthetic", "data_root": str(tmp_path),
                                                       "synthetic_train_size": N_TRAIN,
                                                       "synthetic_test_size": N_TEST, **common})
    return validate(config)


def build(config):
    return registry.build(config, torch.device("cpu"), torch.Generator().manual_seed(0))


def stored(bundle) -> Counter:
    return Counter(key(image) for image in bundle.train_split.images)


def seen(bundle, epoch: int) -> Counter:
    return Counter(key(image) for image in served(bundle, epoch))


@pytest.mark.parametrize("loader", ROUTES)
@pytest.mark.parametrize("dataset", DATASETS)
def test_augment_none_serves_the_stored_images_in_every_epoch(dataset, loader, tmp_path, monkeypatch):
    """With `augment=none` each epoch serves exactly the stored training images, on both routes.

    Mutants: the builder calls `reference.make_loader` without `augment=config.augment` (the torchvision
    route then crops and flips: the bug Fashion-MNIST had), or `DeviceLoader` without `policy=config.augment`
    (its default is crop_flip)."""
    bundle = build(run_config(dataset, tmp_path, monkeypatch, loader=loader, augment="none"))
    assert len(bundle.train_split) == N_TRAIN
    assert seen(bundle, 0) == stored(bundle)
    assert seen(bundle, 1) == stored(bundle)


@pytest.mark.parametrize("loader", ROUTES)
@pytest.mark.parametrize("dataset", DATASETS)
def test_the_presets_augmentation_changes_the_images_and_draws_again_each_epoch(dataset, loader, tmp_path,
                                                                                  monkeypatch):
    """With the preset's `augment=crop_flip`, few served images are the stored ones, and the second epoch
    serves other images than the first.

    Mutant: a route that never augments whatever `augment` says (the builder passes `augment="none"`, or
    builds the training loader with `train=False`)."""
    config = run_config(dataset, tmp_path, monkeypatch, loader=loader)
    assert config.augment == "crop_flip"
    bundle = build(config)
    first, second, original = seen(bundle, 0), seen(bundle, 1), stored(bundle)
    assert sum(first.values()) == N_TRAIN
    # a stored image comes back only from the centre crop without a flip: 1 draw in 162
    assert sum((first & original).values()) < N_TRAIN // 4
    assert first != second


def test_the_torchvision_route_refuses_a_layout_it_cannot_serve(tmp_path, monkeypatch):
    """Fashion-MNIST as published (1x28x28, `fmnist-tf-convnet`) on `loader=torchvision`: a one-line error
    naming the way out, when the run is built.

    Mutant: the builder hands the 1-channel split to the torchvision route unchecked (PIL then fails inside
    the first epoch, with a traceback)."""
    config = run_config("fashion_mnist", tmp_path, monkeypatch)
    config = validate(presets.resolve("fmnist-tf-convnet", {"data_root": config.data_root, "download": False,
                                                            "loader": "torchvision", "num_workers": 0}))
    with pytest.raises(UsageError, match="loader=torchvision serves 3x32x32 images.*use loader=device"):
        build(config)


def test_the_jpeg_routes_refuse_a_policy_they_do_not_implement(tmp_path):
    """The ImageNet routes augment with their own transforms; `augment=none` there is a one-line error.

    Mutant: the ImageNet builder ignores `augment` (the run would still crop, flip and jitter)."""
    config = validate(TrainConfig(dataset="synthetic-imagenet", model="simple_cnn", data_root=str(tmp_path),
                                  num_classes=2, synthetic_jpeg_train_per_class=2, synthetic_jpeg_val_per_class=1,
                                  synthetic_jpeg_px=32, augment="none", num_workers=0, progress=False))
    with pytest.raises(UsageError, match="augment=none: the ImageNet routes"):
        build(config)
