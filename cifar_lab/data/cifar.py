"""CIFAR-10/100 in the official python-pickle layout: download, verify, extract, parse.

The same parser reads the real archives and the synthetic dataset (written in the same layout by
`cifar_lab.data.synthetic`), so the tests exercise the path real data takes.
"""
from __future__ import annotations

import codecs
import hashlib
import json
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..errors import DataError


@dataclass(frozen=True)
class CifarSpec:
    name: str
    url: str
    md5: str
    folder: str                 # what the archive extracts to
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str              # per-sample label key in a batch file
    names_key: str              # class-name key in the meta file
    coarse_label_key: Optional[str] = None
    coarse_names_key: Optional[str] = None
    # What the official archive holds (0: not known); enforced only on folders extracted from it.
    train_size: int = 0
    test_size: int = 0
    num_classes: int = 0

    @property
    def archive(self) -> str:
        return self.url.rsplit("/", 1)[-1]


CIFAR10 = CifarSpec(
    name="cifar10",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
    folder="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_files=("test_batch",),
    meta_file="batches.meta",
    label_key="labels", names_key="label_names",
    train_size=50000, test_size=10000, num_classes=10,   # the official archive's counts
)

CIFAR100 = CifarSpec(
    name="cifar100",
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    md5="eb9058c3a382ffc7106e4002c42a8d85",
    folder="cifar-100-python",
    train_files=("train",),
    test_files=("test",),
    meta_file="meta",
    label_key="fine_labels",
    names_key="fine_label_names",
    coarse_label_key="coarse_labels",
    coarse_names_key="coarse_label_names",
    train_size=50000, test_size=10000, num_classes=100,  # the official archive's counts
)

SPECS = {spec.name: spec for spec in (CIFAR10, CIFAR100)}

# Written by `download` into a folder it extracted from an archive with the official MD5. The synthetic dataset
# and hand-made folders share the layout but not the sizes, so the official image and class counts are
# enforced only where this file says the folder is the official one; elsewhere the files are checked for
# consistency with each other.
OFFICIAL_MARKER = ".cifar-lab-official.json"


