"""The pages listed in _toc.yml, for the tests that check the book and the notebooks against it."""
from pathlib import Path

from cifar_lab.book.reproduce import toc_files as _toc_files

ROOT = Path(__file__).resolve().parents[1]


def toc_files() -> list[str]:
    """Every `file:` of the table of contents, the root page first (paths without extension)."""
    return _toc_files(ROOT)
