"""Fashion-MNIST: the IDX reader, where the files come from, what the models see, the superclass view, the
augmentation, the benchmark table's networks, and a short training run on the real files."""
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from cifar_lab import models, presets
from cifar_lab.cli import main
from cifar_lab.config import TrainConfig, validate
from cifar_lab.data import fashion_mnist, registry
from cifar_lab.engine.evaluate import superclass_accuracy
from cifar_lab.errors import DataError, UsageError
from data_files import crop_windows, key, served, write_fashion_mnist, write_idx  # tests/ is on sys.path

N_TRAIN, N_TEST = 120, 40


def fake_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose every pixel is at least 1 (so a zero can only be padding) and their labels 0-9."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(1, 256, size=(n, 28, 28), dtype=np.uint8)
    return images, labels.astype(np.uint8)


@pytest.fixture
def idx_folder(tmp_path, monkeypatch) -> Path:
    """Four IDX files in the official layout, served as the Debian package's folder."""
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for train, n, seed in ((True, N_TRAIN, 0), (False, N_TEST, 1)):
        images, labels = fake_images(n, seed)
        image_file, label_file = fashion_mnist.FILES[train]
        write_idx(folder / image_file, images)
        write_idx(folder / label_file, labels)
    monkeypatch.setenv(fashion_mnist.DIR_VARIABLE, str(folder))
    return folder


def config_for(tmp_path, **changes) -> TrainConfig:
    config = TrainConfig(dataset="fashion_mnist", data_root=str(tmp_path / "empty"), download=False,
                         model="simple_cnn", batch_size=32, eval_batch_size=64, progress=False)
    for key, value in changes.items():
        setattr(config, key, value)
    return validate(config)


# --- the IDX reader --------------------------------------------------------------------------------------------

def test_idx_reader_returns_the_written_arrays(tmp_path):
    images, labels = fake_images(7, 3)
    write_idx(tmp_path / "i.gz", images)
    write_idx(tmp_path / "l.gz", labels)
    assert np.array_equal(fashion_mnist.read_idx(tmp_path / "i.gz"), images)
    assert np.array_equal(fashion_mnist.read_idx(tmp_path / "l.gz"), labels)


def test_idx_reader_rejects_a_wrong_magic_number_and_a_truncated_file(tmp_path):
    with gzip.open(tmp_path / "bad.gz", "wb") as handle:
        handle.write(struct.pack(">II", 0x00000D03, 1) + bytes(4))
    with pytest.raises(DataError, match="magic number"):
        fashion_mnist.read_idx(tmp_path / "bad.gz")
    with gzip.open(tmp_path / "short.gz", "wb") as handle:
        handle.write(struct.pack(">IIII", 0x00000803, 2, 28, 28) + bytes(28 * 28))  # one image of two
    with pytest.raises(DataError, match="truncated"):
        fashion_mnist.read_idx(tmp_path / "short.gz")


def test_official_files_are_read_when_installed():
    folder = Path(fashion_mnist.DEBIAN_DIR)
    if not fashion_mnist.has_files(folder):
        pytest.skip(f"the package {fashion_mnist.APT_PACKAGE} is not installed")
    images, labels = fashion_mnist.read_split(folder, train=False)
    assert images.shape == (10_000, 28, 28) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == [1000] * 10  # the official test split: 1,000 per class


# --- where the data comes from -----------------------------------------------------------------------------

