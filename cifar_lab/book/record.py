"""The typed record of a measurement over seeds, with the provenance a verdict needs.

A `Record` is what one variant of one experiment measured, seed by seed: the quantity (name and unit), the
per-seed values with their seeds, the data it ran on (dataset, where the files came from, images trained and
tested), how long each seed trained (epochs and optimizer steps per seed), and where it came from (device,
commit and whether the tree was clean, the command, the date, the run folder). Claims are judged on records,
never on loose dicts, and comparability is read from these fields: a field a run could not fill is None, and a
verdict that needs it says "not comparable: unknown ...".

Records are written as JSON files (`save`, `load`) under a run's `--out` folder (a chapter's are
`<out_dir>/records.json`, `RECORDS_JSON`, gathered by a `Collector`); only `cifar-lab edition publish` copies them
into the repository, as `book/results/chapters/<notebook>.json`. Each file carries `SCHEMA`, and `load` refuses
another version with a one-line error rather than guessing. Beside the records a file keeps `extras`, keyed by
label: what a page draws but no claim judges (learning curves, confusion matrices, mistake images).

A `RecordSet` is records as a page reads them: from this run (`Collector.add`) or from a committed file
(`committed`), with `origin` saying which in words and `digest` naming its content, so that a page can say
exactly which measurements it shows.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import UsageError
from ..io import atomic_write_text
from . import stats

SCHEMA = 1
FORMAT = "cifar-lab record"
RECORDS_JSON = "records.json"      # a chapter run's records, in its out_dir

# What the records measure (`Record.measured`): the names claims read (`cifar_lab.book.claims`) and pages show.
# Every training over seeds (`seeds.records`):
FINAL_ACCURACY = "final test accuracy"          # the final epoch's: what claims judge
BEST_ACCURACY = "best-epoch test accuracy"      # chosen on the test split: shown, never judged
FINAL_SUPERCLASS_ACCURACY = "final superclass accuracy"
TRAINING_TIME = "training time"                 # seconds of training (evaluation excluded)
# A trained model as chapters 2, 5 and 9 measure it:
LATENCY_MEAN = "batch-1 fp32 latency (mean)"
LATENCY_MEDIAN = "batch-1 fp32 latency (median)"
PARAMETERS = "parameters"
WEIGHTS_FILE = "weights file size"
CHECKPOINT_FILE = "training checkpoint size"
# AST (chapter 3, `ast_comparison`):
ACTIVATION_RATE = "activation rate"
COMPUTE_VS_DENSE = "compute vs dense (FLOPs)"
FRACTION, SECONDS, MILLISECONDS, MEGABYTES, COUNT = "fraction", "s", "ms", "MB", "count"


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


def digest(records: Sequence[Record]) -> str:
    """A short content hash of `records` (SHA-256 of their JSON, in label and quantity order): two pages that
    print the same digest show the same measurements."""
    ordered = sorted((r.to_dict() for r in records), key=lambda d: (d["label"], d["measured"]))
    text = json.dumps(ordered, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def labels(records: Sequence[Record]) -> list[str]:
    """The labels of `records`, each once, in order of first appearance."""
    return list(dict.fromkeys(r.label for r in records))


def merge(old: Sequence[Record], old_extras: dict, new: Sequence[Record],
          new_extras: dict) -> tuple[list[Record], dict]:
    """`old` with every label that `new` measured replaced by `new`'s records of it (a label's records and
    extras always come from one run); labels only `old` has are kept, each record with its own provenance."""
    replaced = set(labels(new)) | set(new_extras)
    records = [r for r in old if r.label not in replaced] + list(new)
    extras = {**{k: v for k, v in old_extras.items() if k not in replaced}, **new_extras}
    return records, extras


@dataclass
class RecordSet:
    """Records as a page reads them: `source` "run" (measured by this execution of the page) or "committed"
    (read from the committed file `path`), with their extras."""
    records: list
    extras: dict
    source: str
    path: Optional[str] = None

    def __post_init__(self):
        if self.source not in ("run", "committed"):
            raise ValueError(f"source must be 'run' or 'committed', got {self.source!r}")

    def get(self, label: str, measured: str = FINAL_ACCURACY) -> Record:
        """The record of `label` and `measured`; a one-line error naming what the set holds when it is absent."""
        found = find(self.records, label, measured)
        if found is None:
            raise UsageError(f"{self.path or 'these records'} hold no {measured!r} of {label!r} (labels: "
                             f"{', '.join(self.labels) or 'none'}); run the experiment that measures it")
        return found

    def has(self, label: str, measured: str = FINAL_ACCURACY) -> bool:
        return find(self.records, label, measured) is not None

    @property
    def labels(self) -> list[str]:
        return labels(self.records)

    def only(self, chosen: Sequence[str]) -> "RecordSet":
        """The records of the labels `chosen`, in that order, with their extras (`_extras_of`)."""
        missing = [label for label in chosen if label not in self.labels]
        if missing:
            raise UsageError(f"{self.path or 'these records'} hold no {', '.join(map(repr, missing))} (labels: "
                             f"{', '.join(self.labels) or 'none'})")
        records = [r for label in chosen for r in self.records if r.label == label]
        return RecordSet(records, self._extras_of(records), self.source, self.path)

    def select(self, pairs: Sequence[Sequence[str]]) -> "RecordSet":
        """The records of the (label, measured) `pairs`, in that order, with their extras (`_extras_of`)."""
        found = [self.get(label, measured) for label, measured in pairs]
        return RecordSet(found, self._extras_of(found), self.source, self.path)

    def _extras_of(self, records: Sequence[Record]) -> dict:
        """The extras of `records`: those keyed by their labels, and those keyed by the variant their details
        name (the levels of one compute curve, "AST engine, epoch 3", share the extras of "AST engine")."""
        keys = labels(records) + [r.details["variant"] for r in records if isinstance(r.details.get("variant"), str)]
        return {key: self.extras[key] for key in dict.fromkeys(keys) if key in self.extras}

    @property
    def digest(self) -> str:
        return digest(self.records)

    def origin(self) -> str:
        """Where these measurements come from, in words: "measured by this run (commit abc1234, 2026-12-02)" or
        "the committed record of commit ed22271+dirty (2026-12-02)" (every commit and date the records name)."""
        stamps = list(dict.fromkeys(f"{r.short_commit} ({(r.date or 'date unknown')[:10]})" for r in self.records))
        if self.source == "run":
            return f"measured by this run (commit {', '.join(stamps) or 'unknown'})"
        noun = "record" if len(stamps) == 1 else "records"
        return f"the committed {noun} of commit {' and '.join(stamps) or 'unknown'}"

    def caption(self) -> str:
        """One line naming the file, the content hash and the origin, printed above what a page shows."""
        where = self.path or "(not saved)"
        return f"Records {where}, sha256 {self.digest}: {self.origin()}."


def committed(path) -> RecordSet:
    """A committed record file (`book/results/chapters/<notebook>.json`) as a page reads it."""
    records, extras = load(path)
    return RecordSet(records, extras, "committed", str(path))


class Collector:
    """The records one execution of a chapter measures, kept in `<out_dir>/records.json`: `add` appends and
    rewrites the file at once, so that what ran is saved even if a later cell fails. A new collector starts the
    file afresh (an earlier run's records never pass for this one's)."""

    def __init__(self, out_dir):
        self.path = Path(out_dir) / RECORDS_JSON
        self.records: list[Record] = []
        self.extras: dict = {}
        save(self.path, [], {})

    def add(self, records: Sequence[Record], extras: Optional[dict] = None) -> RecordSet:
        """Keep `records` (and `extras`, keyed by label); the added records as a `RecordSet` of this run."""
        records = list(records)
        clash = {(r.label, r.measured) for r in records} & {(r.label, r.measured) for r in self.records}
        if clash:
            raise UsageError(f"records measured twice in one run: {sorted(clash)}; give each variant its own label")
        self.records += records
        self.extras.update(extras or {})
        save(self.path, self.records, self.extras)
        return RecordSet(records, {k: v for k, v in (extras or {}).items()}, "run", str(self.path))


def measurement(of: Record, measured: str, unit: str, values: Sequence[float], seeds: Optional[Sequence[int]] = None,
                device: Optional[str] = None, details: Optional[dict] = None) -> Record:
    """Another quantity measured on the runs that `of` records (the same label, data, run length and provenance),
    e.g. the latency or the weights file of the trained model: `values` for `seeds` (by default the first
    seeds of `of`, one per value), on `device` (by default `of`'s)."""
    seeds = list(seeds) if seeds is not None else list(of.seeds[:len(values)])
    position = [of.seeds.index(seed) for seed in seeds]
    return replace(of, measured=measured, unit=unit, seeds=seeds, values=values,
                   epochs=[of.epochs[k] for k in position] if of.epochs else (),
                   optimizer_steps=[of.optimizer_steps[k] for k in position] if of.optimizer_steps else (),
                   device=device or of.device, details={**of.details, **(details or {})})


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
