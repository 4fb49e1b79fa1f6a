"""Reproduce the book: execute its chapters at a scale and judge every published claim on the records they made.

`reproduce("smoke", "runs/reproduce")` runs every chapter of `_toc.yml` (`chapters.chapters`, at the scales of
`cifar_lab.book.chapters`) through `runner.run_notebook` into `runs/reproduce/<notebook>/`, where each chapter
writes its typed records (`<notebook>/records.json`, `cifar_lab.book.record`). Every claim of `claims.CLAIMS` is
judged on the records of the run at hand; a committed record (`book/results/chapters/<notebook>.json`, what
`cifar-lab edition publish` copies into the repository) is judged only when asked (`judge_committed=True`), and
those verdicts are kept apart and labelled with that record's commit and date, never with this run's.

A record in a chapter's records.json that this run did not make (another commit, or dated before the chapter
started) is set aside and named in the report: a chapter that shows a committed record must not pass it off as
its own measurement.

`results.json` holds, per chapter, the status, the parameters, the provenance and the verdicts; `results.md` is
the report (`cifar_lab.book.report`). Everything is written under `out_dir`. A chapter that fails is recorded as
failed (its executed notebook kept) and the others go on. Running again skips the chapters that finished with
the same code, scale and parameters, and judges their records again.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional

from .. import provenance
from ..errors import UsageError
from ..io import atomic_write_text
from . import claims, record
from .record import RECORDS_JSON
from .chapters import Chapter, book_root, chapters, scale_parameters, select, SCALES
from .chapters import toc_files  # noqa: F401 (the edition and the book's tests read the table of contents here)

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
RECORD_JSON = "record.json"
COMMITTED_FOLDER = Path("book") / "results" / "chapters"   # the committed records, under the book's root


# --- the records a verdict is judged on ------------------------------------------------------------------------

def committed_path(chapter: Chapter, root: Optional[Path] = None) -> Path:
    """Where `cifar-lab edition publish` keeps the committed records of `chapter`."""
    return (root or book_root()) / COMMITTED_FOLDER / f"{chapter.notebook.stem}.json"


def load_committed(selected: list[Chapter]) -> dict[str, tuple[Path, Optional[list[record.Record]]]]:
    """Chapter id -> (path, its committed records, or None when none is committed). A committed file that is not
    a record file is a one-line error, raised before anything runs."""
    found = {}
    for chapter in selected:
        path = committed_path(chapter)
        found[chapter.id] = (path, record.load(path)[0] if path.is_file() else None)
    return found


def _when(text) -> Optional[datetime]:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def made_elsewhere(item: record.Record, entry: dict) -> Optional[str]:
    """Why `item`, found in the records.json of the chapter run `entry`, was not made by that run (None if it
    may have been): another commit, or a date before the chapter started."""
    commit = (entry.get("environment") or {}).get("commit")
    if item.commit and commit and item.commit != commit:
        return f"made at commit {item.short_commit}"
    made, started = _when(item.date), _when(entry.get("started_utc"))
    if made and started and made.tzinfo and started.tzinfo and made < started:
        return f"dated {item.date}, before the chapter started"
    return None


def run_records(out: Path, entry: dict) -> tuple[list[record.Record], Optional[str]]:
    """The records the chapter run `entry` made (from its records.json), and a note on what was set aside."""
    path = out / entry["folder"] / RECORDS_JSON
    if entry["status"] != "ok" or not path.is_file():
        return [], None if entry["status"] != "ok" else f"the chapter wrote no {RECORDS_JSON}"
    try:
        found = record.load(path)[0]
    except UsageError as error:
        return [], f"its {RECORDS_JSON} could not be read ({error})"
    kept, set_aside = [], []
    for item in found:
        why = made_elsewhere(item, entry)
        if why:
            set_aside.append(f"{item.label}: {item.measured} ({why})")
        else:
            kept.append(item)
    note = ("set aside, not made by this run: " + "; ".join(set_aside)) if set_aside else None
    return kept, note


def judged(chapter_id: str, records: list[record.Record], source: str) -> tuple[list[dict], list[dict]]:
    """The chapter's claims and sanity checks judged on `records`, as results.json keeps them."""
    return ([claims.judge(claim, records, source).to_dict() for claim in claims.CLAIMS.get(chapter_id, [])],
            [claims.check(item, records) for item in claims.SANITY_CHECKS.get(chapter_id, [])])