def test_missing_data_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(fashion_mnist.DIR_VARIABLE, str(tmp_path / "no-debian-files"))
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "run"
    code = main(["train", "--preset", "fmnist-simplecnn", "--set", "epochs=2", f"data_root={empty}",
                 "download=false", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "apt-get install dataset-fashion-mnist" in err and "download=true" in err
    assert not out.exists()
    assert list(empty.iterdir()) == []


def test_a_failed_download_is_one_line_and_leaves_nothing_behind(tmp_path, monkeypatch, capsys):
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setenv(fashion_mnist.DIR_VARIABLE, str(tmp_path / "no-debian-files"))
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "run"
    code = main(["train", "--preset", "fmnist-simplecnn", "--set", f"data_root={empty}", "download=true",
                 "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "the download failed" in err
    assert not out.exists() and list(empty.iterdir()) == []


def test_debian_folder_is_read_and_named_in_the_summary(idx_folder, tmp_path):
    from cifar_lab.engine import train

    config = config_for(tmp_path, epochs=1, save_checkpoints=False)
    result = train(config, tmp_path / "run")
    summary = result.summary
    assert summary["dataset"] == "fashion_mnist"
    assert summary["data_source"] == str(idx_folder)
    assert summary["train_samples"] == N_TRAIN and summary["test_samples"] == N_TEST
    assert result.data.info["route"] == "debian"


def test_torchvision_copy_in_data_root_is_the_second_route(tmp_path, monkeypatch):
    monkeypatch.setenv(fashion_mnist.DIR_VARIABLE, str(tmp_path / "no-debian-files"))
    raw = fashion_mnist.torchvision_raw(tmp_path / "data")
    raw.mkdir(parents=True)
    for train, n, seed in ((True, N_TRAIN, 0), (False, N_TEST, 1)):
        images, labels = fake_images(n, seed)
        for name, array in zip(fashion_mnist.FILES[train], (images, labels)):
            write_idx(tmp_path / name, array)
            (raw / name[:-3]).write_bytes(gzip.decompress((tmp_path / name).read_bytes()))  # as torchvision keeps them
    data = registry.build(config_for(tmp_path, data_root=str(tmp_path / "data")), "cpu")
    assert data.info["route"] == "torchvision" and data.info["source"] == str(raw)
    assert len(data.train_split) == N_TRAIN and len(data.test_split) == N_TEST
    assert torch.equal(data.test_split.images[:, 0, 2:30, 2:30], torch.from_numpy(fake_images(N_TEST, 1)[0]))


# --- what the models see -----------------------------------------------------------------------------------

def test_images_are_padded_to_32_with_zeros_and_grey_repeated(idx_folder, tmp_path):
    data = registry.build(config_for(tmp_path), "cpu")
    images = data.train_split.images
    assert images.shape == (N_TRAIN, 3, 32, 32)
    raw, _ = fashion_mnist.read_split(idx_folder, train=True)
    assert torch.equal(images[:, 0, 2:30, 2:30], raw)                     # the image, centred
    assert torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 0], images[:, 2])
    border = images.clone()
    border[:, :, 2:30, 2:30] = 0
    assert int(border.max()) == 0                                          # 2 px of zeros all round
    assert data.resolution == 32 and data.source_size == 32
    batch, _ = next(iter(data.test_loader))
    assert batch.shape[1:] == (3, 32, 32)


def test_native_layout_for_the_benchmark_networks(idx_folder, tmp_path):
    data = registry.build(config_for(tmp_path, model="tf_convnet", input_size=28, image_channels=1,
                                     normalization="unit"), "cpu")
    batch, _ = next(iter(data.test_loader))
    assert batch.shape[1:] == (1, 28, 28)
    raw, _ = fashion_mnist.read_split(idx_folder, train=False)
    assert torch.allclose(batch[:, 0], raw[:len(batch)].float() / 255)    # scaled to [0, 1], nothing else
    assert data.mean == (0.0,) and data.std == (1.0,)


def test_a_grey_model_on_colour_settings_is_a_one_line_error(tmp_path):
    with pytest.raises(UsageError, match="image_channels=1 input_size=28"):
        config_for(tmp_path, model="tf_convnet")
    with pytest.raises(UsageError, match="grey"):
        validate(TrainConfig(dataset="cifar10", model="tf_convnet", input_size=28, image_channels=1))


def test_normalisation_statistics_come_from_the_train_split(idx_folder, tmp_path):
    data = registry.build(config_for(tmp_path), "cpu")
    train = data.train_split.images[:, 0].double() / 255
    assert data.mean[0] == pytest.approx(float(train.mean()), abs=1e-4)
    assert data.std[0] == pytest.approx(float(train.std()), abs=1e-4)
    test = data.test_split.images[:, 0].double() / 255
    assert abs(float(test.mean()) - data.mean[0]) > 1e-4  # the test split's own mean differs: not used


def test_subsets_cut_both_splits(idx_folder, tmp_path):
    data = registry.build(config_for(tmp_path, train_subset=50, test_subset=20), "cpu")
    assert len(data.train_split) == 50 and len(data.test_split) == 20
    assert data.coarse_of_fine.tolist() == list(fashion_mnist.COARSE_OF_FINE)


# --- the superclass view -----------------------------------------------------------------------------------

def test_superclass_map_is_the_documented_one():
    by_name = dict(zip(fashion_mnist.CLASS_NAMES, fashion_mnist.COARSE_OF_FINE))
    groups = {coarse: sorted(n for n, c in by_name.items() if c == index)
              for index, coarse in enumerate(fashion_mnist.COARSE_NAMES)}
    assert groups == {"tops": sorted(["T-shirt/top", "Pullover", "Coat", "Shirt", "Dress"]),
                      "trousers": ["Trouser"], "footwear": sorted(["Sandal", "Sneaker", "Ankle boot"]),
                      "bags": ["Bag"]}


def test_superclass_accuracy_counts_a_shirt_taken_for_a_coat_as_right():
    names = fashion_mnist.CLASS_NAMES
    confusion = torch.zeros(10, 10, dtype=torch.long)
    confusion[names.index("Shirt"), names.index("Coat")] = 3      # same superclass: tops
    confusion[names.index("Sandal"), names.index("Bag")] = 1      # footwear taken for a bag
    assert superclass_accuracy(confusion, fashion_mnist.coarse_map()) == pytest.approx(0.75)


# --- augmentation ------------------------------------------------------------------------------------------

@pytest.fixture
def one_garment(tmp_path, monkeypatch) -> Path:
    """IDX files whose training split is one random image (pixels 1-255, no symmetry) N_TRAIN times, served as
    the Debian package's folder: what a loader makes of it can be told apart from every flip and shift."""
    image = fake_images(1, 5)[0]
    folder = write_fashion_mnist(tmp_path / "fashion-mnist", np.repeat(image, N_TRAIN, axis=0),
                                 fake_images(N_TEST, 1)[0])
    monkeypatch.setenv(fashion_mnist.DIR_VARIABLE, str(folder))
    return tmp_path / "empty"


def preset_run(name: str, data_root, **sets):
    """The data of a run of preset `name` on the folder of `one_garment`, as the run builds it (a distillation
    preset's teacher, which its config must name, plays no part in the data)."""
    config = presets.resolve(name, {"data_root": str(data_root), "download": False, "num_workers": 0,
                                    "progress": False, **sets})
    return registry.build(config, "cpu", torch.Generator().manual_seed(0))


@pytest.mark.parametrize("loader", ["device", "torchvision"])
def test_the_runs_loader_flips_left_right_shifts_with_black_fill_and_never_turns_upside_down(one_garment, loader):
    """Through the loader a `fmnist-simplecnn` run builds: every training image is a crop of the stored image
    (28x28 padded to 32 with zeros) padded by 4 more zeros, or its mirror image left to right; both mirrored
    and shifted crops appear; none is upside down.

    Mutants: a vertical flip in the policy; the crop filling its border with the mean instead of black (0);
    the horizontal flip dropped; no augmentation on one route."""
    data = preset_run("fmnist-simplecnn", one_garment, loader=loader, batch_size=32)
    stored = data.train_split.images[0]
    windows = crop_windows(stored)
    assert key(stored.flip(-2)) not in windows          # upside down, the garment is none of the allowed images
    draws = [windows.get(key(image)) for image in torch.cat([served(data, 0), served(data, 1)])]
    assert None not in draws                            # each a pad-4 crop or its mirror: never upside down
    draws = draws[:N_TRAIN]
    flipped = sum(flip for _, _, flip in draws)
    assert 0.25 * N_TRAIN < flipped < 0.75 * N_TRAIN                      # about half mirrored
    shifts = {(dy, dx) for dy, dx, _ in draws}
    assert len(shifts) > 20 and {0, 8} <= {dy for dy, _ in shifts}        # shifted up to 4 px each way, 0-filled


def test_no_fmnist_preset_turns_a_garment_upside_down_or_distorts_it(one_garment):
    """Through the loader each `fmnist-*` preset builds (padded or native layout, 3 channels or 1): every
    training image is the stored image, a pad-4 crop of it or its mirror left to right - never upside down,
    rotated or recoloured, which would show the network garments the test split does not hold.

    Mutant: a Fashion-MNIST preset given a policy that is not label-preserving for clothing (a vertical flip,
    or `naivenet`'s rotation and colour jitter)."""
    for name in presets.names():
        if not name.startswith("fmnist-"):
            continue
        data = preset_run(name, one_garment)
        stored = data.train_split.images[0]
        windows = crop_windows(stored)
        assert key(stored.flip(-2)) not in windows, name   # upside down, the garment is none of the allowed images
        assert all(key(image) in windows for image in served(data, 0)), name


# --- the benchmark table's networks --------------------------------------------------------------------------

def test_tf_convnet_has_the_tutorial_architecture():
    conv1 = 5 * 5 * 1 * 32 + 32
    conv2 = 5 * 5 * 32 * 64 + 64
    dense = (7 * 7 * 64) * 1024 + 1024
    logits = 1024 * 10 + 10
    net = models.build("tf_convnet")
    assert models.count_parameters(net) == conv1 + conv2 + dense + logits == 3_274_634
    assert [m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)] == [0.4]
    x = torch.rand(4, 1, 28, 28)
    net.eval()
    assert net(x).shape == (4, 10)
    assert torch.allclose(net(x.expand(-1, 3, -1, -1)), net(x))  # a repeated grey image is the same image


def test_tf_convnet_preset_is_the_published_recipe():
    config = presets.resolve("fmnist-tf-convnet")
    assert (config.optimizer, config.lr, config.momentum, config.weight_decay, config.schedule) == \
        ("sgd", 0.001, 0.0, 0.0, "constant")
    assert (config.batch_size, config.augment, config.normalization) == (400, "none", "unit")
    assert (config.input_size, config.image_channels) == (28, 1)
    steps_per_epoch = 60_000 // config.batch_size
    assert config.epochs == 200_000 // steps_per_epoch == 1333


def test_mlp_256_128_100_layers():
    net = models.build("mlp_256_128_100")
    widths = [(m.in_features, m.out_features) for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [(784, 256), (256, 128), (128, 100), (100, 10)]


# --- the real files ----------------------------------------------------------------------------------------

def test_short_training_on_the_real_files_learns(tmp_path, monkeypatch):
    """One epoch (16 steps) on 2,000 real training images: well above chance (0.10) on 1,000 test images."""
    monkeypatch.delenv(fashion_mnist.DIR_VARIABLE, raising=False)
    if not fashion_mnist.has_files(Path(fashion_mnist.DEBIAN_DIR)):
        pytest.skip(f"the package {fashion_mnist.APT_PACKAGE} is not installed")
    from cifar_lab.engine import train

    config = presets.resolve("fmnist-simplecnn", {"epochs": 1, "train_subset": 2000, "test_subset": 1000,
                                                  "progress": False, "save_checkpoints": False, "device": "cpu"})
    summary = train(config).summary
    assert summary["final_acc"] > 0.3
    assert summary["data_source"] == fashion_mnist.DEBIAN_DIR and summary["test_samples"] == 1000
    assert summary["final_superclass_acc"] >= summary["final_acc"]


def test_chapter_one_class_balance_figure_and_count_sentence():
    """Chapter 1's class-balance figure shows each class's share of its split, and the Summary's count reads
    "N" only when every class holds N. Mutants caught: raw counts plotted as shares (no division by the split's
    size), a skewed split reported as one count."""
    from cifar_lab import plots
    from cifar_lab.book.notebook import images_per_class

    figure = plots.class_balance({"train": torch.tensor([0, 0, 0, 1]), "test": torch.tensor([0, 1])}, ["a", "b"])
    shares = [bar.get_height() for bar in figure.axes[0].patches]
    assert shares == pytest.approx([75.0, 25.0, 50.0, 50.0])
    assert images_per_class(torch.tensor([0, 1, 1, 0])) == "2"
    assert images_per_class(torch.tensor([0, 1, 1] + [2] * 1500)) == "1 to 1,500"
