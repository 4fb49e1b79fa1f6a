"""Writing a command's JSON report."""
import json
from pathlib import Path

from ..io import atomic_write_text


def write_json(path, payload: dict) -> None:
    """Write a command's JSON report (atomically) and say where it went."""
    if path:
        atomic_write_text(Path(path), json.dumps(payload, indent=2, default=str) + "\n")
        print(f"wrote {path}")
