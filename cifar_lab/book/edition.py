"""The book's editions: every chapter executed at one scale, then built into HTML without executing it again.

An edition is what `cifar-lab reproduce --scale S --out RUN` leaves behind: one executed notebook per chapter,
its `metrics.json`, `environment.json` and `records.json` (the typed records it measured), and `results.json`.
Three scales make three editions:

- `smoke`: synthetic images in the CIFAR and ImageNet layouts, CPU-sized runs (what CI executes);
- `cpu`: the real-data edition: the chapters' Fashion-MNIST sections run at CPU scale on the real dataset,
  the CIFAR/ImageNet parts as in smoke mode (each chapter's note says which ran);
- `full`: the CIFAR and ImageNet recipes, for a machine with a GPU and the datasets.

`publish(run_dir)` is the one step that puts a run into the repository: the executed notebooks, metrics and
provenance into `book/edition/<notebook>/`, `results.json` into `book/edition/`, and each chapter's records into
`book/edition/chapters/<notebook>.json`, which the repository also names `book/results/chapters/<notebook>.json`
(`COMMITTED_RECORDS`, a link to that folder), where chapters and claims read committed records. Checkpoints are
never kept. A run of some chapters replaces those chapters and keeps the others; a chapter's records replace
the labels it measured and keep the others (`record.merge`: each record names its own commit and date). The
whole edition, records included, is one folder replaced in one step (`io.staged_dir`): killed at any point, the
repository holds the old edition or the new one, never a mix, and the next publish removes what the killed one
left beside it.

`stage(edition_dir, stage_dir)` lays out a Jupyter Book source tree whose chapters are those executed
notebooks, with execution off and every page opening with a note that names the edition, its datasets, the
hardware, and each chapter's commit (and whether its tree was clean) and date; `jupyter-book build STAGE` turns
it into HTML.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Optional

from .. import provenance
from ..errors import UsageError
from ..io import (OLD_MARK, atomic_write_text, folder_lock, pause_point, remove_stale_folders, restore_interrupted,
                  staged_dir)
from . import record
from .chapters import SCALES

EDITIONS = SCALES   # an edition is the book executed at one scale of `cifar-lab reproduce`
DATASETS = {
    "smoke": "synthetic images written in the CIFAR and ImageNet file layouts (no real dataset)",
    "cpu": "Fashion-MNIST (Zalando, the official 60,000 + 10,000 images) in the real-data sections; synthetic "
           "images in the CIFAR and ImageNet layouts elsewhere",
    "full": "CIFAR-10, CIFAR-100, ImageNet-100 and ImageNet-1k",
}
RESULTS = "results.json"
KEPT = ("metrics.json", "environment.json")   # per chapter, beside its executed notebook
BOOK_PAGES = ("book",)                        # prose pages, copied with the note added
EDITION = Path("book") / "edition"            # the committed edition, under the repository's root
RECORDS_FOLDER = "chapters"                   # in an edition: <notebook>.json, each chapter's records
COMMITTED_RECORDS = Path("book") / "results" / "chapters"   # the same folder, where readers look for it
STAGING_PREFIX = ".staging-edition-"


def committed_records(stem: str, root: Optional[Path] = None) -> Path:
    """The committed records of the chapter whose notebook is `stem` ("02_cifar10_resnet18"), after putting
    back an edition that a killed publish left renamed aside (`io.restore_interrupted`)."""
    root = Path(root or provenance.PACKAGE_PARENT)
    restore_interrupted(root / EDITION)
    return root / COMMITTED_RECORDS / f"{stem}.json"


def read_results(edition_dir) -> dict:
    """results.json of an edition folder (put back first if a killed publish left it renamed aside); a one-line
    error naming the command that makes one."""
    restore_interrupted(edition_dir)
    path = Path(edition_dir) / RESULTS
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError):
        raise UsageError(f"{path} is missing or unreadable: make the edition with scripts/book.sh --edition "
                         f"smoke|cpu|full (or cifar-lab reproduce --scale S --out {Path(edition_dir)})") from None
    if not isinstance(results, dict) or not isinstance(results.get("chapters"), dict) or not results["chapters"]:
        raise UsageError(f"{path} lists no executed chapter; run the edition again")
    return results


def edition_of(results: dict) -> str:
    """The scale every chapter of the run was asked to run at (one edition per folder)."""
    scales = sorted({str(entry.get("scale")) for entry in results["chapters"].values()})
    if len(scales) != 1 or scales[0] not in EDITIONS:
        raise UsageError(f"an edition runs every chapter at one scale; this folder mixes {', '.join(scales)}")
    return scales[0]


def chapter_commit(entry: dict) -> dict:
    """Where a chapter's executed notebook came from: its commit (short), whether the tree was clean, the date."""
    environment = entry.get("environment") or {}
    commit = environment.get("commit") or entry.get("commit")
    dirty = environment.get("dirty") if "dirty" in environment else entry.get("dirty")
    tree = {False: "clean tree", True: "uncommitted changes"}.get(dirty, "tree state unknown")
    return {"commit": str(commit)[:7] if commit else "unknown commit", "tree": tree, "dirty": dirty,
            "date": str(environment.get("start_utc") or entry.get("started_utc") or "?")[:10]}