def judge_entry(entry: dict, out: Path, committed: Optional[tuple[Path, Optional[list]]]) -> dict:
    """`entry` with its verdicts: from the run's own records, and (when `committed` is given) apart from them,
    from the chapter's committed record."""
    records, note = run_records(out, entry)
    entry["records_note"] = note
    entry["claims"], entry["checks"] = judged(entry["chapter"], records, claims.RUN)
    entry.pop("committed", None)
    if committed is not None:
        path, found = committed
        rows = judged(entry["chapter"], found, claims.COMMITTED)[0] if found is not None else []
        entry["committed"] = {"path": str(path), "found": found is not None, "claims": rows}
    return entry


# --- running -------------------------------------------------------------------------------------------------

@dataclass
class ReproduceResult:
    results: dict                                   # what results.json holds
    ran: list[str] = field(default_factory=list)    # chapters run now
    skipped: list[str] = field(default_factory=list)  # done earlier with the same code, scale and parameters
    failed: list[str] = field(default_factory=list)
    json_path: Optional[Path] = None
    markdown_path: Optional[Path] = None


def reproduce(scale: str, out_dir, only: Optional[list[str]] = None, progress: bool = True,
              on_chapter: Optional[Callable[[dict, bool], None]] = None,
              extra: Optional[dict[str, dict]] = None, judge_committed: bool = False) -> ReproduceResult:
    """Run the selected chapters at `scale` into `out_dir`; judge their claims on the records they made; write
    results.json and results.md after each one.

    `extra` adds notebook parameters per chapter id, e.g. {"06": {"imagenet_root": "/data/imagenet100"}}.
    `judge_committed` also judges each chapter's committed record, apart from the run's verdicts.
    `on_chapter(entry, skipped)` is called after every chapter with its results.json entry.
    """
    from .runner import out_dir_lock, prepare_out_dir

    if scale not in SCALES:
        raise UsageError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    selected = select(chapters(), only)
    extra = extra or {}
    unknown = sorted(set(extra) - {chapter.id for chapter in selected})
    if unknown:
        raise UsageError(f"--param for chapter {', '.join(unknown)}, which this run does not include")
    check_extra_parameters(selected, extra)
    committed = load_committed(selected) if judge_committed else {}
    out = prepare_out_dir(out_dir)
    with out_dir_lock(out):  # one reproduction per folder; each chapter's run locks its own sub-folder inside
        return _run_selected(selected, out, scale, extra, progress, on_chapter, committed)


def _run_selected(selected, out, scale, extra, progress, on_chapter, committed) -> ReproduceResult:
    """The chapters of `reproduce`, run while it holds the folder's lock."""
    from tqdm import tqdm  # plain: tqdm.auto wants ipywidgets inside notebooks

    from .runner import code_version

    results = load_results(out)
    version = code_version()
    outcome = ReproduceResult(results, json_path=out / RESULTS_JSON, markdown_path=out / RESULTS_MD)
    bar = tqdm(selected, desc=f"reproduce ({scale})", unit="chapter", disable=not progress, leave=False)
    for chapter in bar:
        bar.set_postfix(chapter=chapter.id)
        previous = results["chapters"].get(chapter.id)
        parameters, ran_as, note = scale_parameters(chapter.id, scale)
        parameters.update(extra.get(chapter.id, {}))
        skipped = is_done(previous, version, scale, parameters)
        entry = previous if skipped else run_chapter(chapter, out, scale, parameters, ran_as, note)
        (outcome.skipped if skipped else outcome.ran).append(chapter.id)
        results["chapters"][chapter.id] = judge_entry(entry, out, committed.get(chapter.id))
        save(results, out)
        if entry["status"] != "ok":
            outcome.failed.append(chapter.id)
        if on_chapter is not None:
            on_chapter(entry, skipped)
    bar.close()
    save(results, out)
    return outcome


def check_extra_parameters(selected: list[Chapter], extra: dict[str, dict]) -> None:
    """Refuse, before anything runs, a --param that its chapter's parameters cell does not define."""
    from .runner import check_parameters, parse_value, read_notebook

    for chapter in selected:
        if chapter.id in extra:
            given = {name: parse_value(value) for name, value in extra[chapter.id].items()}
            check_parameters(chapter.notebook, read_notebook(chapter.notebook), given)


