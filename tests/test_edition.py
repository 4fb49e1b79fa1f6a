"""Editions: a reproduce run's executed notebooks become the book's chapters, each page opening with a note that
names the edition, datasets, hardware, and each chapter's commit and date; publishing is the one step that puts a
run's notebooks and records into the repository, and never a checkpoint."""
import json
import os
import subprocess
import sys

import nbformat
import pytest
import yaml

from cifar_lab.book import edition, record
from cifar_lab.errors import UsageError

RECORD = dict(unit="fraction", dataset="fashion_mnist", data_source="/x", train_images=60000, test_images=10000,
              recipe_epochs=15, device="cpu", dirty=False, command="cifar-lab run", run_folder=None)


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
    return root


def a_record(label, values, commit="abcdef1234567", measured=record.FINAL_ACCURACY):
    return record.Record(label=label, measured=measured, seeds=list(range(len(values))), values=values,
                         epochs=[3] * len(values), optimizer_steps=[], commit=commit, date="2026-12-02T07:00:00+00:00",
                         **RECORD)


def make_run(run, scales=("cpu", "cpu"), failed=(), chapters=("01", "02"), commit="abcdef1234567", dirty=(),
             labels=("baseline",), text="1 + 1"):
    entries = {}
    for (stem, chapter_id), scale in zip((("01_first", "01"), ("02_second", "02")), scales):
        if chapter_id not in chapters:
            continue
        folder = run / stem
        folder.mkdir(parents=True)
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {chapter_id}. Title\n\nText, then [the next](02_second.md)."),
                                                   nbformat.v4.new_code_cell(text)])
        nbformat.write(notebook, folder / f"{stem}.ipynb")
        (folder / "metrics.json").write_text("{}")
        (folder / "environment.json").write_text("{}")
        (folder / "last.pt").write_bytes(b"checkpoint")
        record.save(folder / "records.json", [a_record(f"{label} {chapter_id}", [0.8, 0.82, 0.81], commit)
                                              for label in labels],
                    {f"{label} {chapter_id}": {"runs": []} for label in labels})
        entries[chapter_id] = {
            "chapter": chapter_id, "notebook": f"notebooks/{stem}.md", "scale": scale, "ran_as": scale,
            "status": "failed" if chapter_id in failed else "ok", "error": "boom" if chapter_id in failed else None,
            "folder": stem, "executed_notebook": f"{stem}/{stem}.ipynb", "records": f"{stem}/records.json",
            "environment": {"commit": commit, "dirty": chapter_id in dirty, "device": "cpu", "cpu": "Test CPU",
                            "start_utc": f"2026-12-0{1 + len(entries)}T07:00:00+00:00"}}
    (run / "results.json").write_text(json.dumps({"chapters": entries, "updated_utc": "2026-12-02T07:00:00Z"}))
    return run


