"""Malformed CIFAR folders and archives: each is one line on stderr, exit code 2, and nothing half-written.

The fixtures are the synthetic dataset (written in the official layout) with one file edited with pickle, so
the files look like the real ones except for the one fault under test.
"""
import dataclasses
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from cifar_lab.cli import main
from cifar_lab.data import cifar, synthetic

N_TRAIN, N_TEST = 200, 50


@pytest.fixture(scope="module")
def clean10(tmp_path_factory) -> Path:
    """A folder holding cifar-10-batches-py (five train batches of 40 images, a test batch of 50)."""
    return synthetic.write(tmp_path_factory.mktemp("gen10"), 10, N_TRAIN, N_TEST)


@pytest.fixture(scope="module")
def clean100(tmp_path_factory) -> Path:
    """A folder holding cifar-100-python (100 classes, 20 superclasses)."""
    return synthetic.write(tmp_path_factory.mktemp("gen100"), 100, N_TRAIN, N_TEST)


# --- fixture helpers ---------------------------------------------------------------------------------------

def rewrite(path: Path, edit) -> None:
    """Replace a pickle file with `edit(record)`, the record read with the official bytes keys."""
    with open(path, "rb") as handle:
        record = pickle.load(handle, encoding="bytes")
    with open(path, "wb") as handle:
        pickle.dump(edit(record), handle, protocol=2)


def changed(**changes):
    """An edit that sets (or, with None, removes) bytes keys of a record."""
    def edit(record: dict) -> dict:
        for key, value in changes.items():
            new = value(record) if callable(value) else value
            record.pop(key.encode(), None)
            if new is not None:
                record[key.encode()] = new
        return record
    return edit


def first(n: int, keys: tuple[str, ...]):
    """An edit that keeps the first n samples of a batch (images and every label list)."""
    def edit(record: dict) -> dict:
        for key in ("data", *keys):
            record[key.encode()] = record[key.encode()][:n]
        return record
    return edit


def set_label(index: int, value: int, key: str = "labels"):
    def edit(record: dict) -> dict:
        record[key.encode()][index] = value
        return record
    return edit


def rename_key(old: str, new: str):
    def edit(record: dict) -> dict:
        record[new.encode()] = record.pop(old.encode())
        return record
    return edit


