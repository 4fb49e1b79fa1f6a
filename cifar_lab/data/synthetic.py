"""A learnable, procedurally generated stand-in for CIFAR, written to disk in the official pickle layout.

Each class is a colour (hue) and a stripe pattern (orientation and frequency); each image adds hue jitter, a
random phase, brightness, a random blob and pixel noise. Stripes are horizontal or vertical so that a horizontal flip
or a 4-pixel shift never changes the class. Ten classes are easy (a small CNN passes 90 % in a few epochs);
a hundred classes share hues and patterns in pairs and need both cues. With 11 to 100 classes the layout is
CIFAR-100's, with superclasses of five consecutive classes each (the last one smaller when the class count is not
a multiple of five): 20 of them at 100 classes.

The files are read back by `cifar_lab.data.cifar.load_split`, the parser of the real data.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import re
import shutil
import tarfile
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import DataError
from ..io import staged_dir
from .cifar import CIFAR10, CIFAR100, CifarSpec, is_extracted, md5sum

HUES = ["red", "orange", "yellow", "lime", "green", "teal", "cyan", "blue", "purple", "pink"]
PATTERNS = [(axis, freq) for freq in (1, 2, 3, 4, 6) for axis in ("h", "v")]  # 10 patterns
MAX_CLASSES = len(HUES) * len(PATTERNS)   # every class is a distinct (hue, pattern) pair
CLASSES_PER_SUPERCLASS = 5                # as in CIFAR-100


def check_class_count(num_classes: int, name: str = "num_classes") -> None:
    """A one-line error for a class count the generator cannot make distinct classes for; `name` is how the
    caller spells the setting (num_classes, --classes)."""
    if not 2 <= num_classes <= MAX_CLASSES:
        raise DataError(f"{name}={num_classes}: the synthetic dataset has 2 to {MAX_CLASSES} classes ({len(HUES)} "
                        f"hues x {len(PATTERNS)} stripe patterns); choose {name} between 2 and {MAX_CLASSES}")


def spec_for(num_classes: int) -> CifarSpec:
    check_class_count(num_classes)
    return CIFAR10 if num_classes <= 10 else CIFAR100


def superclass_count(num_classes: int) -> int:
    """Superclasses of five consecutive classes; a remainder forms one more, smaller superclass."""
    return -(-num_classes // CLASSES_PER_SUPERCLASS)


def class_parts(num_classes: int) -> list[tuple[int, int]]:
    """(hue index, pattern index) per class: distinct pairs, both cues varying across neighbours."""
    if num_classes <= 10:
        return [(k, (3 * k) % 10) for k in range(num_classes)]
    return [(k % 10, k // 10) for k in range(num_classes)]


def class_names(num_classes: int) -> list[str]:
    names = []
    for hue, pattern in class_parts(num_classes):
        axis, freq = PATTERNS[pattern]
        names.append(f"{HUES[hue]}_{'hstripes' if axis == 'h' else 'vstripes'}{freq}")
    return names


def hue_rgb(hue: float) -> np.ndarray:
    """RGB (0-1) of a hue given as a fraction of the colour wheel (wrapping around), both generated sets'
    class colour. HSV -> RGB at full saturation and value, kept light enough to show stripes."""
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6.0) % 6.0
    rgb = 1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return 0.25 + 0.6 * rgb


def generate(num_classes: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n images (uint8, [n, 3, 32, 32]) with balanced labels."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    parts = class_parts(num_classes)
    # Hue jitter of up to 0.045 (neighbouring hues are 0.1 apart) makes colour alone an unreliable cue.
    hue_index = np.array([h for h, _ in parts], dtype=np.float64)[labels] + rng.uniform(-0.45, 0.45, size=n)
    hue = np.stack([hue_rgb(h / len(HUES)) for h in hue_index])                               # [n, 3]
    axis = np.array([PATTERNS[p][0] == "h" for _, p in parts])[labels]            # [n]
    freq = np.array([PATTERNS[p][1] for _, p in parts], dtype=np.float64)[labels]
    coords = np.arange(32, dtype=np.float64) / 32.0
    phase = rng.uniform(0, 2 * np.pi, size=n)
    wave_rows = np.sin(2 * np.pi * freq[:, None] * coords[None, :] + phase[:, None])  # [n, 32]
    stripes = np.where(axis[:, None, None], wave_rows[:, :, None], wave_rows[:, None, :])  # [n, 32, 32]
    brightness = rng.uniform(0.8, 1.2, size=(n, 1, 1, 1))
    images = hue[:, :, None, None] * (1.0 + 0.3 * stripes[:, None]) * brightness
    # A random dark blob: clutter that carries no class information.
    cy, cx = rng.uniform(4, 28, size=(2, n))
    radius = rng.uniform(3, 7, size=n)
    yy, xx = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    blob = ((yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2) < radius[:, None, None] ** 2
    images = np.where(blob[:, None], images * 0.4, images)
    images = images + rng.normal(0, 0.1, size=images.shape)
    return (np.clip(images, 0, 1) * 255).round().astype(np.uint8), labels


def folder_for(root, num_classes: int, n_train: int, n_test: int, seed: int) -> Path:
    return Path(root) / f"synthetic-c{num_classes}-n{n_train}-{n_test}-s{seed}"


def write(root, num_classes: int = 10, n_train: int = 5000, n_test: int = 1000, seed: int = 0) -> Path:
    """Write the dataset once (atomically) and return the folder holding `spec.folder`."""
    spec = spec_for(num_classes)
    if seed < 0:
        raise DataError(f"seed={seed}: the synthetic dataset's seed must be 0 or more")
    base = folder_for(root, num_classes, n_train, n_test, seed)
    if is_extracted(spec, base):
        return base
    with staged_output(base) as staging:
        _write_layout(staging / spec.folder, spec, num_classes, n_train, n_test, seed)
    return base


@contextlib.contextmanager
def staged_output(target) -> Iterator[Path]:
    """`io.staged_dir` for a generated data folder, its staging folder named after `target` and this process
    (`.NAME.pidPID.XXXX`), so that a later writer of the same folder removes what a killed one left behind
    without touching the staging folder of a writer still alive."""
    target = Path(target)
    remove_dead_staging(target)
    with staged_dir(target, prefix=f".{target.name}.pid{os.getpid()}.") as staging:
        yield staging


def remove_dead_staging(target: Path) -> list[Path]:
    """Delete the staging folders of `target` whose writing process no longer exists."""
    if not target.parent.is_dir():
        return []
    own = re.compile(re.escape(f".{target.name}.pid") + r"(\d+)\.")
    removed = []
    for entry in target.parent.iterdir():
        match = own.match(entry.name)
        if match and entry.is_dir() and not _process_alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only whether the process exists is checked
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _write_layout(folder: Path, spec: CifarSpec, num_classes: int, n_train: int, n_test: int, seed: int) -> None:
    folder.mkdir(parents=True)
    train_x, train_y = generate(num_classes, n_train, seed)
    test_x, test_y = generate(num_classes, n_test, seed + 1_000_003)
    names = class_names(num_classes)

    def dump(name: str, images: np.ndarray, labels: np.ndarray) -> None:
        batch = {b"data": images.reshape(len(images), -1), b"filenames": [f"{i:06d}.png".encode() for i in
                                                                          range(len(images))]}
        if spec is CIFAR100:
            batch[b"fine_labels"] = labels.tolist()
            batch[b"coarse_labels"] = (labels // CLASSES_PER_SUPERCLASS).tolist()
        else:
            batch[b"labels"] = labels.tolist()
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)

    chunks = np.array_split(np.arange(n_train), len(spec.train_files))
    for name, index in zip(spec.train_files, chunks):
        dump(name, train_x[index], train_y[index])
    dump(spec.test_files[0], test_x, test_y)
    if spec is CIFAR100:
        meta = {b"fine_label_names": [n.encode() for n in names],
                b"coarse_label_names": [f"group_{g:02d}".encode() for g in range(superclass_count(num_classes))]}
    else:
        meta = {b"label_names": [n.encode() for n in names], b"num_cases_per_batch": len(chunks[0])}
    with open(folder / spec.meta_file, "wb") as handle:
        pickle.dump(meta, handle, protocol=2)


def write_archive(root, out_dir, num_classes: int = 10, n_train: int = 500, n_test: int = 100,
                  seed: int = 0) -> tuple[Path, str]:
    """Pack a synthetic dataset as the official archive would be (for testing the download path).

    Returns the archive path and its MD5.
    """
    base = write(root, num_classes, n_train, n_test, seed)
    spec = spec_for(num_classes)
    out = Path(out_dir) / spec.archive
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        tar.add(base / spec.folder, arcname=spec.folder)
    return out, md5sum(out)
