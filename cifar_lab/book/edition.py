"""The book's editions: every chapter executed at one scale, then built into HTML without executing it again.

An edition is what `cifar-lab reproduce --scale S --out RUN` leaves behind: one executed notebook per chapter,
its `metrics.json` and `environment.json`, and `results.json`. Three scales make three editions:

- `smoke`: synthetic images in the CIFAR and ImageNet layouts, CPU-sized runs (what CI executes);
- `cpu`: the real-data edition: the chapters' Fashion-MNIST sections run at CPU scale on the real dataset,
  the CIFAR/ImageNet parts as in smoke mode (each chapter's note says which ran);
- `full`: the CIFAR and ImageNet recipes, for a machine with a GPU and the datasets.

`publish(run_dir, edition_dir)` keeps the small files of such a run (the executed notebooks, metrics,
provenance and results, never checkpoints), which is how the committed edition in `book/edition/` is made.
`stage(edition_dir, stage_dir)` lays out a Jupyter Book source tree whose chapters are those executed
notebooks, with execution off and every page opening with a note that names the edition, its datasets, the
hardware, the commit and the date; `jupyter-book build STAGE` turns it into HTML.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Optional

from .. import provenance
from ..errors import UsageError
from ..io import atomic_write_text, staged_dir

EDITIONS = ("smoke", "cpu", "full")
DATASETS = {
    "smoke": "synthetic images written in the CIFAR and ImageNet file layouts (no real dataset)",
    "cpu": "Fashion-MNIST (Zalando, the official 60,000 + 10,000 images) in the real-data sections; synthetic "
           "images in the CIFAR and ImageNet layouts elsewhere",
    "full": "CIFAR-10, CIFAR-100, ImageNet-100 and ImageNet-1k",
}
RESULTS = "results.json"
KEPT = ("metrics.json", "environment.json")   # per chapter, beside its executed notebook
BOOK_PAGES = ("book",)                        # prose pages, copied with the note added


def read_results(edition_dir) -> dict:
    """results.json of an edition folder; a one-line error naming the command that makes one."""
    path = Path(edition_dir) / RESULTS
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError):
        raise UsageError(f"{path} is missing or unreadable: make the edition with scripts/book.sh --edition "
                         f"smoke|cpu|full (or cifar-lab reproduce --scale S --out {Path(edition_dir)})") from None
    if not isinstance(results.get("chapters"), dict) or not results["chapters"]:
        raise UsageError(f"{path} lists no executed chapter; run the edition again")
    return results


def edition_of(results: dict) -> str:
    """The scale every chapter of the run was asked to run at (one edition per folder)."""
    scales = sorted({entry.get("scale") for entry in results["chapters"].values()})
    if len(scales) != 1 or scales[0] not in EDITIONS:
        raise UsageError(f"an edition runs every chapter at one scale; this folder mixes {', '.join(map(str, scales))}")
    return scales[0]


def note(results: dict) -> dict:
    """What the note on every page says: edition, datasets, hardware, commit(s) and date."""
    edition = edition_of(results)
    entries = list(results["chapters"].values())
    environments = [entry.get("environment") or {} for entry in entries]
    commits = sorted({provenance.short_commit(env) for env in environments})   # "+dirty": uncommitted changes
    hardware = sorted({", ".join(str(part) for part in (env.get("device"), env.get("cpu")) if part)
                       for env in environments} - {""})
    failed = sorted(entry["chapter"] for entry in entries if entry.get("status") != "ok")
    return {"edition": edition, "datasets": DATASETS[edition], "hardware": "; ".join(hardware) or "unknown",
            "commit": ", ".join(commits), "date": str(results.get("updated_utc", "?"))[:10],
            "failed": failed}


def note_markdown(facts: dict, chapter: Optional[dict] = None) -> str:
    """The note as a MyST admonition; for a chapter, also the scale it actually ran at."""
    lines = [f"**Edition `{facts['edition']}`**, built from the executed notebooks of commit {facts['commit']} "
             f"on {facts['date']}.", "",
             f"Data: {facts['datasets']}. Hardware: {facts['hardware']}."]
    if chapter is not None and chapter.get("ran_as") not in (None, chapter.get("scale")):
        lines += ["", f"This chapter ran as `{chapter['ran_as']}`: {chapter.get('note') or ''}".rstrip(": ")]
    if chapter is not None and chapter.get("status") != "ok":
        lines += ["", f"This chapter **failed** in this edition: {chapter.get('error')}"]
    return "```{admonition} About this edition\n:class: note\n" + "\n".join(lines) + "\n```\n"


def publish(run_dir, edition_dir) -> Path:
    """Copy the small files of a reproduce run (executed notebooks, metrics, provenance, results) into
    `edition_dir`, replacing what was there at once (staged, then renamed)."""
    run = Path(run_dir)
    results = read_results(run)
    edition_of(results)
    with staged_dir(Path(edition_dir)) as staging:
        for entry in results["chapters"].values():
            executed = entry.get("executed_notebook")
            if not executed:
                continue
            source = run / executed
            target = staging / executed
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            for name in KEPT:
                if (source.parent / name).is_file():
                    shutil.copy2(source.parent / name, target.parent / name)
        atomic_write_text(staging / RESULTS, json.dumps(results, indent=2, default=str) + "\n")
    return Path(edition_dir)


def stage(edition_dir, stage_dir, root: Optional[Path] = None) -> Path:
    """A Jupyter Book source tree in `stage_dir` built from an edition: the repository's configuration with
    execution off, its table of contents and prose pages, and the executed notebooks as the chapters."""
    import yaml

    from .reproduce import toc_files

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
