"""The committed edition (book/edition/) agrees with the committed records (book/results/chapters/) and says
where each chapter came from.

(a) Every output a chapter made from records (`notebook.show`, `notebook.glue_record`: they carry
    `notebook.RECORD_METADATA`) is made again from the committed record file and must be the same: the same
    records (their content hash) rendered the same way, and every glued number recomputed here from the
    file's raw JSON. A record the page measured itself ("this run") is held to the chapter's committed record,
    which `cifar-lab edition publish` made from that very run.
(b) No rendered notebook names a record file (`book/results/....json`) that is not in the repository.
(c) The edition's note names each chapter's commit and whether its tree was clean, and that is the commit the
    chapter's notebook was executed at (its environment.json, written by the same execution).
"""
from __future__ import annotations

import ast
import json
import math
import re
import statistics
from datetime import datetime
from pathlib import Path

import nbformat
import pytest

from cifar_lab.book import edition, notebook, record

ROOT = Path(__file__).resolve().parent.parent
EDITION = ROOT / edition.EDITION
GLUE_PREFIX = "application/papermill.record/"
RECORD_FILE = re.compile(r"book/results/[\w./-]+?\.json")


def chapters():
    results = edition.read_results(EDITION)
    return [entry for _, entry in sorted(results["chapters"].items()) if entry.get("executed_notebook")]


def stem_of(entry) -> str:
    return Path(entry["notebook"]).stem


def marked_outputs(entry):
    """(cell index, output, metadata) of every output of the chapter that was made from records."""
    executed = nbformat.read(EDITION / entry["executed_notebook"], as_version=4)
    for index, cell in enumerate(executed.cells):
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get(notebook.RECORD_METADATA)
            if meta is not None:
                yield index, output, meta


def committed_file(entry, meta) -> Path:
    """The committed record file an output was made from: the file it names (relative to notebooks/, where the
    chapters run), or for this run's own records the chapter's committed file."""
    if meta["source"] == "run":
        return edition.committed_records(stem_of(entry), ROOT)
    return (ROOT / "notebooks" / meta["file"]).resolve()


def shown_text(output) -> tuple[str, str]:
    """(mime type, text) of what an output shows: the glue's own data for a glue, else HTML, Markdown or text."""
    data = output.get("data", {})
    if output.get("metadata", {}).get("scrapbook"):
        data = {key.removeprefix(GLUE_PREFIX): value for key, value in data.items()}
    for mime in ("text/html", "text/markdown", "text/plain"):
        if mime in data:
            value = data[mime]
            return mime, "".join(value) if isinstance(value, list) else value
    raise AssertionError(f"an output without text: {sorted(data)}")


def rendered_again(shown: record.RecordSet, meta: dict, mime: str) -> str:
    import pandas as pd
    from IPython.core.formatters import format_display_data

    found = notebook.rendered(shown, meta["kind"], **meta["arguments"])
    # the kernel's pandas display settings (a notebook is not a terminal)
    with pd.option_context("display.max_columns", 20, "display.max_rows", 60, "display.width", 80):
        bundle, _ = format_display_data(found)
    return bundle[mime]


def raw_value(path: Path, meta: dict):
    """A glued number recomputed from the record file's raw JSON, without the package's record classes."""
    arguments = meta["arguments"]
    items = [item for item in json.loads(path.read_text())["records"]
             if item["label"] == arguments["label"] and item["measured"] == arguments["measured"]]
    assert len(items) == 1, f"{path}: {len(items)} records of {arguments['label']!r}, {arguments['measured']!r}"
    item, scale = items[0], arguments.get("scale", 1.0)
    statistic = arguments.get("statistic", "mean")
    values = item["values"]
    if statistic == "mean":
        return statistics.fmean(values) * scale
    if statistic == "std":
        return statistics.stdev(values) * scale if len(values) > 1 else math.nan
    if statistic == "sum":
        return math.fsum(values) * scale
    return {"seeds": len(item["seeds"]), "fewest epochs": min(item["epochs"]),
            "recipe epochs": item["recipe_epochs"], "train images": item["train_images"],
            "test images": item["test_images"]}[statistic]


EDITION_CHAPTERS = chapters() if (EDITION / edition.RESULTS).is_file() else []