def files_of(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_stage_adds_the_note_to_every_page_and_turns_execution_off(tmp_path):
    make_repo(tmp_path / "repo")
    run = make_run(tmp_path / "run", dirty=("02",))
    stage = edition.stage(run, tmp_path / "stage", root=tmp_path / "repo")
    config = yaml.safe_load((stage / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert "**/*.ipynb" not in config["exclude_patterns"]
    assert not (stage / "book" / "edition").exists()
    intro = (stage / "book" / "intro.md").read_text()
    assert intro.startswith("# The book\n") and "Edition `cpu`" in intro
    # the prose pages name every chapter's commit and whether its tree was clean
    assert "chapter 01 at commit abcdef1 (clean tree, 2026-12-01)" in intro
    assert "chapter 02 at commit abcdef1 (uncommitted changes, 2026-12-02)" in intro
    for stem, tree in (("01_first", "clean tree"), ("02_second", "uncommitted changes")):
        notebook = nbformat.read(stage / "notebooks" / f"{stem}.ipynb", as_version=4)
        first = notebook.cells[0].source
        assert first.startswith("# ") and "Edition `cpu`" in first and "Fashion-MNIST" in first
        assert f"executed at commit abcdef1 ({tree})" in first
        assert "Test CPU" in first
        assert first.index("About this edition") < first.index("Text")   # right under the title
        # the chapters are executed .ipynb files in the staged tree: links to their .md sources follow them
        assert "[the next](02_second.ipynb)" in first


def test_stage_refuses_mixed_scales_and_missing_chapters(tmp_path):
    make_repo(tmp_path / "repo")
    with pytest.raises(UsageError, match="one scale"):
        edition.stage(make_run(tmp_path / "mixed", scales=("cpu", "smoke")), tmp_path / "s1", root=tmp_path / "repo")
    run = make_run(tmp_path / "partial", chapters=("01",))
    with pytest.raises(UsageError, match="no executed 02_second"):
        edition.stage(run, tmp_path / "s2", root=tmp_path / "repo")
    with pytest.raises(UsageError, match="missing or unreadable"):
        edition.stage(tmp_path / "nothing", tmp_path / "s3", root=tmp_path / "repo")


def test_a_failed_chapter_says_so_on_its_page(tmp_path):
    make_repo(tmp_path / "repo")
    stage = edition.stage(make_run(tmp_path / "run", failed=("02",)), tmp_path / "stage", root=tmp_path / "repo")
    notebook = nbformat.read(stage / "notebooks" / "02_second.ipynb", as_version=4)
    assert "**failed**" in notebook.cells[0].source


def test_publish_keeps_notebooks_metrics_provenance_and_records_never_checkpoints(tmp_path):
    """Mutant caught: a publish that copies the run folder whole (checkpoints included) or leaves the records
    out of the repository."""
    repo = make_repo(tmp_path / "repo")
    run = make_run(tmp_path / "run")
    target = edition.publish(run, repo)
    assert target == repo / "book" / "edition"
    assert files_of(target) == ["01_first/01_first.ipynb", "01_first/environment.json", "01_first/metrics.json",
                                "02_second/02_second.ipynb", "02_second/environment.json", "02_second/metrics.json",
                                "chapters/01_first.json", "chapters/02_second.json", "results.json"]
    # the records are where readers look for them: book/results/chapters/<notebook>.json
    committed = edition.committed_records("02_second", repo)
    assert committed == repo / "book" / "results" / "chapters" / "02_second.json"
    records, _ = record.load(committed)
    assert records == record.load(run / "02_second" / "records.json")[0]
    assert not list(repo.glob("book/.staging-*")) and not list(repo.glob("book/.edition.old-*"))


def test_publishing_some_chapters_keeps_the_others_and_the_labels_they_did_not_measure(tmp_path):
    """A run of one chapter replaces that chapter's notebook and the labels it measured; the other chapter and
    the labels the run did not measure stay, each record with its own commit. Mutant caught: a publish that
    replaces the whole edition with a partial run (chapter 01 and the label `curves 02` would vanish)."""
    repo = make_repo(tmp_path / "repo")
    edition.publish(make_run(tmp_path / "first", labels=("baseline", "curves")), repo)
    again = make_run(tmp_path / "second", chapters=("02",), commit="1234567abcdef", labels=("baseline",),
                     text="2 + 2")
    target = edition.publish(again, repo)
    results = edition.read_results(target)
    assert sorted(results["chapters"]) == ["01", "02"]
    assert results["chapters"]["02"]["environment"]["commit"] == "1234567abcdef"
    assert "2 + 2" in (target / "02_second" / "02_second.ipynb").read_text()
    assert "1 + 1" in (target / "01_first" / "01_first.ipynb").read_text()
    records, extras = record.load(edition.committed_records("02_second", repo))
    commits = {r.label: r.commit for r in records}
    assert commits == {"curves 02": "abcdef1234567", "baseline 02": "1234567abcdef"}
    assert sorted(extras) == ["baseline 02", "curves 02"]
    facts = edition.note(results)
    assert facts["chapters"]["01"]["commit"] == "abcdef1" and facts["chapters"]["02"]["commit"] == "1234567"


def test_publish_refuses_a_scale_that_would_mix_and_a_folder_in_place_of_the_link(tmp_path):
    repo = make_repo(tmp_path / "repo")
    edition.publish(make_run(tmp_path / "cpu"), repo)
    before = files_of(repo / "book" / "edition")
    with pytest.raises(UsageError, match="one scale"):
        edition.publish(make_run(tmp_path / "smoke", scales=("smoke", "smoke"), chapters=("01",)), repo)
    assert files_of(repo / "book" / "edition") == before
    link = repo / "book" / "results" / "chapters"
    link.unlink()
    link.mkdir()
    with pytest.raises(UsageError, match="must be a link"):
        edition.publish(make_run(tmp_path / "again"), repo)
    assert files_of(repo / "book" / "edition") == before


def test_cli_stage_of_a_missing_edition_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "edition", "stage", "--from", str(tmp_path / "none"),
                           "--to", str(tmp_path / "stage")], capture_output=True, text=True)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "book.sh --edition" in done.stderr
    assert not (tmp_path / "stage").exists()


def test_cli_publish_puts_the_run_into_the_repository(tmp_path):
    repo = make_repo(tmp_path / "repo")
    run = make_run(tmp_path / "run")
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "edition", "publish", str(run),
                           "--to", str(repo)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "chapter 01 at commit abcdef1 (clean tree, 2026-12-01)" in done.stdout
    assert os.path.islink(repo / "book" / "results" / "chapters")
    assert (repo / "book" / "results" / "chapters" / "01_first.json").is_file()
