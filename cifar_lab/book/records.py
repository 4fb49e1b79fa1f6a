"""The measured results the book shows: records under book/results/, each stamped with where it came from.

A record (one JSON file) is one measuring session: its `provenance` (commit, date, device, and what else was
noted: machine, software, conditions) and its `measurements`, each with the command that made it, an optional
table and notes. The book's Sphinx extension (book/_ext/results_records.py) renders every record in place of
the line `MARKER` of the reproduction page at build time, so the page shows no measured number that a
committed record does not hold; `cifar-lab reproduce --report` writes a record of a reproduction run.

Record format:

    {"title": "...", "provenance": {"commit": "cad3bdd", "date": "2026-11-22 07:38 UTC", "device": "...",
                                    "machine": "...", "software": "...", "conditions": "..."},
     "notes": ["..."],
     "measurements": [{"title": "...", "description": "...", "command": "cifar-lab bench data",
                       "table": {"columns": ["path", "images/s"], "rows": [["...", "110,560"]]},
                       "notes": ["..."]}]}
"""
from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Optional

from .. import provenance
from ..errors import UsageError

MARKER = "% results-records"
REQUIRED_PROVENANCE = ("commit", "date", "device")
PROVENANCE_DETAILS = ("machine", "software", "conditions")  # shown after the device when a record has them


def load(folder) -> list[tuple[Path, dict]]:
    """Every page record under `folder`, oldest first; a one-line error naming a record that lacks its stamp.

    Page records are the JSON files with "measurements"; the folder also keeps data that chapters read
    themselves (`data_files`), which their chapters show.
    """
    records = [(path, read_record(path)) for path in sorted(Path(folder).glob("*.json")) if is_page_record(path)]
    return sorted(records, key=lambda item: (item[1]["provenance"]["date"], item[0].name))


def is_page_record(path: Path) -> bool:
    try:
        return "measurements" in json.loads(Path(path).read_text())
    except ValueError as exc:
        raise UsageError(f"{path} is not JSON ({exc})") from None


def data_files(folder) -> list[str]:
    """The JSON files under `folder` that are not page records (results a chapter reads and shows itself)."""
    return [path.name for path in sorted(Path(folder).glob("*.json")) if not is_page_record(path)]


def read_record(path: Path) -> dict:
    """One record, checked for its stamp: a title, measurements, and the provenance keys REQUIRED_PROVENANCE."""
    try:
        record = json.loads(Path(path).read_text())
    except ValueError as exc:
        raise UsageError(f"{path} is not JSON ({exc})") from None
    missing = [key for key in REQUIRED_PROVENANCE if not record.get("provenance", {}).get(key)]
    if missing or not record.get("title") or not isinstance(record.get("measurements"), list):
        raise UsageError(f"{path} is not a results record: it needs a title, measurements and provenance "
                         f"{', '.join(REQUIRED_PROVENANCE)} (missing: {', '.join(missing) or 'title/measurements'})")
    return record


def number(path, measurement: str, row: str, column: int = 1) -> float:
    """A measured number of a record, for a chapter's prose: the cell in `column` of the row whose first cell
    starts with `row`, in the measurement titled `measurement` ("166", "1.86×" and "110,560" read as numbers)."""
    record = read_record(Path(path))
    for item in record["measurements"]:
        if item["title"] == measurement:
            for cells in item.get("table", {}).get("rows", []):
                if str(cells[0]).startswith(row):
                    return float(str(cells[column]).replace(",", "").rstrip("×x% "))
    raise UsageError(f"{path} has no row starting {row!r} in a measurement titled {measurement!r}")