@dataclass
class CifarSplit:
    """One split held as a single uint8 tensor [N, 3, 32, 32] with its labels."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    coarse_labels: Optional[torch.Tensor] = None
    coarse_names: Optional[list[str]] = None
    source: str = ""
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def coarse_of_fine(self) -> Optional[torch.Tensor]:
        """fine class id -> superclass id, where the dataset has superclasses.

        Derived from the full split when it is parsed and kept by `subset`, so a small subset that misses
        some classes still maps every class.
        """
        if self.coarse_labels is None:
            return None
        if "coarse_of_fine" not in self.extra:
            mapping = torch.full((len(self.class_names),), -1, dtype=torch.long)
            mapping[self.labels] = self.coarse_labels
            self.extra["coarse_of_fine"] = mapping
        return self.extra["coarse_of_fine"]

    def subset(self, n: int, seed: int = 0) -> "CifarSplit":
        """The first n samples of a fixed permutation (class-balanced in expectation)."""
        if n <= 0 or n >= len(self):
            return self
        index = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        coarse = None if self.coarse_labels is None else self.coarse_labels[index]
        self.coarse_of_fine  # noqa: B018  (computed on the full split before it is cut)
        return CifarSplit(self.images[index], self.labels[index], self.class_names, coarse, self.coarse_names,
                          self.source, dict(self.extra))


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def is_extracted(spec: CifarSpec, root: Path) -> bool:
    folder = Path(root) / spec.folder
    return all((folder / name).is_file() for name in (*spec.train_files, *spec.test_files, spec.meta_file))


def download(spec: CifarSpec, root, url: Optional[str] = None, md5: Optional[str] = None,
             progress: bool = True) -> Path:
    """Make sure `root/spec.folder` holds the extracted dataset; fetch and verify the archive if needed.

    Never fetches what is already on disk (`load_split` checks it when it reads it). A corrupt archive, or one
    whose MD5 matches but whose files are malformed, is deleted and reported; extraction goes to a temporary
    folder that is checked, then renamed into place.
    """
    root = Path(root)
    folder = root / spec.folder
    if is_extracted(spec, root):
        return folder
    url, md5 = url or spec.url, md5 or spec.md5
    archive = root / spec.archive
    root.mkdir(parents=True, exist_ok=True)
    if not archive.is_file():
        _fetch(url, archive, spec, root, progress)
    if md5sum(archive) != md5:
        archive.unlink()
        raise DataError(
            f"{archive} is corrupt or truncated (MD5 mismatch) and was removed; "
            f"run `cifar-lab data download {spec.name} --root {root}` again"
        )
    _extract(archive, spec, root, official_md5=md5 if md5 == spec.md5 else None)
    return folder


def _fetch(url: str, archive: Path, spec: CifarSpec, root: Path, progress: bool) -> None:
    from tqdm import tqdm  # plain bars: tqdm.auto would ask for ipywidgets inside Jupyter

    partial = archive.with_name(archive.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {spec.archive}",
                      disable=not progress) as bar:
                while block := response.read(1 << 20):
                    out.write(block)
                    bar.update(len(block))
        partial.replace(archive)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise DataError(
            f"{spec.name} is not at {root / spec.folder} and could not be downloaded from {url} ({reason}); "
            f"put {spec.archive} in {root} or run `cifar-lab data download {spec.name} --root {root}` "
            f"on a machine with internet access"
        ) from None


def _extract(archive: Path, spec: CifarSpec, root: Path, official_md5: Optional[str] = None) -> None:
    """Extract into a temporary folder, check every file, and only then rename the dataset folder into place.

    `official_md5` is set when the archive is the official one; the folder is then marked as such, so that its
    exact image and class counts are enforced whenever it is read.
    """
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, EOFError, OSError) as exc:
            archive.unlink(missing_ok=True)
            raise DataError(f"{archive} could not be extracted ({exc}) and was removed; "
                            f"run `cifar-lab data download {spec.name} --root {root}` again") from None
        if not is_extracted(spec, staging):
            archive.unlink(missing_ok=True)
            raise DataError(f"{archive} does not contain {spec.folder}/ with the expected batch files and was "
                            f"removed; {_official_download(spec, root)}")
        extracted = staging / spec.folder
        if official_md5:
            (extracted / OFFICIAL_MARKER).write_text(json.dumps({"archive": spec.archive, "md5": official_md5}))
        _check_archive_contents(archive, spec, root, extracted, official=bool(official_md5))
        target = root / spec.folder
        if target.exists():  # an incomplete folder from an older, interrupted tool
            shutil.rmtree(target)
        extracted.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_archive_contents(archive: Path, spec: CifarSpec, root: Path, extracted: Path, official: bool) -> None:
    """Parse both splits before installing them: a matching MD5 only says the archive is the one named (a
    mirror's, or one given with --md5), not that its files are a usable dataset."""
    try:
        for train in (True, False):
            _read_split(spec, extracted, train, official)
    except _Malformed as bad:
        archive.unlink(missing_ok=True)
        where = f"{spec.folder}/{bad.file}" if bad.file else f"{spec.folder}/"
        raise DataError(f"{archive} matches its MD5 but {where} in it {bad.problem}; the archive was removed and "
                        f"nothing was installed; {_official_download(spec, root)}") from None


def _official_download(spec: CifarSpec, root: Path) -> str:
    return f"get the official archive with `cifar-lab data download {spec.name} --root {root}` (no --url/--md5)"


class _Malformed(Exception):
    """One problem with an extracted split. `file` is the file at fault (None: the split as a whole) and
    `problem` a predicate ("has no 'data'"); the caller says where the folder is and how to fix it."""

    def __init__(self, file: Optional[str], problem: str):
        super().__init__(f"{file or 'split'} {problem}")
        self.file, self.problem = file, problem


def load_split(spec: CifarSpec, root, train: bool) -> CifarSplit:
    """Parse and check the batch files of one split: one uint8 tensor [N, 3, 32, 32] plus labels and names.

    Anything malformed (wrong types, shapes, counts or keys, labels out of range) is a one-line `DataError`
    naming the file and the fix.
    """
    root = Path(root)
    folder = root / spec.folder
    if not folder.is_dir():
        raise DataError(f"{spec.name} not found at {folder}; run `cifar-lab data download {spec.name} --root {root}`")
    try:
        return _read_split(spec, folder, train, official=(folder / OFFICIAL_MARKER).is_file())
    except _Malformed as bad:
        where = folder / bad.file if bad.file else folder
        raise DataError(f"{where} {bad.problem}; {_repair(spec, root, folder)}") from None


def _repair(spec: CifarSpec, root: Path, folder: Path) -> str:
    """How to get a good folder back: a synthetic one is written again by the next run, a real one downloaded."""
    if root.name.startswith("synthetic-"):  # the name `synthetic.folder_for` gives it
        return f"delete {root}; the next run with dataset=synthetic (or `cifar-lab data synthetic`) writes it again"
    return f"delete {folder} and run `cifar-lab data download {spec.name} --root {root}`"


def _read_split(spec: CifarSpec, folder: Path, train: bool, official: bool) -> CifarSplit:
    meta = _unpickle(folder, spec.meta_file, spec)
    class_names = _names(meta, spec.names_key, spec)
    coarse_names = _names(meta, spec.coarse_names_key, spec) if spec.coarse_names_key else None
    if official and len(class_names) != spec.num_classes:
        raise _Malformed(spec.meta_file, f"names {len(class_names)} classes; the official {spec.name} archive has "
                                         f"{spec.num_classes}")
    files = spec.train_files if train else spec.test_files
    batches = [_read_batch(folder, name, spec, len(class_names), len(coarse_names or ())) for name in files]
    sizes = [len(images) for images, _, _ in batches]
    _check_split_size(spec, train, sum(sizes), official)
    if len(files) > 1:
        _check_even_batches(files, sizes, meta, spec)
    images, labels, coarse = zip(*batches)
    return CifarSplit(
        images=torch.from_numpy(np.concatenate(images)),
        labels=torch.from_numpy(np.concatenate(labels)),
        class_names=class_names,
        coarse_labels=torch.from_numpy(np.concatenate(coarse)) if spec.coarse_label_key else None,
        coarse_names=coarse_names,
        source=str(folder),
    )


class BatchUnpickler(pickle.Unpickler):
    """Unpickles what the official CIFAR files hold and nothing else: dicts, lists, bytes, str, numbers and
    numpy arrays. `pickle.load` would import and call any global a file names (torchvision's CIFAR reader
    does), so a crafted "batch" could run code; here every other global is refused before it is imported."""

    # numpy pickles an array as _reconstruct(ndarray, shape, dtype) plus its state; a Python 3 pickle of
    # protocol 2 writes bytes as _codecs.encode(text, "latin1"). The keys are the names a file may use.
    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): np.zeros(1).__reduce__()[0],
        ("numpy._core.multiarray", "_reconstruct"): np.zeros(1).__reduce__()[0],
        ("numpy.core.multiarray", "scalar"): np.int64(0).__reduce__()[0],
        ("numpy._core.multiarray", "scalar"): np.int64(0).__reduce__()[0],
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


