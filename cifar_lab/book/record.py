"""The typed record of a measurement over seeds, with the provenance a verdict needs.

A `Record` is what one variant of one experiment measured, seed by seed: the quantity (name and unit), the
per-seed values with their seeds, the data it ran on (dataset, where the files came from, images trained and
tested), how long each seed trained (epochs and optimizer steps per seed), and where it came from (device,
commit and whether the tree was clean, the command, the date, the run folder). Claims are judged on records,
never on loose dicts, and comparability is read from these fields: a field a run could not fill is None, and a
verdict that needs it says "not comparable: unknown ...".

Records are written as JSON files (`save`, `load`) under a run's `--out` folder; only `cifar-lab edition
publish` copies them into the repository. Each file carries `SCHEMA`, and `load` refuses another version with a
one-line error rather than guessing.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import UsageError
from ..io import atomic_write_text
from . import stats

SCHEMA = 1
FORMAT = "cifar-lab record"


@dataclass(frozen=True)
class Record:
    """One measured quantity of one variant over seeds (see the module docstring)."""
    label: str                          # the variant: "fmnist-mlp", "AST packed", "distilled T=4 a=0.9", ...
    measured: str                       # what: "final test accuracy", "batch-1 latency (mean)", ...
    unit: str                           # "fraction", "ms", "s", "MB", ...
    seeds: tuple[int, ...]
    values: tuple[float, ...]           # one per seed, in the order of `seeds`
    dataset: Optional[str]              # the config's dataset name: "fashion_mnist", "cifar10", "synthetic", ...
    data_source: Optional[str]          # where its files were read from
    train_images: Optional[int]         # images in the training split the runs drew from
    test_images: Optional[int]          # images the measurement was taken on
    epochs: tuple[int, ...]             # epochs trained, per seed
    recipe_epochs: Optional[int]        # the epochs the recipe asks for
    optimizer_steps: tuple[int, ...]    # optimizer steps taken, per seed
    device: Optional[str]               # `provenance.device_name`
    commit: Optional[str]
    dirty: Optional[bool]
    command: Optional[str]
    date: Optional[str]                 # ISO 8601, UTC
    run_folder: Optional[str]
    details: dict = field(default_factory=dict, compare=False)   # anything else worth keeping (per-seed extras)
    schema: int = SCHEMA

    def __post_init__(self):
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))
        object.__setattr__(self, "epochs", tuple(int(e) for e in self.epochs))
        object.__setattr__(self, "optimizer_steps", tuple(int(s) for s in self.optimizer_steps))
        if len(self.values) != len(self.seeds):
            raise UsageError(f"record {self.label!r}: {len(self.values)} values for {len(self.seeds)} seeds")
        if len(set(self.seeds)) != len(self.seeds):
            raise UsageError(f"record {self.label!r}: seeds repeat ({list(self.seeds)})")
        for name in ("epochs", "optimizer_steps"):
            if getattr(self, name) and len(getattr(self, name)) != len(self.seeds):
                raise UsageError(f"record {self.label!r}: {name} has {len(getattr(self, name))} entries for "
                                 f"{len(self.seeds)} seeds")

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def summary(self) -> stats.Summary:
        return stats.summarize(self.values)

    @property
    def fewest_epochs(self) -> Optional[int]:
        """The epochs every seed trained: the minimum, never the mean."""
        return min(self.epochs) if self.epochs else None

    @property
    def short_commit(self) -> str:
        if not self.commit:
            return "unknown commit"
        return self.commit[:7] + ("+dirty" if self.dirty else "")

    def to_dict(self) -> dict:
        found = asdict(self)
        for name in ("seeds", "values", "epochs", "optimizer_steps"):
            found[name] = list(found[name])
        return found

    @classmethod
    def from_dict(cls, data: dict, where: str = "record") -> "Record":
        if not isinstance(data, dict):
            raise UsageError(f"{where}: not a record (a JSON object is expected)")
        if data.get("schema") != SCHEMA:
            raise UsageError(f"{where}: record schema {data.get('schema')!r}, this version reads {SCHEMA}; "
                             f"make the record again with this version")
        names = {f.name for f in fields(cls)}
        missing = sorted(names - set(data) - {"details"})
        if missing:
            raise UsageError(f"{where}: record lacks {', '.join(missing)}")
        try:
            return cls(**{k: v for k, v in data.items() if k in names})
        except (TypeError, ValueError) as error:
            raise UsageError(f"{where}: malformed record ({error})") from None


def provenance_fields(environment: Optional[dict], command: Optional[str], run_folder) -> dict:
    """The provenance part of a `Record` from a run's `environment.json` (`provenance.collect`)."""
    environment = environment or {}
    return {"device": environment.get("device"), "commit": environment.get("commit"),
            "dirty": environment.get("dirty"), "command": command,
            "date": environment.get("start_utc"), "run_folder": None if run_folder is None else str(run_folder)}


def save(path, records: Sequence[Record], extras: Optional[dict] = None) -> Path:
    """Write `records` (and `extras`: curves, tables, anything a page draws) to `path`, atomically."""
    path = Path(path)
    payload = {"format": FORMAT, "schema": SCHEMA, "records": [r.to_dict() for r in records],
               "extras": extras or {}}
    atomic_write_text(path, json.dumps(payload, separators=(",", ":"), allow_nan=False) + "\n")
    return path


def load(path) -> tuple[list[Record], dict]:
    """The records and extras of a file `save` wrote; a one-line error when it is missing or not one."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except OSError:
        raise UsageError(f"{path}: no such record file; run the experiment that writes it "
                         f"(its chapter, or `cifar-lab reproduce --scale cpu --out DIR`)") from None
    except ValueError as error:
        raise UsageError(f"{path}: not valid JSON ({error}); make the record again") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UsageError(f"{path}: not a {FORMAT} file")
    if payload.get("schema") != SCHEMA:
        raise UsageError(f"{path}: record schema {payload.get('schema')!r}, this version reads {SCHEMA}; "
                         f"make the record again with this version")
    records = [Record.from_dict(item, f"{path} record {k}") for k, item in enumerate(payload.get("records", []))]
    return records, payload.get("extras") or {}


def find(records: Sequence[Record], label: str, measured: Optional[str] = None) -> Optional[Record]:
    """The record of `label` (and `measured`, when given) among `records`, or None."""
    for record in records:
        if record.label == label and (measured is None or record.measured == measured):
            return record
    return None


def as_json_value(value: Any) -> Any:
    """A record field as JSON keeps it (tuples as lists)."""
    return list(value) if isinstance(value, tuple) else value