def pack(base: Path, spec: cifar.CifarSpec, out_dir: Path) -> tuple[Path, str]:
    """The dataset folder under `base` as the official archive would hold it, and the archive's MD5."""
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / spec.archive
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(base / spec.folder, arcname=spec.folder)
    return archive, cifar.md5sum(archive)


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, command: str, *fragments: str) -> None:
    assert code == 2, err
    assert err.endswith("\n") and len(err.splitlines()) == 1, err
    assert err.startswith(f"cifar-lab {command}: error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


# --- the faults --------------------------------------------------------------------------------------------

LABELS100 = ("fine_labels", "coarse_labels")


@dataclasses.dataclass(frozen=True)
class Fault:
    id: str
    dataset: str            # cifar10 or cifar100
    file: str               # the file that is edited (and that the message must name)
    edit: object
    says: str               # what the message must say about it

    @property
    def spec(self) -> cifar.CifarSpec:
        return cifar.SPECS[self.dataset]


FAULTS = [
    Fault("batch-is-a-list", "cifar10", "data_batch_2", lambda record: list(record.values()), "holds a list"),
    Fault("batch-is-an-array", "cifar10", "test_batch", lambda record: np.zeros(3), "holds a ndarray"),
    Fault("label-too-large", "cifar10", "data_batch_1", set_label(0, 10), "outside 0-9"),
    Fault("label-negative", "cifar10", "test_batch", set_label(3, -1), "outside 0-9"),
    Fault("labels-not-integers", "cifar10", "data_batch_5", changed(labels=lambda r: ["cat"] * 40),
          "not a list of integer labels"),
    Fault("fewer-labels-than-images", "cifar10", "data_batch_4",
          changed(labels=lambda r: r[b"labels"][:-1]), "has 40 images but 39 'labels'"),
    Fault("images-not-uint8", "cifar10", "data_batch_1", changed(data=lambda r: r[b"data"].astype(np.int64)),
          "not N x 3072 uint8"),
    Fault("images-wrong-width", "cifar10", "data_batch_3", changed(data=lambda r: r[b"data"][:, :3000]),
          "shape (40, 3000)"),
    Fault("images-flat", "cifar10", "test_batch", changed(data=lambda r: r[b"data"].reshape(-1)),
          "not N x 3072 uint8"),
    Fault("no-images", "cifar10", "data_batch_2", changed(data=None), "has no 'data'"),
    Fault("meta-without-names", "cifar10", "batches.meta", changed(label_names=None), "has no 'label_names'"),
    Fault("meta-is-a-list", "cifar10", "batches.meta", lambda record: [b"cat", b"dog"], "holds a list"),
    Fault("short-train-batch", "cifar10", "data_batch_3", first(9, ("labels",)),
          "holds 9 images but batches.meta states 40 per batch"),
    Fault("cifar100-meta-without-fine-names", "cifar100", "meta", changed(fine_label_names=None),
          "has no 'fine_label_names'"),
    Fault("cifar100-meta-without-coarse-names", "cifar100", "meta", changed(coarse_label_names=None),
          "has no 'coarse_label_names'"),
    Fault("cifar10-keys-in-cifar100", "cifar100", "train", rename_key("fine_labels", "labels"),
          "has 'labels' but no 'fine_labels': it is a cifar10 file"),
    Fault("coarse-label-too-large", "cifar100", "test", set_label(0, 20, "coarse_labels"), "outside 0-19"),
    Fault("fewer-coarse-labels", "cifar100", "train", changed(coarse_labels=lambda r: r[b"coarse_labels"][:5]),
          "has 200 images but 5 'coarse_labels'"),
]


@pytest.fixture
def faulty_root(request, tmp_path, clean10, clean100) -> tuple[Path, Fault]:
    """A copy of the clean dataset with the fault applied: (root holding the dataset folder, the fault)."""
    fault: Fault = request.param
    root = tmp_path / "root"
    shutil.copytree(clean10 if fault.dataset == "cifar10" else clean100, root)
    rewrite(root / fault.spec.folder / fault.file, fault.edit)
    return root, fault


def train_argv(dataset: str, root: Path, out: Path) -> list:
    preset = "cifar10-simplecnn" if dataset == "cifar10" else "cifar100-resnet18"
    return ["train", "--preset", preset, "--set", f"data_root={root}", "download=false", "epochs=1", "--out", out]


@pytest.mark.parametrize("faulty_root", FAULTS, ids=[f.id for f in FAULTS], indirect=True)
def test_training_on_a_malformed_folder_is_one_line_and_writes_nothing(faulty_root, tmp_path, capsys):
    root, fault = faulty_root
    out = tmp_path / "run"
    code, _, err = cli(capsys, *train_argv(fault.dataset, root, out))
    folder = root / fault.spec.folder
    assert_one_line_error(code, err, "train", f"{folder / fault.file} ", fault.says,
                          f"delete {folder} and run `cifar-lab data download {fault.dataset} --root {root}`")
    # The data is built before the run folder is made: nothing half-written.
    assert not (out / "config.json").exists() and not out.exists()


@pytest.mark.parametrize("faulty_root", FAULTS, ids=[f.id for f in FAULTS], indirect=True)
def test_data_download_checks_an_extracted_folder_before_nothing_to_do(faulty_root, capsys):
    root, fault = faulty_root
    before = sorted(p.name for p in root.iterdir())
    code, out, err = cli(capsys, "data", "download", fault.dataset, "--root", root)
    assert_one_line_error(code, err, "data", f"{root / fault.spec.folder / fault.file} ", fault.says,
                          f"cifar-lab data download {fault.dataset} --root {root}")
    assert "nothing to do" not in out
    # Reported, not fetched over and not deleted: the user decides.
    assert sorted(p.name for p in root.iterdir()) == before == [fault.spec.folder]


@pytest.mark.parametrize("faulty_root", FAULTS, ids=[f.id for f in FAULTS], indirect=True)
def test_archive_with_matching_md5_but_malformed_files_is_removed(faulty_root, tmp_path, capsys):
    source, fault = faulty_root
    archive, md5 = pack(source, fault.spec, tmp_path / "mirror")
    root = tmp_path / "fresh"
    code, out, err = cli(capsys, "data", "download", fault.dataset, "--root", root, "--url", archive.as_uri(),
                         "--md5", md5)
    assert_one_line_error(code, err, "data", f"matches its MD5 but {fault.spec.folder}/{fault.file} in it",
                          fault.says, "was removed and nothing was installed",
                          f"cifar-lab data download {fault.dataset} --root {root}")
    assert list(root.iterdir()) == []  # no archive, no dataset folder, no .extract-* staging folder


def test_archive_already_in_root_with_malformed_files_is_removed(clean10, tmp_path, capsys):
    source = tmp_path / "source"
    shutil.copytree(clean10, source)
    rewrite(source / "cifar-10-batches-py" / "batches.meta", changed(label_names=None))
    root = tmp_path / "root"
    archive, md5 = pack(source, cifar.CIFAR10, root)  # put where `download` looks before fetching
    code, _, err = cli(capsys, "data", "download", "cifar10", "--root", root, "--md5", md5)
    assert_one_line_error(code, err, "data", "batches.meta in it has no 'label_names'")
    assert list(root.iterdir()) == []


def test_download_function_rejects_malformed_archive(clean100, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(clean100, source)
    rewrite(source / "cifar-100-python" / "train", rename_key("fine_labels", "labels"))
    archive, md5 = pack(source, cifar.CIFAR100, tmp_path / "mirror")
    root = tmp_path / "root"
    with pytest.raises(cifar.DataError, match="it is a cifar10 file"):
        cifar.download(cifar.CIFAR100, root, url=archive.as_uri(), md5=md5, progress=False)
    assert list(root.iterdir()) == []


# --- counts: exact for the official archive, consistent elsewhere ------------------------------------------

def official(monkeypatch, spec: cifar.CifarSpec, archive: Path, md5: str) -> cifar.CifarSpec:
    """Make `archive` the official one for `spec` (sized like the synthetic set), as the CLI sees it."""
    stand_in = dataclasses.replace(spec, url=archive.as_uri(), md5=md5, train_size=N_TRAIN, test_size=N_TEST)
    monkeypatch.setitem(cifar.SPECS, spec.name, stand_in)
    return stand_in


def test_official_folder_with_a_train_split_of_the_wrong_size_is_rejected(clean100, tmp_path, capsys,
                                                                           monkeypatch):
    archive, md5 = pack(clean100, cifar.CIFAR100, tmp_path / "mirror")
    official(monkeypatch, cifar.CIFAR100, archive, md5)
    root = tmp_path / "root"
    code, out, err = cli(capsys, "data", "download", "cifar100", "--root", root)
    assert code == 0 and f"{N_TRAIN} train + {N_TEST} test" in out, err
    folder = root / "cifar-100-python"
    assert (folder / cifar.OFFICIAL_MARKER).is_file()

    # One train file with 149 images, self-consistent: only the official count can tell.
    rewrite(folder / "train", first(149, LABELS100))
    code, out, err = cli(capsys, "data", "download", "cifar100", "--root", root)
    assert_one_line_error(code, err, "data", f"{folder} holds 149 train images; the official cifar100 archive "
                                             f"has {N_TRAIN}", f"delete {folder}")
    run = tmp_path / "run"
    code, _, err = cli(capsys, *train_argv("cifar100", root, run))
    assert_one_line_error(code, err, "train", "holds 149 train images")
    assert not run.exists()


def test_official_archive_with_the_wrong_count_is_not_installed(clean10, tmp_path, capsys, monkeypatch):
    source = tmp_path / "source"
    shutil.copytree(clean10, source)
    rewrite(source / "cifar-10-batches-py" / "test_batch", first(49, ("labels",)))
    archive, md5 = pack(source, cifar.CIFAR10, tmp_path / "mirror")
    official(monkeypatch, cifar.CIFAR10, archive, md5)
    root = tmp_path / "root"
    code, _, err = cli(capsys, "data", "download", "cifar10", "--root", root)
    assert_one_line_error(code, err, "data", "cifar-10-batches-py/ in it holds 49 test images; the official "
                                             f"cifar10 archive has {N_TEST}")
    assert list(root.iterdir()) == []


def test_official_archive_with_the_wrong_class_count_is_not_installed(clean10, tmp_path, capsys, monkeypatch):
    source = tmp_path / "source"
    shutil.copytree(clean10, source)
    rewrite(source / "cifar-10-batches-py" / "batches.meta",
            changed(label_names=lambda r: r[b"label_names"] + [b"extra"]))
    archive, md5 = pack(source, cifar.CIFAR10, tmp_path / "mirror")
    official(monkeypatch, cifar.CIFAR10, archive, md5)
    root = tmp_path / "root"
    code, _, err = cli(capsys, "data", "download", "cifar10", "--root", root)
    assert_one_line_error(code, err, "data", "batches.meta in it names 11 classes")
    assert list(root.iterdir()) == []


def test_unofficial_folders_may_have_any_consistent_size(clean100, tmp_path):
    """Without the official marker (the synthetic set, a hand-made folder) only consistency is checked."""
    root = tmp_path / "root"
    shutil.copytree(clean100, root)
    rewrite(root / "cifar-100-python" / "train", first(149, LABELS100))
    assert len(cifar.load_split(cifar.CIFAR100, root, train=True)) == 149


def test_batches_meta_states_the_batch_size(clean10, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(clean10, root)
    rewrite(root / "cifar-10-batches-py" / "batches.meta", changed(num_cases_per_batch=10000))
    with pytest.raises(cifar.DataError, match="data_batch_1 holds 40 images but batches.meta states 10000"):
        cifar.load_split(cifar.CIFAR10, root, train=True)


def test_uneven_synthetic_split_is_accepted(tmp_path):
    base = synthetic.write(tmp_path, 10, 149, 31)  # batches of 30, 30, 30, 30, 29
    assert len(cifar.load_split(cifar.CIFAR10, base, train=True)) == 149


# --- what still works --------------------------------------------------------------------------------------

def test_clean_folder_is_checked_and_reported_present(clean10, tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(clean10, root)
    code, out, err = cli(capsys, "data", "download", "cifar10", "--root", root)
    assert code == 0 and err == ""
    assert "nothing to do" in out and f"{N_TRAIN} train + {N_TEST} test images, 10 classes" in out


def test_malformed_synthetic_folder_says_how_to_write_it_again(tmp_path, capsys):
    base = synthetic.write(tmp_path / "data", 10, N_TRAIN, N_TEST)
    rewrite(base / "cifar-10-batches-py" / "data_batch_1", set_label(0, 99))
    run = tmp_path / "run"
    code, _, err = cli(capsys, "train", "--preset", "cifar10-simplecnn", "--set", "dataset=synthetic",
                       f"data_root={tmp_path / 'data'}", f"synthetic_train_size={N_TRAIN}",
                       f"synthetic_test_size={N_TEST}", "epochs=1", "--out", run)
    assert_one_line_error(code, err, "train", "data_batch_1 has 'labels' from", f"delete {base};")
    assert not run.exists()


# --- ImageNet-style data no run can learn from: refused before the run folder is made ----------------------

def jpeg_tree(root: Path, classes: int = 3) -> Path:
    from cifar_lab.data import synthetic_jpeg

    return synthetic_jpeg.write_tree(root, classes, train_per_class=3, val_per_class=2, size=24)


def unreadable(split: str):
    def edit(root: Path) -> None:
        for path in (root / split).rglob("*.JPEG"):
            path.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return edit


def empty_class(root: Path) -> None:
    for path in (root / "train" / "n99000001").iterdir():
        path.unlink()


IMAGENET_FAULTS = {
    "every-train-image-unreadable": (unreadable("train"), ["no image of the train split of", "can be decoded",
                                                           "all 9 tried"]),
    "every-val-image-unreadable": (unreadable("val"), ["no image of the validation split of", "all 6 tried"]),
    "empty-class-folder": (empty_class, ["train/n99000001 holds no image files", "remove the folder"]),
    "single-class": (None, ["has a single class (n99000000)", "at least two classes"]),
}


@pytest.mark.parametrize("fault", IMAGENET_FAULTS)
def test_unusable_imagenet_tree_is_refused_before_the_run(tmp_path, capsys, fault):
    edit, says = IMAGENET_FAULTS[fault]
    root = jpeg_tree(tmp_path / "tree", classes=1 if fault == "single-class" else 3)
    if edit is not None:
        edit(root)
    out = tmp_path / "run"
    code, _, err = cli(capsys, "train", "--preset", "cifar10-simplecnn", "--set", "dataset=imagenet1k",
                       f"imagenet_root={root}", "image_size=32", "epochs=1", "batch_size=4", "num_workers=0",
                       "--out", out)
    assert_one_line_error(code, err, "train", *says)
    assert not out.exists()


def test_a_split_with_some_readable_images_still_trains(tmp_path):
    from cifar_lab.config import TrainConfig
    from cifar_lab.data import registry

    root = jpeg_tree(tmp_path / "tree")
    victims = sorted((root / "train").rglob("*.JPEG"))[:-1]   # all but one train image unreadable
    for path in victims:
        path.write_bytes(b"")
    data = registry.build(TrainConfig(dataset="imagenet1k", imagenet_root=str(root), image_size=16, batch_size=4,
                                      num_workers=0), "cpu")
    assert sum(len(labels) for _, labels in data.train_loader) == 1 and data.info["skipped_files"] == 8


def hf_dataset(path: Path, train_labels, val_labels, feature) -> Path:
    datasets = pytest.importorskip("datasets")
    import io

    from PIL import Image

    def image():
        buffer = io.BytesIO()
        Image.new("RGB", (24, 24), (200, 40, 40)).save(buffer, format="JPEG")
        return {"bytes": buffer.getvalue(), "path": None}

    features = datasets.Features({"image": datasets.Image(), "label": feature})
    split = {name: datasets.Dataset.from_dict({"image": [image() for _ in labels], "label": labels},
                                              features=features)
             for name, labels in (("train", train_labels), ("validation", val_labels))}
    datasets.DatasetDict(split).save_to_disk(str(path))
    return path


def hf_label_cases():
    datasets = pytest.importorskip("datasets")
    return {
        "negative": ([0, 1, -1, 1], [0, 1], datasets.Value("int64"), "[train] has label -1, outside 0-1"),
        "beyond-the-class-count": ([0, 1, 0, 1], [0, 2], datasets.Value("int64"),
                                   "[validation] has label 2, outside 0-1"),
        "unlabelled-rows": ([0, 1, 0, 1], [0, -1], datasets.ClassLabel(names=["cat", "dog"]),
                            "[validation] has label -1, outside 0-1"),   # -1: the hub's "no label"
        "strings": (["cat", "dog", "cat", "dog"], ["cat", "dog"], datasets.Value("string"),
                    "[train] has labels of type string, not class indices"),
        # An integer column with a missing value comes back as floats with a NaN; in the first split, whose
        # largest label gives the class count, that NaN must not reach int() before the check for it.
        "none-in-the-first-split": ([0, 1, None, 1], [0, 1], datasets.Value("int64"),
                                    "[train] has rows without a label"),
        "none-in-the-second-split": ([0, 1, 0, 1], [None, 1], datasets.Value("int64"),
                                     "[validation] has rows without a label"),
    }


@pytest.mark.parametrize("case", ["negative", "beyond-the-class-count", "unlabelled-rows", "strings",
                                  "none-in-the-first-split", "none-in-the-second-split"])
def test_hugging_face_labels_that_are_not_class_indices_are_refused_before_the_run(tmp_path, capsys, case):
    """Mutant caught (none-in-the-first-split): `check_hf_labels` takes the class count from `int(first.max())`
    before it checks for rows without a label, so one None label ends in a ValueError traceback."""
    train_labels, val_labels, feature, says = hf_label_cases()[case]
    path = hf_dataset(tmp_path / "hf", train_labels, val_labels, feature)
    capsys.readouterr()  # the library's progress bars while the fixture is saved
    out = tmp_path / "run"
    code, _, err = cli(capsys, "train", "--preset", "cifar10-simplecnn", "--set", "dataset=imagenet1k-hf",
                       f"hf_dataset={path}", "image_size=32", "epochs=1", "batch_size=2", "num_workers=0",
                       "--out", out)
    assert_one_line_error(code, err, "train", says, "save the dataset again")
    assert not out.exists()  # no config.json, no environment.json


# --- Fashion-MNIST: damaged gzip files -------------------------------------------------------------------

def gzipped_idx(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes (magic 0x080N, one big-endian size per dimension), gzipped as published."""
    import gzip
    import struct

    header = struct.pack(">I", 0x00000800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def flip(offset: int):
    def edit(blob: bytes) -> bytes:
        damaged = bytearray(blob)
        damaged[offset] ^= 0xFF
        return bytes(damaged)
    return edit


def first_offset_raising(blob: bytes, error: type) -> int:
    """The first byte of the deflate stream (after the 10-byte gzip header) whose flip makes `error`."""
    import gzip

    for offset in range(10, len(blob) - 8):
        try:
            gzip.decompress(flip(offset)(blob))
        except error:
            return offset
        except Exception:
            continue
    raise AssertionError(f"no single flipped byte raises {error.__name__}")


def flipped_deflate(blob: bytes) -> bytes:
    import zlib

    return flip(first_offset_raising(blob, zlib.error))(blob)


# Each damage, and what Python's gzip module raises for it (checked, so each case is the fault it is named for).
GZIP_FAULTS = {
    "flipped-deflate-bytes": (flipped_deflate, "error"),        # zlib.error: invalid block type, distance, ...
    "crc-mismatch": (lambda blob: flip(len(blob) - 8)(blob), "BadGzipFile"),     # CRC32 trailer
    "length-mismatch": (lambda blob: flip(len(blob) - 4)(blob), "BadGzipFile"),  # ISIZE trailer
    "truncated-stream": (lambda blob: blob[:len(blob) // 2], "EOFError"),
    "not-gzip": (lambda blob: b"PK\x03\x04" + blob[4:], "BadGzipFile"),
}


@pytest.mark.parametrize("fault", GZIP_FAULTS)
@pytest.mark.parametrize("damaged", ["train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"])
def test_a_damaged_fashion_mnist_gzip_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, fault,
                                                                    damaged):
    """Mutant caught: `fashion_mnist.read_idx` catches only OSError and EOFError, so a flipped byte in the
    compressed data raises zlib.error, which reaches the user as a traceback with exit status 1."""
    import gzip

    from cifar_lab.data import fashion_mnist

    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for train, n in ((True, 20), (False, 10)):
        image_file, label_file = fashion_mnist.FILES[train]
        (folder / image_file).write_bytes(gzipped_idx(rng.integers(1, 256, size=(n, 28, 28))))
        (folder / label_file).write_bytes(gzipped_idx(np.arange(n) % 10))
    edit, raised = GZIP_FAULTS[fault]
    target = folder / damaged
    target.write_bytes(edit(target.read_bytes()))
    with pytest.raises(Exception) as direct:
        gzip.decompress(target.read_bytes())
    assert type(direct.value).__name__ == raised, repr(direct.value)

    monkeypatch.setenv(fashion_mnist.DIR_VARIABLE, str(folder))
    out, empty = tmp_path / "run", tmp_path / "empty"
    code, _, err = cli(capsys, "train", "--preset", "fmnist-simplecnn", "--set", f"data_root={empty}",
                       "download=false", "epochs=1", "--out", out)
    assert_one_line_error(code, err, "train", f"{target} cannot be read as a gzipped IDX file", raised,
                          "apt-get install --reinstall dataset-fashion-mnist")
    assert not out.exists() and not empty.exists()


# --- the synthetic set: class counts, seeds, and what a killed writer leaves -------------------------------

@pytest.mark.parametrize("classes", [11, 12, 37, 99])
def test_synthetic_class_counts_that_are_not_multiples_of_five_load(tmp_path, classes):
    base = synthetic.write(tmp_path, classes, 2 * classes, classes)
    train = cifar.load_split(cifar.CIFAR100, base, train=True)
    groups = -(-classes // 5)
    assert len(train.class_names) == classes and len(train.coarse_names) == groups
    assert train.coarse_of_fine.tolist() == [k // 5 for k in range(classes)]


def test_synthetic_twelve_classes_train_from_the_cli(tmp_path, capsys):
    root, out = tmp_path / "data", tmp_path / "run"
    code, _, err = cli(capsys, "data", "synthetic", "--classes", "12", "--root", root, "--train-size", "60",
                       "--test-size", "24")
    assert code == 0, err
    code, _, err = cli(capsys, "train", "--preset", "cifar10-simplecnn", "--set", "dataset=synthetic",
                       "num_classes=12", f"data_root={root}", "synthetic_train_size=60", "synthetic_test_size=24",
                       "epochs=1", "--out", out)
    assert code == 0, err
    assert (out / "summary.json").is_file()


@pytest.mark.parametrize("argv, says", [
    (["--classes", "1000"], "--classes=1000: the synthetic dataset has 2 to 100 classes"),
    (["--classes", "1"], "choose --classes between 2 and 100"),
    (["--seed", "-1"], "--seed must be 0 or more, got -1"),
])
def test_data_synthetic_out_of_range_is_one_line_and_writes_nothing(tmp_path, capsys, argv, says):
    root = tmp_path / "data"
    code, _, err = cli(capsys, "data", "synthetic", "--root", root, "--train-size", "100", "--test-size", "50",
                       *argv)
    assert_one_line_error(code, err, "data", says)
    assert not root.exists()


def test_training_on_a_thousand_synthetic_classes_is_refused(tmp_path, capsys):
    root, out = tmp_path / "data", tmp_path / "run"
    code, _, err = cli(capsys, "train", "--preset", "cifar10-simplecnn", "--set", "dataset=synthetic",
                       "num_classes=1000", f"data_root={root}", "epochs=1", "--out", out)
    assert_one_line_error(code, err, "train", "num_classes=1000", "between 2 and 100")
    assert not out.exists() and not root.exists()


def test_staging_left_by_a_killed_data_synthetic_is_removed_by_the_next_run(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    root = tmp_path / "data"
    command = [sys.executable, "-m", "cifar_lab", "data", "synthetic", "--root", str(root), "--train-size", "60000",
               "--test-size", "10"]
    writer = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (root.is_dir() and any(p.name.startswith(".synthetic-") for p in root.iterdir())):
        assert writer.poll() is None and time.monotonic() < deadline, "the writer ended before staging"
        time.sleep(0.01)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    staging = [p for p in root.iterdir() if p.name.startswith(".synthetic-")]
    assert staging, "the SIGKILL left no staging folder to clean"

    # A writer of another folder that is alive keeps its staging folder.
    alive = root / f".synthetic-c10-n9-9-s0.pid{os.getpid()}.abcd"
    alive.mkdir()
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(p.name for p in root.iterdir()) == sorted(["synthetic-c10-n60000-10-s0", alive.name])
    assert len(cifar.load_split(cifar.CIFAR10, root / "synthetic-c10-n60000-10-s0", train=True)) == 60000