def is_done(entry: Optional[dict], version: str, scale: str, parameters: dict) -> bool:
    """A chapter finished with the code checked out now (`runner.same_code`: same commit, same uncommitted
    changes; `version` is the current `runner.code_version`) at this scale with these parameters."""
    from .runner import CODE_VERSION, same_code

    return bool(entry) and entry.get("status") == "ok" and entry.get("scale") == scale \
        and same_code((entry.get("environment") or {}).get(CODE_VERSION), version) \
        and entry.get("parameters") == parameters


def run_chapter(chapter: Chapter, out: Path, scale: str, parameters: dict, ran_as: str,
                note: Optional[str]) -> dict:
    """Execute one chapter into out/<notebook name>; its results.json entry (verdicts not yet judged), also when
    it fails."""
    from .runner import run_notebook, stderr_into

    folder = out / chapter.notebook.stem
    for stale in ("metrics.json", RECORDS_JSON):  # an earlier run's files must not pass for this one's
        (folder / stale).unlink(missing_ok=True)
    started_utc = provenance.utc_now()
    start = time.perf_counter()
    error = None
    try:
        with stderr_into(folder / "kernel-stderr.log"):
            run_notebook(chapter.notebook, folder, parameters)
    except UsageError as exc:  # a failing cell (NotebookFailed) or parameters the notebook lacks
        error = str(exc)
    except Exception as exc:  # a kernel that died: this chapter failed, the next one still runs
        error = " ".join(f"{type(exc).__name__}: {exc}".split())
    metrics = read_json(folder / "metrics.json")
    if error is None and metrics is None:
        error = f"{chapter.notebook.name} wrote no metrics.json into {folder}"
    environment = provenance.read(folder) or provenance.collect(parameters)
    executed = folder / f"{chapter.notebook.stem}.ipynb"
    return {
        "chapter": chapter.id, "title": chapter.title, "notebook": f"notebooks/{chapter.notebook.name}",
        "scale": scale, "ran_as": ran_as, "note": note, "parameters": parameters,
        "status": "failed" if error else "ok", "error": error,
        "commit": environment.get("commit"), "dirty": environment.get("dirty"),
        "seconds": round(time.perf_counter() - start, 1), "started_utc": started_utc,
        "finished_utc": provenance.utc_now(), "folder": folder.name,
        "executed_notebook": f"{folder.name}/{executed.name}" if executed.is_file() else None,
        "records": f"{folder.name}/{RECORDS_JSON}" if (folder / RECORDS_JSON).is_file() else None,
        "metrics": metrics, "environment": environment,
    }


def read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_results(out: Path) -> dict:
    """results.json of an earlier run into `out`, or an empty one; a one-line error when it is not readable."""
    path = out / RESULTS_JSON
    if not path.exists():
        return {"chapters": {}}
    results = read_json(path)
    if not isinstance(results, dict) or not isinstance(results.get("chapters"), dict):
        raise UsageError(f"{path} is not a results file of cifar-lab reproduce; move it away or choose another --out")
    return results


def save(results: dict, out: Path) -> None:
    from .report import render_markdown

    results["updated_utc"] = provenance.utc_now()
    results["chapters"] = {chapter_id: results["chapters"][chapter_id] for chapter_id in sorted(results["chapters"])}
    atomic_write_text(out / RESULTS_JSON, json.dumps(results, indent=2, default=str) + "\n")
    atomic_write_text(out / RESULTS_MD, render_markdown(results))


def write_report(out_dir) -> Path:
    """Render results.md and record.json again from results.json (no chapter runs): the shareable report."""
    from .report import book_record, render_markdown

    out = Path(out_dir)
    if not (out / RESULTS_JSON).is_file():
        raise UsageError(f"{out / RESULTS_JSON} does not exist; run cifar-lab reproduce --out {out} first")
    results = load_results(out)
    atomic_write_text(out / RESULTS_MD, render_markdown(results))
    atomic_write_text(out / RECORD_JSON, json.dumps(book_record(results), indent=2) + "\n")
    return out / RESULTS_MD
