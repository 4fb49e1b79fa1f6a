"""`cifar-lab edition publish` killed (SIGKILL) at every stage of its work: the repository then holds the old
edition or the new one, records included, never a mix; and the next publish leaves no staging folder or
renamed-aside tree behind.

The publish runs in a subprocess that stops where the test wants it: at a named point of the code
(`io.PAUSE_ENV`: while copying, once the new tree is staged, right after the swap, or between the two renames
where the system cannot exchange two paths), or inside a deletion, through a `shutil.rmtree` that deletes file
by file and says so. The kill comes at that moment.

The mutant this file is named for: `io.staged_dir` deleting the old tree before moving the new one in
(`shutil.rmtree(target); staging.replace(target)`, as it once did): killed inside that deletion, the edition
holds part of the old files and none of the new (`test_killed_while_the_old_tree_is_deleted`). Each test names
the mutants it catches.
"""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from cifar_lab.book import edition, record
from cifar_lab.io import PAUSE_ENV

# eight chapters of four published files each: a deletion or a copy has many steps to be killed between
CHAPTERS = tuple((f"0{k}_chapter", f"0{k}") for k in range(1, 9))

DRIVER = r"""
import os, shutil, sys, time
from cifar_lab import io
if os.environ.get("SLOW_RMTREE"):
    def slow_rmtree(path, ignore_errors=False, **kwargs):
        # one file at a time, each announced: the test kills in the middle of a deletion
        for folder, _, names in os.walk(path, topdown=False):
            for name in names:
                os.unlink(os.path.join(folder, name))
                print("deleted", os.path.join(folder, name), file=sys.stderr, flush=True)
                time.sleep(0.02)
            os.rmdir(folder) if folder != str(path) else None
        os.rmdir(path)
    shutil.rmtree = slow_rmtree
if os.environ.get("NO_EXCHANGE"):
    def no_exchange(first, second):
        raise NotImplementedError("this system cannot exchange two paths")
    io.exchange = no_exchange
from cifar_lab.cli.main import main
sys.exit(main(["edition", "publish", "--from", sys.argv[1], "--to", sys.argv[2]]))
"""


def make_run(run: Path, tag: str) -> Path:
    """A reproduce run of three chapters whose every file says `tag`."""
    entries = {}
    for stem, chapter_id in CHAPTERS:
        folder = run / stem
        folder.mkdir(parents=True)
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {chapter_id}. {tag}")]),
                       folder / f"{stem}.ipynb")
        (folder / "metrics.json").write_text(json.dumps({"tag": tag}))
        (folder / "environment.json").write_text(json.dumps({"tag": tag}))
        (folder / "last.pt").write_bytes(b"a checkpoint, never published")
        record.save(folder / "records.json", [record.Record(
            label="variant", measured=record.FINAL_ACCURACY, unit="fraction", seeds=[0], values=[0.5],
            dataset="synthetic", data_source=None, train_images=1, test_images=1, epochs=[1], recipe_epochs=1,
            optimizer_steps=[1], device="cpu", commit=tag * 7, dirty=False, command=None, date=None,
            run_folder=None)], {})
        entries[chapter_id] = {"chapter": chapter_id, "notebook": f"notebooks/{stem}.md", "scale": "cpu",
                               "ran_as": "cpu", "status": "ok", "folder": stem,
                               "executed_notebook": f"{stem}/{stem}.ipynb", "records": f"{stem}/records.json",
                               "environment": {"commit": tag * 7, "dirty": False, "tag": tag}}
    (run / "results.json").write_text(json.dumps({"chapters": entries, "updated_utc": tag}))
    return run


def snapshot(repo: Path) -> dict:
    """Every file of the edition and of the committed records, with its bytes."""
    found = {}
    for top in (repo / "book" / "edition", repo / "book" / "results" / "chapters"):
        if top.exists():
            found.update({str(p.relative_to(repo)): p.read_bytes() for p in sorted(top.rglob("*")) if p.is_file()})
    return found


def leftovers(repo: Path) -> list[str]:
    return sorted(p.name for p in (repo / "book").iterdir() if p.name.startswith(".") and p.name != ".lock") + \
        sorted(p.name for p in (repo / "book" / "results").iterdir() if p.name.startswith("."))


