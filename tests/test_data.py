"""The data path: CIFAR pickle parsing, download/verify/extract, the synthetic dataset, the device loader."""
import pickle

import numpy as np
import pytest
import torch
from torchvision import transforms

from cifar_lab.data import augment, cifar, synthetic
from cifar_lab.data.loader import DeviceLoader
from cifar_lab.errors import DataError


@pytest.fixture(scope="module")
def synthetic10(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return synthetic.write(root, 10, n_train=600, n_test=200)


def test_synthetic_is_read_by_the_cifar10_parser(synthetic10):
    train = cifar.load_split(cifar.CIFAR10, synthetic10, train=True)
    test = cifar.load_split(cifar.CIFAR10, synthetic10, train=False)
    assert train.images.shape == (600, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (200, 3, 32, 32)
    assert torch.bincount(train.labels).tolist() == [60] * 10
    assert len(train.class_names) == 10 and train.coarse_labels is None
    # Five batch files, as in the official archive.
    assert sorted(p.name for p in (synthetic10 / "cifar-10-batches-py").iterdir()) == \
        ["batches.meta", "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]


def test_synthetic_100_has_cifar100_layout_and_superclasses(tmp_path):
    base = synthetic.write(tmp_path, 100, n_train=1000, n_test=200)
    train = cifar.load_split(cifar.CIFAR100, base, train=True)
    assert len(train.class_names) == 100 and len(train.coarse_names) == 20
    assert torch.equal(train.coarse_labels, train.labels // 5)
    assert train.coarse_of_fine.tolist() == [k // 5 for k in range(100)]


def test_synthetic_generation_is_deterministic(tmp_path):
    a, la = synthetic.generate(10, 50, seed=3)
    b, lb = synthetic.generate(10, 50, seed=3)
    assert np.array_equal(a, b) and np.array_equal(la, lb)


def test_download_verifies_extracts_and_never_fetches_twice(tmp_path):
    archive, md5 = synthetic.write_archive(tmp_path / "gen", tmp_path / "mirror", 10, n_train=100, n_test=20)
    root = tmp_path / "root"
    folder = cifar.download(cifar.CIFAR10, root, url=archive.as_uri(), md5=md5, progress=False)
    assert cifar.is_extracted(cifar.CIFAR10, root) and folder == root / "cifar-10-batches-py"
    assert len(cifar.load_split(cifar.CIFAR10, root, train=True)) == 100
    archive.unlink()  # the source is gone: a second call must not try to fetch
    cifar.download(cifar.CIFAR10, root, url=archive.as_uri(), md5=md5, progress=False)
    assert not any(p.name.startswith(".extract-") for p in root.iterdir())


def test_archive_with_wrong_checksum_is_removed(tmp_path):
    archive, _ = synthetic.write_archive(tmp_path / "gen", tmp_path / "mirror", 10, n_train=100, n_test=20)
    root = tmp_path / "root"
    with pytest.raises(DataError, match="corrupt or truncated"):
        cifar.download(cifar.CIFAR10, root, url=archive.as_uri(), md5="0" * 32, progress=False)
    assert not (root / cifar.CIFAR10.archive).exists()
    assert not (root / cifar.CIFAR10.folder).exists()


def test_truncated_archive_leaves_nothing_half_extracted(tmp_path):
    archive, _ = synthetic.write_archive(tmp_path / "gen", tmp_path / "mirror", 10, n_train=100, n_test=20)
    root = tmp_path / "root"
    root.mkdir()
    truncated = root / cifar.CIFAR10.archive
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataError):
        cifar.download(cifar.CIFAR10, root, md5=cifar.md5sum(truncated), progress=False)
    assert sorted(p.name for p in root.iterdir()) == []


def test_unreachable_download_names_path_and_command(tmp_path):
    with pytest.raises(DataError) as err:
        cifar.download(cifar.CIFAR10, tmp_path, url=(tmp_path / "nowhere.tar.gz").as_uri(), progress=False)
    message = str(err.value)
    assert str(tmp_path) in message and "cifar-lab data download cifar10" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_missing_and_corrupt_batch_files_are_one_line_errors(synthetic10, tmp_path):
    with pytest.raises(DataError, match="cifar-lab data download cifar10"):
        cifar.load_split(cifar.CIFAR10, tmp_path, train=True)
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(synthetic10, copy)
    batch = copy / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:1000])
    with pytest.raises(DataError, match="data_batch_3 is corrupt"):
        cifar.load_split(cifar.CIFAR10, copy, train=True)


def test_parser_reads_official_byte_keys(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    images = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    for name in cifar.CIFAR10.train_files + cifar.CIFAR10.test_files:
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": images, b"labels": [3, 7]}, handle)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, handle)
    split = cifar.load_split(cifar.CIFAR10, tmp_path, train=False)
    # Row-major 3072 = 3 x 32 x 32: the first 1024 values are the red plane.
    assert torch.equal(split.images[0, 0].flatten(), torch.from_numpy(images[0, :1024]))
    assert split.labels.tolist() == [3, 7] and split.class_names[3] == "c3"


def test_crop_flip_produces_shifted_windows_and_flips():
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = augment.random_crop_flip(images, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    flips = 0
    for i in range(64):
        windows = [padded[i, :, y:y + 32, x:x + 32] for y in range(9) for x in range(9)]
        plain = any(torch.equal(out[i], w) for w in windows)
        flipped = any(torch.equal(out[i], w.flip(-1)) for w in windows)
        assert plain or flipped
        flips += flipped and not plain
    assert 15 < flips < 50  # about half are flipped


def test_crop_flip_is_reproducible_from_the_generator_seed():
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    a = augment.random_crop_flip(images, torch.Generator().manual_seed(5))
    b = augment.random_crop_flip(images, torch.Generator().manual_seed(5))
    c = augment.random_crop_flip(images, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_normalize_matches_torchvision():
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    ours = augment.Normalize(mean, std, "cpu")(images)
    ref = torch.stack([transforms.Normalize(mean, std)(img.float() / 255) for img in images])
    assert torch.allclose(ours, ref, atol=1e-5)


def test_device_loader_visits_every_sample_once_per_epoch():
    images = torch.randint(0, 256, (130, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(130)
    loader = DeviceLoader(images, labels, 32, device="cpu", mean=(0.5,) * 3, std=(0.5,) * 3, train=True,
                          generator=torch.Generator().manual_seed(0))
    seen = torch.cat([y for _, y in loader])
    assert len(loader) == 5 and sorted(seen.tolist()) == list(range(130))
    second = torch.cat([y for _, y in loader])
    assert not torch.equal(seen, second)  # reshuffled every epoch
    batch, _ = next(iter(loader))
    assert batch.dtype == torch.float32 and batch.shape == (32, 3, 32, 32)


def test_eval_loader_keeps_order_and_pixels():
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    loader = DeviceLoader(images, torch.arange(10), 4, device="cpu", mean=(0.0,) * 3, std=(1.0,) * 3, train=False)
    out = torch.cat([x for x, _ in loader])
    assert torch.allclose(out * 255, images.float(), atol=1e-3)


def test_subset_missing_classes_still_maps_every_superclass(tmp_path):
    base = synthetic.write(tmp_path, 100, n_train=1000, n_test=200)
    small = cifar.load_split(cifar.CIFAR100, base, train=False).subset(30, seed=1)
    assert len(set(small.labels.tolist())) < 100
    assert small.coarse_of_fine.tolist() == [k // 5 for k in range(100)]
