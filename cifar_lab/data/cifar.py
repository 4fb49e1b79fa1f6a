"""CIFAR-10/100 in the official python-pickle layout: download, verify, extract, parse.

The same parser reads the real archives and the synthetic dataset (written in the same layout by
`cifar_lab.data.synthetic`), so the tests exercise the path real data takes.
"""
from __future__ import annotations

import hashlib
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
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
    label_key="labels",
    names_key="label_names",
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
)

SPECS = {spec.name: spec for spec in (CIFAR10, CIFAR100)}


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

    Never fetches what is already on disk. A corrupt archive is deleted and reported; extraction goes to a
    temporary folder that is renamed into place only when complete.
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
    _extract(archive, spec, root)
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


def _extract(archive: Path, spec: CifarSpec, root: Path) -> None:
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
            raise DataError(f"{archive} does not contain {spec.folder}/ with the expected batch files; "
                            f"remove it and run `cifar-lab data download {spec.name} --root {root}`")
        target = root / spec.folder
        if target.exists():  # an incomplete folder from an older, interrupted tool
            shutil.rmtree(target)
        (staging / spec.folder).replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _unpickle(path: Path, spec: CifarSpec, root: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            raw = pickle.load(handle, encoding="bytes")
    except FileNotFoundError:
        raise DataError(f"{path} is missing; run `cifar-lab data download {spec.name} --root {root}`") from None
    except Exception as exc:  # truncated or foreign files raise a zoo of pickle errors
        raise DataError(f"{path} is corrupt ({type(exc).__name__}); delete {root / spec.folder} and run "
                        f"`cifar-lab data download {spec.name} --root {root}`") from None
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def load_split(spec: CifarSpec, root, train: bool) -> CifarSplit:
    """Parse the batch files of one split into one uint8 tensor [N, 3, 32, 32] plus labels and names."""
    root = Path(root)
    folder = root / spec.folder
    if not folder.is_dir():
        raise DataError(f"{spec.name} not found at {folder}; run `cifar-lab data download {spec.name} --root {root}`")
    images, labels, coarse = [], [], []
    for name in spec.train_files if train else spec.test_files:
        batch = _unpickle(folder / name, spec, root)
        try:
            data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels.append(np.asarray(batch[spec.label_key], dtype=np.int64))
            if spec.coarse_label_key:
                coarse.append(np.asarray(batch[spec.coarse_label_key], dtype=np.int64))
        except (KeyError, ValueError) as exc:
            raise DataError(f"{folder / name} is not a {spec.name} batch file ({exc}); delete {folder} and run "
                            f"`cifar-lab data download {spec.name} --root {root}`") from None
        images.append(data)
    meta = _unpickle(folder / spec.meta_file, spec, root)
    decode = lambda names: [n.decode() if isinstance(n, bytes) else str(n) for n in names]  # noqa: E731
    split = CifarSplit(
        images=torch.from_numpy(np.concatenate(images)),
        labels=torch.from_numpy(np.concatenate(labels)),
        class_names=decode(meta[spec.names_key]),
        coarse_labels=torch.from_numpy(np.concatenate(coarse)) if coarse else None,
        coarse_names=decode(meta[spec.coarse_names_key]) if spec.coarse_names_key else None,
        source=str(folder),
    )
    if split.images.shape[0] != split.labels.shape[0]:
        raise DataError(f"{folder}: {split.images.shape[0]} images but {split.labels.shape[0]} labels; the files "
                        f"are inconsistent, delete the folder and download again")
    return split