@pytest.fixture
def published(tmp_path):
    """A repository with the edition of run "a" published, the runs "b" and "c" ready, and the snapshots of the
    repository with "a" (old) and with "b" (new) published, made by publishing in a scratch copy."""
    repo = tmp_path / "repo"
    (repo / "book" / "results").mkdir(parents=True)
    runs = {tag: make_run(tmp_path / f"run_{tag}", tag) for tag in "abc"}
    edition.publish(runs["a"], repo)
    scratch = tmp_path / "scratch"
    (scratch / "book" / "results").mkdir(parents=True)
    edition.publish(runs["b"], scratch)
    return repo, runs, snapshot(repo), snapshot(scratch)


def kill_publish(repo: Path, run: Path, trigger: str, **env) -> None:
    """Start a publish of `run` into `repo` and SIGKILL it as soon as its stderr shows a line starting with
    `trigger`; fail if it ends first."""
    environment = {**os.environ, **env}
    process = subprocess.Popen([sys.executable, "-c", DRIVER, str(run), str(repo)], stderr=subprocess.PIPE,
                               text=True, env=environment)
    seen = []
    try:
        for line in process.stderr:
            seen.append(line)
            if line.startswith(trigger):
                os.kill(process.pid, signal.SIGKILL)
                break
    finally:
        process.wait(timeout=120)
    assert process.returncode == -signal.SIGKILL, f"the publish ended before {trigger!r}: {''.join(seen)}"


def check_old_or_new_then_clean(repo, runs, old, new, read_first=False):
    if read_first:   # a reader (stage, a chapter, a claim) puts back a tree left renamed aside
        edition.read_results(repo / "book" / "edition")
    state = snapshot(repo)
    assert state in (old, new), "the killed publish left a mix of editions: " + \
        f"{len(set(state) & set(old))} old paths, {len(set(state) & set(new))} new paths of {len(state)}"
    edition.publish(runs["c"], repo)
    assert leftovers(repo) == []
    assert sorted(snapshot(repo)) == sorted(new)
    results = edition.read_results(repo / "book" / "edition")
    assert {entry["environment"]["tag"] for entry in results["chapters"].values()} == {"c"}


@pytest.mark.parametrize("point", ["copying", "staged", "exchanged"])
def test_killed_at_a_named_point_of_the_publish(published, point):
    """Killed while the new tree is built, once it is staged, or right after the swap: the old edition, or
    (after the swap) the new one, with nothing to repair first. Mutants caught: a publish that copies straight
    into book/edition (killed while copying: a mix); a publish that leaves the staging folder of a killed one
    (`remove_stale_folders` not called: `.staging-edition-*` is still there after the next publish)."""
    repo, runs, old, new = published
    kill_publish(repo, runs["b"], f"paused at {point}", **{PAUSE_ENV: point})
    check_old_or_new_then_clean(repo, runs, old, new)
    assert snapshot(repo) != old   # the next publish went through


def test_killed_while_the_old_tree_is_deleted(published):
    """Killed after the first file of a deletion: where the swap comes first, the deletion is the old tree at the
    staging path and the edition is the new one, whole. Mutant caught: the rmtree-before-replace `staged_dir`,
    which deletes the live edition instead (killed, 40 of the old 41 files remain and none of the new)."""
    repo, runs, old, new = published
    kill_publish(repo, runs["b"], "deleted", SLOW_RMTREE="1")
    assert snapshot(repo) == new
    check_old_or_new_then_clean(repo, runs, old, new)


def test_killed_between_the_two_renames_where_paths_cannot_be_exchanged(published):
    """Without an atomic exchange, the old tree is renamed aside before the new one moves in: killed between
    the two renames, the next reader puts the old tree back. Mutant caught: a reader without
    `restore_interrupted` (no edition at all), and the rmtree-before-replace `staged_dir` (no such point: the
    publish ends, having deleted the old tree first)."""
    repo, runs, old, new = published
    kill_publish(repo, runs["b"], "paused at aside", NO_EXCHANGE="1", **{PAUSE_ENV: "aside"})
    assert not (repo / "book" / "edition").exists()   # the instant between the two renames
    check_old_or_new_then_clean(repo, runs, old, new, read_first=True)


def test_killed_while_the_renamed_aside_tree_is_deleted(published):
    """Without an exchange, the deletion is of the tree renamed aside, after the new one moved in. Mutant
    caught: the rmtree-before-replace `staged_dir` (killed inside the deletion of the live edition)."""
    repo, runs, old, new = published
    kill_publish(repo, runs["b"], "deleted", NO_EXCHANGE="1", SLOW_RMTREE="1")
    assert snapshot(repo) == new
    check_old_or_new_then_clean(repo, runs, old, new)