def note(results: dict) -> dict:
    """What the note on every page says: edition, datasets, hardware, each chapter's commit and date."""
    edition = edition_of(results)
    entries = list(results["chapters"].values())
    environments = [entry.get("environment") or {} for entry in entries]
    hardware = sorted({", ".join(str(part) for part in (env.get("device"), env.get("cpu")) if part)
                       for env in environments} - {""})
    failed = sorted(entry["chapter"] for entry in entries if entry.get("status") != "ok")
    chapters = {entry["chapter"]: chapter_commit(entry) for entry in entries}
    groups: dict[str, list[str]] = {}
    for chapter_id, where in sorted(chapters.items()):
        groups.setdefault(f"{where['commit']} ({where['tree']}, {where['date']})", []).append(chapter_id)
    return {"edition": edition, "datasets": DATASETS[edition], "hardware": "; ".join(hardware) or "unknown",
            "chapters": chapters,
            "commits": "; ".join(f"chapter{'s' if len(ids) > 1 else ''} {', '.join(ids)} at commit {stamp}"
                                 for stamp, ids in groups.items()),
            "date": str(results.get("updated_utc", "?"))[:10], "failed": failed}


def note_markdown(facts: dict, chapter: Optional[dict] = None) -> str:
    """The note as a MyST admonition: for a chapter, the commit its notebook was executed at and whether the tree
    was clean; for the other pages, every chapter's; and the scale a chapter actually ran at."""
    if chapter is not None:
        where = chapter_commit(chapter)
        made = (f"**Edition `{facts['edition']}`**: this chapter was executed at commit {where['commit']} "
                f"({where['tree']}) on {where['date']}.")
    else:
        made = (f"**Edition `{facts['edition']}`**, published {facts['date']}: its chapters were executed at "
                f"{facts['commits']}.")
    lines = [made, "", f"Data: {facts['datasets']}. Hardware: {facts['hardware']}."]
    if chapter is not None and chapter.get("ran_as") not in (None, chapter.get("scale")):
        lines += ["", f"This chapter ran as `{chapter['ran_as']}`: {chapter.get('note') or ''}".rstrip(": ")]
    if chapter is not None and chapter.get("status") != "ok":
        lines += ["", f"This chapter **failed** in this edition: {chapter.get('error')}"]
    return "```{admonition} About this edition\n:class: note\n" + "\n".join(lines) + "\n```\n"


def publish(run_dir, root=None) -> Path:
    """Put the chapters of a reproduce run (`run_dir`) into the repository at `root` as the committed edition
    (see the module docstring): `root/book/edition`, replaced in one step. Returns the edition folder."""
    run = Path(run_dir)
    new = read_results(run)
    scale = edition_of(new)
    root = Path(root or provenance.PACKAGE_PARENT)
    target = root / EDITION
    link = root / COMMITTED_RECORDS
    check_link(link, target)
    with folder_lock(target.parent, "cifar-lab edition publish"):
        # Only publishes write here, and this one holds the lock: what a killed one left is finished or removed.
        restore_interrupted(target)
        remove_stale_folders(target.parent, [f"{STAGING_PREFIX}*", f".{target.name}{OLD_MARK}*"])
        current = read_results(target) if (target / RESULTS).is_file() else {"chapters": {}}
        merged = {**current, "chapters": {**current["chapters"], **new["chapters"]},
                  "updated_utc": new.get("updated_utc") or provenance.utc_now()}
        if edition_of(merged) != scale:
            raise UsageError(f"{target} is the {edition_of(current)} edition and this run is at scale {scale}; "
                             f"publish a run of every chapter at one scale")
        with staged_dir(target, prefix=STAGING_PREFIX) as staging:
            kept = {cid: entry for cid, entry in current["chapters"].items() if cid not in new["chapters"]}
            for entry in kept.values():
                _copy_chapter(target, staging, entry)
            if (target / RECORDS_FOLDER).is_dir():
                shutil.copytree(target / RECORDS_FOLDER, staging / RECORDS_FOLDER)
            for entry in new["chapters"].values():
                _copy_chapter(run, staging, entry)
                _merge_records(run, staging, entry)
            atomic_write_text(staging / RESULTS, json.dumps(merged, indent=2, default=str) + "\n")
        make_link(link, target)
    return target


def _copy_chapter(source_root: Path, staging: Path, entry: dict) -> None:
    """The executed notebook of a chapter and its small files (`KEPT`), never a checkpoint."""
    executed = entry.get("executed_notebook")
    if not executed:
        return
    source, target = source_root / executed, staging / executed
    if not source.is_file():
        raise UsageError(f"{source} is missing: the run's results.json names it; run the chapter again")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    for name in KEPT:
        if (source.parent / name).is_file():
            shutil.copy2(source.parent / name, target.parent / name)
    pause_point("copying")


