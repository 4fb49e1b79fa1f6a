"""Editions: a reproduce run's executed notebooks become the book's chapters, each page opening with a note that
names the edition, datasets, hardware, commit and date; publishing keeps the small files and never a checkpoint."""
import json
import subprocess
import sys

import nbformat
import pytest
import yaml

from cifar_lab.book import edition
from cifar_lab.errors import UsageError


def make_repo(root):
    (root / "book").mkdir(parents=True)
    (root / "book" / "intro.md").write_text("# The book\n\nWelcome.\n")
    (root / "book" / "edition").mkdir()
    (root / "book" / "edition" / "stale.ipynb").write_text("{}")
    (root / "_toc.yml").write_text(yaml.safe_dump({
        "format": "jb-book", "root": "book/intro",
        "parts": [{"caption": "Chapters", "chapters": [{"file": "notebooks/01_first"}, {"file": "notebooks/02_second"}]}]}))
    (root / "_config.yml").write_text(yaml.safe_dump({
        "title": "t", "exclude_patterns": ["**/*.ipynb", "_build"], "execute": {"execute_notebooks": "force"}}))


def make_run(run, scales=("cpu", "cpu"), failed=()):
    chapters = {}
    for (stem, chapter_id), scale in zip((("01_first", "01"), ("02_second", "02")), scales):
        folder = run / stem
        folder.mkdir(parents=True)
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {chapter_id}. Title\n\nText, then [the next](02_second.md)."),
                                                   nbformat.v4.new_code_cell("1 + 1")])
        nbformat.write(notebook, folder / f"{stem}.ipynb")
        (folder / "metrics.json").write_text("{}")
        (folder / "environment.json").write_text("{}")
        (folder / "last.pt").write_bytes(b"checkpoint")
        chapters[chapter_id] = {
            "chapter": chapter_id, "notebook": f"notebooks/{stem}.md", "scale": scale, "ran_as": scale,
            "status": "failed" if chapter_id in failed else "ok", "error": "boom" if chapter_id in failed else None,
            "executed_notebook": f"{stem}/{stem}.ipynb",
            "environment": {"commit": "abcdef1234567", "dirty": False, "device": "cpu", "cpu": "Test CPU"}}
    (run / "results.json").write_text(json.dumps({"chapters": chapters, "updated_utc": "2026-12-02T07:00:00Z"}))
    return run


def test_stage_adds_the_note_to_every_page_and_turns_execution_off(tmp_path):
    make_repo(tmp_path / "repo")
    run = make_run(tmp_path / "run")
    stage = edition.stage(run, tmp_path / "stage", root=tmp_path / "repo")
    config = yaml.safe_load((stage / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert "**/*.ipynb" not in config["exclude_patterns"]
    assert not (stage / "book" / "edition").exists()
    intro = (stage / "book" / "intro.md").read_text()
    assert intro.startswith("# The book\n") and "Edition `cpu`" in intro and "abcdef1" in intro
    for stem in ("01_first", "02_second"):
        notebook = nbformat.read(stage / "notebooks" / f"{stem}.ipynb", as_version=4)
        first = notebook.cells[0].source
        assert first.startswith("# ") and "Edition `cpu`" in first and "Fashion-MNIST" in first
        assert "Test CPU" in first and "2026-12-02" in first
        assert first.index("About this edition") < first.index("Text")   # right under the title
        # the chapters are executed .ipynb files in the staged tree: links to their .md sources follow them
        assert "[the next](02_second.ipynb)" in first


def test_stage_refuses_mixed_scales_and_missing_chapters(tmp_path):
    make_repo(tmp_path / "repo")
    with pytest.raises(UsageError, match="one scale"):
        edition.stage(make_run(tmp_path / "mixed", scales=("cpu", "smoke")), tmp_path / "s1", root=tmp_path / "repo")
    run = make_run(tmp_path / "partial")
    results = json.loads((run / "results.json").read_text())
    del results["chapters"]["02"]
    (run / "results.json").write_text(json.dumps(results))
    with pytest.raises(UsageError, match="no executed 02_second"):
        edition.stage(run, tmp_path / "s2", root=tmp_path / "repo")
    with pytest.raises(UsageError, match="missing or unreadable"):
        edition.stage(tmp_path / "nothing", tmp_path / "s3", root=tmp_path / "repo")


def test_a_failed_chapter_says_so_on_its_page(tmp_path):
    make_repo(tmp_path / "repo")
    stage = edition.stage(make_run(tmp_path / "run", failed=("02",)), tmp_path / "stage", root=tmp_path / "repo")
    notebook = nbformat.read(stage / "notebooks" / "02_second.ipynb", as_version=4)
    assert "**failed**" in notebook.cells[0].source


def test_publish_keeps_notebooks_metrics_and_provenance_never_checkpoints(tmp_path):
    run = make_run(tmp_path / "run")
    target = tmp_path / "edition"
    target.mkdir()
    (target / "old.txt").write_text("replaced")
    edition.publish(run, target)
    kept = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert kept == ["01_first/01_first.ipynb", "01_first/environment.json", "01_first/metrics.json",
                    "02_second/02_second.ipynb", "02_second/environment.json", "02_second/metrics.json",
                    "results.json"]


def test_cli_stage_of_a_missing_edition_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "edition", "stage", "--from", str(tmp_path / "none"),
                           "--to", str(tmp_path / "stage")], capture_output=True, text=True)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "book.sh --edition" in done.stderr
    assert not (tmp_path / "stage").exists()