def commit_relation(commit: str, head: str, repository: Path = provenance.PACKAGE_PARENT) -> str:
    """How a record's commit stands to the commit being built: "this commit", "an older commit", or "a commit
    this checkout does not hold" (a short hash of another clone, or an unknown head)."""
    if head == provenance.UNKNOWN:
        return "a commit this checkout cannot compare (no git history)"
    if head.startswith(commit) or commit.startswith(head):
        return "this commit"
    try:
        done = subprocess.run(["git", "merge-base", "--is-ancestor", commit, head], cwd=repository,
                              capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "a commit this checkout cannot compare (git is missing)"
    if done.returncode == 0:
        return "an older commit"
    return "a commit that is not in this checkout's history"


def render(records: list[tuple[Path, dict]], head: Optional[str] = None, heading_level: int = 3,
           others: Optional[list[str]] = None) -> str:
    """The records as MyST Markdown: which records are shown, then each record under its own heading with its
    provenance (marked when it is older than `head`, the commit being built), its measurements and notes.
    `others`: the data files of the folder that chapters show themselves, named so that nothing is hidden."""
    head = head or provenance.git_state()[0]
    shown_head = head[:7] if head != provenance.UNKNOWN else head
    if not records:
        return "No measured records are committed yet (book/results/ holds none).\n"
    listing = ", ".join(f"`{path.name}` (commit `{record['provenance']['commit']}`, {record['provenance']['date']})"
                        for path, record in records)
    lines = [f"This section shows the {len(records)} records under `book/results/`: {listing}. Each one names "
             f"the commit it was measured at; this book was built from commit `{shown_head}`, and records "
             f"from an older commit are marked **older commit**: the code has changed since, so the figures "
             f"describe that commit's code.", ""]
    if others:
        lines += [f"The folder also holds results that a chapter reads and shows itself: "
                  f"{', '.join(f'`{name}`' for name in others)}.", ""]
    for path, record in records:
        lines += render_record(path, record, head, heading_level)
    return "\n".join(lines).rstrip() + "\n"


def render_record(path: Path, record: dict, head: str, heading_level: int = 3) -> list[str]:
    stamp = record["provenance"]
    relation = commit_relation(str(stamp["commit"]), head)
    marker = {"this commit": "this build's commit", "an older commit": "**older commit**"}.get(relation,
                                                                                           f"**{relation}**")
    details = "; ".join(str(stamp[key]) for key in PROVENANCE_DETAILS if stamp.get(key))
    lines = [f"{'#' * heading_level} {record['title']}", "",
             f"*Record `book/results/{path.name}`: measured {stamp['date']} at commit `{stamp['commit']}` "
             f"({marker}); device: {stamp['device']}" + (f"; {details}" if details else "") + ".*"]
    if stamp.get("commit_basis"):
        lines[-1] += f" *Commit: {stamp['commit_basis']}.*"
    lines.append("")
    for note in record.get("notes", []):
        lines += [note, ""]
    for measurement in record["measurements"]:
        lines += render_measurement(measurement)
    return lines


def wrap_command(command: str, width: int = 76) -> str:
    """Break each shell line longer than `width` at spaces between arguments, with `\\` continuations, so a
    command fits the book's column and still runs when pasted. Quoted arguments are never split."""
    wrapped = []
    for line in command.splitlines():
        if len(line) <= width:
            wrapped.append(line)
            continue
        splitter = shlex.shlex(line, posix=False)
        splitter.whitespace_split = True
        splitter.commenters = ""
        current = ""
        for word in splitter:
            if current and len(current) + 1 + len(word) > width - 2:
                wrapped.append(current + " \\")
                current = "    " + word
            else:
                current = f"{current} {word}" if current else word
        wrapped.append(current)
    return "\n".join(wrapped)


def render_measurement(measurement: dict) -> list[str]:
    intro = f"**{measurement['title']}**"
    if measurement.get("description"):
        intro += f": {measurement['description']}"
    lines = [intro, ""]
    if measurement.get("command"):
        lines += ["```bash", wrap_command(measurement["command"].rstrip()), "```", ""]
    table = measurement.get("table")
    if table:
        lines.append("| " + " | ".join(table["columns"]) + " |")
        lines.append("| " + " | ".join("---" for _ in table["columns"]) + " |")
        lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in table["rows"]]
        lines.append("")
    for note in measurement.get("notes", []):
        lines += [note, ""]
    return lines


def replace_marker(text: str, rendered: str) -> str:
    """`text` with its `MARKER` line replaced by `rendered`; a one-line error when the line is missing."""
    lines = text.splitlines(keepends=True)
    at = [index for index, line in enumerate(lines) if line.strip() == MARKER]
    if len(at) != 1:
        raise UsageError(f"the page must hold the line {MARKER!r} exactly once (found {len(at)})")
    return "".join(lines[:at[0]]) + rendered + "".join(lines[at[0] + 1:])