class _Refused(pickle.UnpicklingError):
    """A file names a global that no CIFAR batch needs."""


def _unpickle(folder: Path, name: str, spec: CifarSpec) -> dict:
    """One pickle file of the layout as a dict with str keys (the official files have bytes keys)."""
    path = folder / name
    try:
        with open(path, "rb") as handle:
            raw = BatchUnpickler(handle, encoding="bytes").load()
    except FileNotFoundError:
        raise _Malformed(name, "is missing") from None
    except PermissionError:  # the data is fine; this user may not read it
        raise DataError(f"{path} cannot be read: permission denied; give this user read access (`chmod a+r "
                        f"{path}`, or `chown` the folder to this user)") from None
    except IsADirectoryError:
        raise _Malformed(name, "is a folder, not a file") from None
    except _Refused as refused:
        raise DataError(f"{path} is not a {spec.name} file: it asks to import {refused}, which no CIFAR batch "
                        f"holds, and was not unpickled (it could run code); use the official archive or `cifar-lab "
                        f"data synthetic`") from None
    except OSError as exc:  # a failing disk or network file system: not the file's content
        raise DataError(f"{path} cannot be read: {exc.strerror or type(exc).__name__}; check the disk or the "
                        f"mount it is on") from None
    except Exception as exc:  # truncated or foreign files raise a zoo of pickle errors
        raise _Malformed(name, f"is corrupt ({type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise _Malformed(name, f"holds a {type(raw).__name__}, not the dict of a {spec.name} file")
    return {k.decode(errors="replace") if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _keys(record: dict) -> str:
    shown = sorted(str(k) for k in record)
    return "its keys: " + (", ".join(shown[:8]) + (", ..." if len(shown) > 8 else "") if shown else "none")


def _names(meta: dict, key: str, spec: CifarSpec) -> list[str]:
    if key not in meta:
        raise _Malformed(spec.meta_file, f"has no '{key}' ({_keys(meta)}), so it is not a {spec.name} meta file")
    names = meta[key]
    if not isinstance(names, (list, tuple)) or not names:
        raise _Malformed(spec.meta_file, f"has '{key}' that is not a list of class names")
    return [n.decode(errors="replace") if isinstance(n, bytes) else str(n) for n in names]


def _read_batch(folder: Path, name: str, spec: CifarSpec, num_classes: int,
                num_coarse: int) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """Images [N, 3, 32, 32], labels [N] and superclass labels [N] (where the layout has them) of one file."""
    batch = _unpickle(folder, name, spec)
    images = _images(batch, name)
    labels = _labels(batch, name, spec.label_key, num_classes, len(images), spec)
    coarse = None
    if spec.coarse_label_key:
        coarse = _labels(batch, name, spec.coarse_label_key, num_coarse, len(images), spec)
    return images, labels, coarse


# One row of 3072 bytes per image as in the archive (1024 red, then green, then blue), or already in planes.
IMAGE_SHAPES = ((3072,), (3, 32, 32))


def _images(batch: dict, name: str) -> np.ndarray:
    if "data" not in batch:
        raise _Malformed(name, f"has no 'data' ({_keys(batch)})")
    data = _as_array(batch["data"])
    if data.dtype != np.uint8 or data.shape[1:] not in IMAGE_SHAPES:
        raise _Malformed(name, f"has 'data' of {data.dtype} with shape {tuple(data.shape)}, not N x 3072 uint8 "
                               f"(N images of 3 x 32 x 32)")
    return data.reshape(-1, 3, 32, 32)


def _labels(batch: dict, name: str, key: str, num_classes: int, num_images: int, spec: CifarSpec) -> np.ndarray:
    if key not in batch:
        raise _Malformed(name, _missing_labels_problem(batch, key, spec))
    labels = _as_array(batch[key])
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise _Malformed(name, f"has '{key}' that is not a list of integer labels")
    if len(labels) != num_images:
        raise _Malformed(name, f"has {num_images} images but {len(labels)} '{key}'")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise _Malformed(name, f"has '{key}' from {labels.min()} to {labels.max()}, outside 0-{num_classes - 1} "
                               f"(the {num_classes} classes of {spec.meta_file})")
    return labels.astype(np.int64)


def _missing_labels_problem(batch: dict, key: str, spec: CifarSpec) -> str:
    """Name the other layout when its label key is there: a CIFAR-10 file in a CIFAR-100 folder, or back."""
    for other in SPECS.values():
        if other is not spec and other.label_key in batch:
            return (f"has '{other.label_key}' but no '{key}': it is a {other.name} file, "
                    f"not a {spec.name} one")
    return f"has no '{key}' ({_keys(batch)})"


def _as_array(value) -> np.ndarray:
    try:
        return np.asarray(value)
    except (ValueError, TypeError):  # ragged lists; the callers report the empty result as malformed
        return np.asarray(None)


def _check_split_size(spec: CifarSpec, train: bool, total: int, official: bool) -> None:
    split = "train" if train else "test"
    if total == 0:
        raise _Malformed(None, f"holds no {split} images")
    expected = spec.train_size if train else spec.test_size
    if official and total != expected:
        raise _Malformed(None, f"holds {total} {split} images; the official {spec.name} archive has {expected}")


def _check_even_batches(files: tuple[str, ...], sizes: list[int], meta: dict, spec: CifarSpec) -> None:
    """The official archive splits the train set into equal batches and its meta file states their size; the
    synthetic writer splits as evenly as it can (sizes differ by at most one). A batch off that is cut short
    or comes from another dataset, even where the exact counts are not known."""
    stated = meta.get("num_cases_per_batch")
    stated = stated if isinstance(stated, int) and not isinstance(stated, bool) and stated > 0 else None
    if max(sizes) - min(sizes) <= 1 and stated in (None, max(sizes)):
        return
    reference = stated or Counter(sizes).most_common(1)[0][0]
    name, size = next(((n, s) for n, s in zip(files, sizes) if abs(s - reference) > 1), (files[0], sizes[0]))
    source = f"{spec.meta_file} states {stated} per batch" if stated else f"the other train batches hold {reference}"
    raise _Malformed(name, f"holds {size} images but {source}; the train batches are of equal size, so this one "
                           f"is cut short or comes from another dataset")