def _merge_records(run: Path, staging: Path, entry: dict) -> None:
    """The chapter's records.json merged into the edition's records of that chapter (`record.merge`)."""
    folder = entry.get("folder") or Path(entry["notebook"]).stem
    path = run / (entry.get("records") or f"{folder}/{record.RECORDS_JSON}")
    if entry.get("status") != "ok" or not path.is_file():
        return
    new_records, new_extras = record.load(path)
    target = staging / RECORDS_FOLDER / f"{Path(entry['notebook']).stem}.json"
    old_records, old_extras = record.load(target) if target.is_file() else ([], {})
    merged, extras = record.merge(old_records, old_extras, new_records, new_extras)
    record.save(target, merged, extras)


def check_link(link: Path, target: Path) -> None:
    """Refuse, before anything is written, a `COMMITTED_RECORDS` that is a folder or a file rather than the
    link to the edition's records."""
    if os.path.lexists(link) and not link.is_symlink():
        raise UsageError(f"{link} must be a link to {target / RECORDS_FOLDER} (the committed records live in the "
                         f"edition); move it away and publish again")


def make_link(link: Path, target: Path) -> None:
    """`COMMITTED_RECORDS` as a relative link to the edition's records, replaced atomically when it points
    elsewhere."""
    wanted = os.path.relpath(target / RECORDS_FOLDER, link.parent)
    if link.is_symlink() and os.readlink(link) == wanted:
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    temporary = link.with_name(f".{link.name}.link{os.getpid()}")
    temporary.unlink(missing_ok=True)
    os.symlink(wanted, temporary)
    os.replace(temporary, link)


def stage(edition_dir, stage_dir, root: Optional[Path] = None) -> Path:
    """A Jupyter Book source tree in `stage_dir` built from an edition: the repository's configuration with
    execution off, its table of contents and prose pages, and the executed notebooks as the chapters."""
    import yaml

    from .chapters import toc_files

    root = Path(root or provenance.PACKAGE_PARENT)
    edition = Path(edition_dir)
    results = read_results(edition)
    facts = note(results)
    stage_root = Path(stage_dir)
    if stage_root.exists():
        shutil.rmtree(stage_root)
    stage_root.mkdir(parents=True)

    config = yaml.safe_load((root / "_config.yml").read_text())
    config["execute"] = {**config.get("execute", {}), "execute_notebooks": "off"}
    # The chapters are executed .ipynb files here; their MyST sources stay in the repository.
    config["exclude_patterns"] = [p for p in config.get("exclude_patterns", []) if p != "**/*.ipynb"]
    atomic_write_text(stage_root / "_config.yml", yaml.safe_dump(config, sort_keys=False))
    shutil.copy2(root / "_toc.yml", stage_root / "_toc.yml")
    for folder in BOOK_PAGES:
        # The committed edition's notebooks are the chapters below, not pages of their own.
        shutil.copytree(root / folder, stage_root / folder, ignore=shutil.ignore_patterns("edition"))

    by_notebook = {Path(entry["notebook"]).stem: entry for entry in results["chapters"].values()}
    chapters = [Path(name).name for name in toc_files(root) if name.startswith("notebooks/")]
    # Links between pages name the chapters' MyST sources; here the chapters are the executed .ipynb files.
    relink = re.compile(r"\b(" + "|".join(map(re.escape, chapters)) + r")\.md\b") if chapters else None
    for name in toc_files(root):
        if name.startswith("notebooks/"):
            stem = Path(name).name
            entry = by_notebook.get(stem)
            if entry is None or not entry.get("executed_notebook"):
                raise UsageError(f"the edition in {edition} has no executed {stem}; run the edition again")
            _stage_notebook(edition / entry["executed_notebook"], stage_root / f"{name}.ipynb",
                            note_markdown(facts, entry), relink)
        else:
            page = stage_root / f"{name}.md"
            text = _with_note(page.read_text(), note_markdown(facts))
            page.write_text(relink.sub(r"\1.ipynb", text) if relink else text)
    atomic_write_text(stage_root / "edition.json", json.dumps(facts, indent=2) + "\n")
    return stage_root


def _with_note(markdown: str, admonition: str) -> str:
    """The page with the note right under its title (the first `# ` heading), or at its top."""
    lines = markdown.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith("# "):
            return "".join(lines[:index + 1]) + "\n" + admonition + "\n" + "".join(lines[index + 1:])
    return admonition + "\n" + markdown


def _stage_notebook(source: Path, target: Path, admonition: str, relink: Optional[re.Pattern] = None) -> None:
    import nbformat

    notebook = nbformat.read(source, as_version=4)
    if relink is not None:
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                cell.source = relink.sub(r"\1.ipynb", cell.source)
    # papermill's "injected-parameters" cell says how the chapter was run; the note says it for the reader.
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("# "):
            title, _, rest = cell.source.lstrip().partition("\n")
            cell.source = title + "\n\n" + admonition + ("\n" + rest if rest.strip() else "")
            break
    else:
        notebook.cells.insert(0, nbformat.v4.new_markdown_cell(admonition))
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
