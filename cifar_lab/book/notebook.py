"""Small helpers the notebooks share: the smoke switch, the results file, tidy tables."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..io import atomic_write_text


def smoke_default() -> bool:
    """Smoke mode (synthetic data, CPU-sized work) when CIFAR_LAB_SMOKE=1; the real experiment otherwise."""
    return os.environ.get("CIFAR_LAB_SMOKE", "0").strip().lower() in ("1", "true", "yes")


def tidy(table, digits: int = 3, missing: str = "—"):
    """A table as the book shows it: numbers rounded to `digits`, the index's name in the header's corner
    instead of on a second, otherwise empty header row, and missing cells shown as `missing` (the text next to
    the table says what a missing cell means)."""
    shown = table.round(digits)
    if shown.index.nlevels == 1 and shown.index.name is not None and shown.columns.name is None:
        shown = shown.rename_axis(index=None, columns=shown.index.name)
    if shown.isna().to_numpy().any():
        shown = shown.astype(object).where(shown.notna(), missing)
    return shown


def save_metrics(out_dir, payload: dict, name: str = "metrics.json") -> Path:
    """Write a notebook's results as JSON into its output folder (what papermill runs keep)."""
    path = Path(out_dir) / name
    atomic_write_text(path, json.dumps(payload, indent=2, default=_plain) + "\n")
    return path


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
