"""The book's chapters (from `_toc.yml`) and the scales `cifar-lab reproduce` runs them at.

Scales:

- `smoke`: `smoke=True`, synthetic data and CPU-sized runs: every chapter runs; its records say dataset
  "synthetic", so no published accuracy is comparable;
- `cpu`: the real-data edition: `CPU_PARAMETERS` runs a chapter's Fashion-MNIST experiment on the real dataset
  (chapters without one run as smoke, and the report says so); the chapter writes its records under its own
  output folder, like every run, and only `cifar-lab edition publish` copies them into the repository;
- `full`: `smoke=False`, the presets' recipes on the real data, every accuracy over 3 seeds (`FULL_PARAMETERS`):
  a GPU job.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .. import provenance
from ..errors import UsageError

SCALES = ("smoke", "cpu", "full")

SCALE_WORDS = {
    "smoke": "synthetic data, CPU-sized runs: shows that every chapter runs, not what the recipes reach",
    "cpu": "the real-data edition: the chapters' Fashion-MNIST experiments on the real dataset at CPU scale, "
           "the CIFAR and ImageNet parts as in smoke mode",
    "full": "the presets' recipes on the real datasets, 3 seeds per accuracy (a GPU job)",
}

# Scale `cpu`: a chapter's Fashion-MNIST experiment trains on the real dataset; the CIFAR and ImageNet parts run
# as in smoke mode. Chapters absent here run as smoke.
CPU_PARAMETERS = {
    # chapter 2: SimpleCNN over its whole 15-epoch recipe (one seed), the MLP over 3 seeds and the TensorFlow
    # tutorial's convnet
    "02": {"fashion": True, "fashion_epochs": 15},
    # chapter 3: the compute curves (every way of choosing samples, and dense training at AST's compute) on all
    # 60,000 training images, 6 epochs, 5 seeds (the notebook's defaults); its other runs as in smoke mode
    "03": {"curves": True, "papermill_sweep": False},
    # chapter 4: fmnist-simplecnn as it is, with label smoothing 0.1 and with Cutout; all 60,000 images, 3 epochs,
    # 5 seeds (the sizes are the notebook's defaults)
    "04": {"fashion": True},
    # chapter 5: the six zoo models on the same 2,000 training and 2,000 test images, 2 epochs, 3 seeds
    "05": {"fashion": True},
    # chapter 6: SimpleCNN pretrained on classes 0-4, fine-tuned on 1,000 images of classes 5-9, against the same
    # network from scratch, 3 seeds
    "06": {"fashion": True},
    # chapter 8: 1 process (batch 128) against 2 DDP processes (64 each), 30,000 images, 2 epochs, 3 seeds
    "08": {"fashion": True},
    # chapter 9: a SimpleCNN teacher over its 15-epoch recipe on all 60,000 images (its last epoch teaches);
    # students of 3 epochs on all images, distilled at two (T, alpha) settings and from scratch, 5 seeds; int8
    # agreement of the trained teacher
    "09": {"fashion": True},
}

# At full scale every accuracy that a claim judges is the mean of 3 seeds.
FULL_SEEDS = [0, 1, 2]
FULL_PARAMETERS = {
    "02": {"seeds": FULL_SEEDS},
    "03": {"seeds": FULL_SEEDS},
    "04": {"seeds": FULL_SEEDS},
    "05": {"seeds": FULL_SEEDS},
    "06": {"seeds": FULL_SEEDS},
    # torchvision's ResNet-50 figure is a 90-epoch recipe; the preset's own length is 30
    "07": {"seeds": FULL_SEEDS, "epochs": 90},
}


@dataclass(frozen=True)
class Chapter:
    id: str          # "01", "03b": the notebook's name up to its first underscore
    notebook: Path   # notebooks/NN_topic.md
    title: str       # the notebook's first heading


def book_root() -> Path:
    """The clone the package lives in: the book's notebooks and _toc.yml are there."""
    root = provenance.PACKAGE_PARENT
    if not (root / "_toc.yml").is_file():
        raise UsageError(f"the book is not next to the package ({root} has no _toc.yml): reproduce runs from a "
                         f"clone of the repository installed with pip install -e")
    return root


def toc_files(root: Optional[Path] = None) -> list[str]:
    """Every `file:` of the book's _toc.yml in its order, the root page first (paths without extension)."""
    import yaml

    toc = yaml.safe_load(((root or book_root()) / "_toc.yml").read_text())
    found = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                found.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return found


def chapters(root: Optional[Path] = None) -> list[Chapter]:
    """The notebooks of _toc.yml, in its order."""
    root = root or book_root()
    found = []
    for name in toc_files(root):
        notebook = root / f"{name}.md"
        if name.startswith("notebooks/") and notebook.is_file():
            found.append(Chapter(notebook.stem.split("_")[0], notebook, first_heading(notebook)))
    return found


def first_heading(notebook: Path) -> str:
    """The notebook's title without its chapter number ("# 3b. One AST run" -> "One AST run")."""
    for line in notebook.read_text().splitlines():
        if line.startswith("# "):
            return re.sub(r"^\w+\.\s+", "", line[2:].strip())
    return notebook.stem


def select(available: list[Chapter], only: Optional[list[str]]) -> list[Chapter]:
    if not only:
        return available
    known = {chapter.id: chapter for chapter in available}
    unknown = [chapter for chapter in only if chapter not in known]
    if unknown:
        raise UsageError(f"unknown chapter {', '.join(unknown)}; the book's chapters are {', '.join(known)}")
    return [chapter for chapter in available if chapter.id in set(only)]


def scale_parameters(chapter_id: str, scale: str) -> tuple[dict, str, Optional[str]]:
    """(notebook parameters, the scale the chapter actually runs at, a note for the report)."""
    if scale not in SCALES:
        raise UsageError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    if scale == "full":
        return {"smoke": False, **FULL_PARAMETERS.get(chapter_id, {})}, "full", None
    if scale == "cpu":
        if chapter_id in CPU_PARAMETERS:
            return {"smoke": True, **CPU_PARAMETERS[chapter_id]}, "cpu", None
        return {"smoke": True}, "smoke", "this chapter has no Fashion-MNIST experiment yet: it ran as smoke"
    return {"smoke": True}, "smoke", None