@pytest.mark.parametrize("entry", EDITION_CHAPTERS, ids=stem_of)
def test_every_number_shown_from_a_record_is_the_committed_record(entry):
    """Mutants caught: a page rendered from a record other than the committed one (chapter 3 once showed the
    record of an older commit beside the committed one: its content hash differs); a committed record changed
    after its page was rendered; a glued number computed from another statistic or scale than the one named;
    a chapter that shows its committed record by printing it loosely (it would carry no metadata, and a
    chapter whose committed file exists must show it through `notebook.show`)."""
    checked = 0
    for index, output, meta in marked_outputs(entry):
        path = committed_file(entry, meta)
        assert path.is_file(), f"cell {index}: {path} is not committed"
        shown = record.committed(path).select(meta["records"])
        assert shown.digest == meta["digest"], \
            f"cell {index} shows other records than the committed {path.name} ({meta['labels']})"
        mime, text = shown_text(output)
        assert rendered_again(shown, meta, mime) == text, f"cell {index}: {meta['kind']} differs from {path.name}"
        if meta["kind"] == "value":
            printed = ast.literal_eval(text)
            expected = raw_value(path, meta)
            if isinstance(expected, float) and math.isnan(expected):
                assert math.isnan(printed)
            else:
                assert printed == pytest.approx(expected, rel=1e-12, abs=0), f"cell {index}: {meta['arguments']}"
        checked += 1
    committed = edition.committed_records(stem_of(entry), ROOT)
    reads_committed = "committed_records" in (EDITION / entry["executed_notebook"]).read_text()
    if committed.is_file() and reads_committed:
        assert checked > 0, f"{stem_of(entry)} shows its committed records without saying which"


@pytest.mark.parametrize("entry", EDITION_CHAPTERS, ids=stem_of)
def test_no_rendered_notebook_refers_to_a_record_that_is_not_committed(entry):
    """Mutant caught: a page that names (or was rendered from) a record file that has since been removed or
    renamed, such as the untyped book/results/fmnist_training.json."""
    executed = nbformat.read(EDITION / entry["executed_notebook"], as_version=4)
    named = set()
    for cell in executed.cells:
        named |= set(RECORD_FILE.findall(cell.source))
        for output in cell.get("outputs", []):
            named |= set(RECORD_FILE.findall(json.dumps(output)))
    missing = sorted(name for name in named if not (ROOT / name).is_file())
    assert missing == [], f"{stem_of(entry)} names records that are not committed: {missing}"
    for index, _, meta in marked_outputs(entry):
        assert committed_file(entry, meta).is_file(), f"cell {index}: {meta['file']}"


def test_the_note_names_each_chapters_commit_and_whether_its_tree_was_clean():
    """Mutants caught: one commit named for every chapter (the note once said "commit ed22271" for chapters
    rendered at e7fb4fd); a chapter's notebook replaced without its environment.json (the note would name the
    commit of an older execution); the tree's state left out."""
    results = edition.read_results(EDITION)
    facts = edition.note(results)
    for entry in EDITION_CHAPTERS:
        folder = (EDITION / entry["executed_notebook"]).parent
        environment = json.loads((folder / "environment.json").read_text())
        assert {k: environment.get(k) for k in ("commit", "dirty", "start_utc")} == \
            {k: entry["environment"].get(k) for k in ("commit", "dirty", "start_utc")}, stem_of(entry)
        started = nbformat.read(EDITION / entry["executed_notebook"], as_version=4).metadata.get(
            "papermill", {}).get("start_time")
        assert started, f"{stem_of(entry)} was not executed by cifar-lab reproduce (no papermill start time)"
        gap = abs((datetime.fromisoformat(started) - datetime.fromisoformat(environment["start_utc"])).total_seconds())
        assert gap < 120, f"{stem_of(entry)}: executed at {started}, its environment.json is of {environment['start_utc']}"
        where = facts["chapters"][entry["chapter"]]
        tree = "clean tree" if environment["dirty"] is False else "uncommitted changes"
        assert (where["commit"], where["tree"]) == (environment["commit"][:7], tree)
        chapter_note = edition.note_markdown(facts, entry)
        assert f"executed at commit {environment['commit'][:7]} ({tree})" in chapter_note
        # the other pages' note lists every chapter with its own commit
        listed = rf"chapters? [^;]*\b{re.escape(entry['chapter'])}\b[^;]* at commit {environment['commit'][:7]} \({tree}"
        assert re.search(listed, edition.note_markdown(facts)), f"{stem_of(entry)} in {facts['commits']}"
