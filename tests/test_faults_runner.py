"""`cifar-lab run` faults: mistyped parameter values, an --out that cannot be a folder, the number of the failing
cell, and the Jupyter kernel's own chatter on stderr. Each is one line on stderr, no traceback, and a known state
on disk. Notebooks that execute are tiny temporary ones."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest

from cifar_lab.cli import main
from cifar_lab.book.runner import _forward_kernel_stderr, check_parameters, default_type, source_code_cell

ROOT = Path(__file__).resolve().parents[1]
RESNET_NOTEBOOK = ROOT / "notebooks" / "02_cifar10_resnet18.md"

FRONT_MATTER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""
PARAMETERS = """from cifar_lab.book.notebook import smoke_default

out_dir = "x"
steps = 3
rate = 0.5
verbose = True
smoke = smoke_default()
label = "a"
extra = None
"""


def write_notebook(folder: Path, *code_cells: str, name: str = "tiny.md") -> Path:
    """A MyST notebook: a parameters cell, then each code cell after a line of markdown."""
    parts = [FRONT_MATTER, f"```{{code-cell}} ipython3\n:tags: [parameters]\n\n{PARAMETERS}```\n"]
    for number, source in enumerate(code_cells, start=2):
        parts.append(f"\n+++\n\nText before code cell {number}.\n\n```{{code-cell}} ipython3\n{source}\n```\n")
    path = folder / name
    path.write_text("".join(parts))
    return path


def cifar_lab(*args, cwd):
    return subprocess.run([sys.executable, "-m", "cifar_lab", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


# 1. typed defaults

@pytest.mark.parametrize("default, expected", [
    ("3", int), ("10_000", int), ("-2", int), ("0.5", float), ("1e-3", float), ("True", bool), ("False", bool),
    ("smoke_default()", bool), ("notebook.smoke_default()", bool), ("None", None), ('"auto"', None),
    ("[16, 32]", None), ('os.environ.get("CIFAR_LAB_DATA", "../data")', None), ("max(1, 2)", None),
])
def test_default_type_comes_from_literals_and_known_helpers(default, expected):
    assert default_type(default) is expected


@pytest.mark.parametrize("name, value, words", [
    ("steps", "maybe", "an int"), ("steps", "0.5", "an int"), ("steps", "true", "an int"),
    ("rate", "fast", "a number"), ("verbose", "1", "a bool"), ("smoke", "maybe", "a bool"),
])
def test_value_of_the_wrong_type_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, name, value, words):
    notebook = write_notebook(tmp_path, "print(steps)")
    out = tmp_path / "never"
    assert main(["run", str(notebook), "--out", str(out), "-p", name, value]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"parameter {name} " in line and words in line and value in line, line
    assert not out.exists()


def test_values_of_the_default_type_are_accepted(tmp_path):
    notebook = write_notebook(tmp_path, "print(steps)")
    given = {"steps": 7, "rate": 2, "verbose": False, "smoke": True, "label": 5, "extra": [1, 2]}
    check_parameters(notebook, jupytext.read(notebook), given)  # an int for the float `rate`; None takes anything
    check_parameters(notebook, jupytext.read(notebook), {"rate": 0.25, "label": "b", "extra": "text"})


def test_resnet_smoke_maybe_is_refused_before_anything_runs(tmp_path):
    done = cifar_lab("run", RESNET_NOTEBOOK, "--out", "R", "-p", "smoke", "maybe", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    line = one_line(done.stderr)
    assert line.startswith("cifar-lab run: error:") and "smoke" in line and "bool" in line, line
    assert not (tmp_path / "R").exists() and done.stdout == ""


# 2. --out under a file

def test_out_under_a_regular_file_is_one_line_exit_2(tmp_path):
    notebook = write_notebook(tmp_path, "print(steps)")
    (tmp_path / "file").write_text("keep me\n")
    done = cifar_lab("run", notebook, "--out", "file/sub", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    line = one_line(done.stderr)
    assert "--out" in line and "file" in line and "not a folder" in line, line
    assert (tmp_path / "file").read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "tiny.md"]


# 3. the number of the failing cell

def test_failing_cell_is_named_once_as_in_the_md_with_its_first_line(tmp_path):
    """Mutant caught: the message names the cell twice with two different numbers ("code cell 3" of the .md
    and "cell [4]", the executed notebook's count, which includes papermill's injected cell), or counts the
    injected cell in the number it gives."""
    import re

    notebook = write_notebook(tmp_path, "x = steps", "raise ValueError(f'boom {x}')")
    done = cifar_lab("run", notebook, "--out", "out", "-p", "steps", "5", cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-3000:]
    line = one_line(done.stderr)
    executed = tmp_path / "out" / "tiny.ipynb"
    assert line.endswith(f"""failed in code cell 3 ("raise ValueError(f'boom {{x}}')") with ValueError: boom 5; """
                         f"the traceback is in the executed notebook {executed}"), line
    assert re.findall(r"\d+", line.split(" failed in ")[1].split(" with ")[0]) == ["3"], line   # one number
    source_cells = [c for c in jupytext.read(notebook).cells if c.cell_type == "code"]
    assert "raise ValueError" in source_cells[3 - 1].source   # code cell 3 of the .md is the one that raised
    failed = [c for c in nbformat.read(executed, as_version=4).cells
              if c.cell_type == "code" and any(o.output_type == "error" for o in c.outputs)]
    assert len(failed) == 1 and failed[0].source.startswith("raise ValueError")  # the quoted line finds it


def test_notebook_already_holding_an_injected_cell_keeps_its_numbering():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("out_dir = 'x'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("out_dir = 'y'", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("1 / 0"),
    ])
    assert source_code_cell(nb, 3) == 3  # papermill replaced the injected cell in place
    fresh = nbformat.v4.new_notebook(cells=[nb.cells[0], nb.cells[2], nb.cells[3]])
    assert source_code_cell(fresh, 1) is None and source_code_cell(fresh, 3) == 2


# 4. the kernel's own chatter

def test_kernel_transport_warning_does_not_reach_stderr(tmp_path):
    notebook = write_notebook(tmp_path, "print(steps)")
    done = cifar_lab("run", notebook, "--out", "out", "-p", "steps", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "without encryption" not in done.stderr and "KeyboardInterrupt" not in done.stderr, done.stderr
    assert done.stderr.strip() == ""
    assert (tmp_path / "out" / "tiny.ipynb").is_file()


def test_other_kernel_stderr_still_comes_through(capsys):
    read_end, write_end = os.pipe()
    os.write(write_end, b"[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All of it.\n"
                        b"a real problem\n"
                        b"[IPKernelApp] ERROR | KeyboardInterrupt caught in kernel.\n")
    os.close(write_end)
    _forward_kernel_stderr(read_end)
    assert capsys.readouterr().err == "a real problem\n"


# 5. sweeps: a worker that dies, threads per worker, which finished points count as done

def sweep_notebook(folder: Path) -> Path:
    """A point records the thread settings its kernel was given; the point x=2 kills its worker process (the
    kernel's parent) with SIGKILL, as the kernel OOM killer would."""
    return write_notebook(folder, "import json, os, pathlib, signal\n"
                                  "if steps == 2:\n    os.kill(os.getppid(), signal.SIGKILL)\n"
                                  "pathlib.Path(out_dir, 'metrics.json').write_text(json.dumps({'steps': steps, "
                                  "'omp': os.environ.get('OMP_NUM_THREADS')}))")


def test_a_killed_sweep_worker_fails_its_point_only_and_workers_share_the_cores(tmp_path):
    import pandas as pd

    notebook, out = sweep_notebook(tmp_path), tmp_path / "S"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "sweep", str(notebook), "--grid", "steps=1,2,3,4",
                           "--jobs", "2", "--out", str(out)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env=env)
    assert done.returncode == 1, done.stderr[-3000:]
    line = one_line(done.stderr)
    assert "1 of 4 sweep points failed (steps2)" in line and "SIGKILL" in line, line
    table = pd.read_csv(out / "results.csv").set_index("steps")
    assert list(table.index) == [1, 2, 3, 4]
    assert table.loc[2, "status"] == "failed" and "worker process was killed by SIGKILL" in table.loc[2, "error"]
    ok = table.drop(index=2)
    assert set(ok["status"]) == {"ok"}
    # Two workers side by side on this machine's cores: each kernel got its share, at least one thread.
    assert set(ok["omp"]) == {max(1, len(os.sched_getaffinity(0)) // 2)}
    assert "4 points: 3 ran, 0 already done (skipped), 1 failed" in done.stdout


def git_repo(folder: Path) -> Path:
    folder.mkdir()
    (folder / "a.py").write_text("x = 1\n")
    for args in (["init", "-q"], ["add", "a.py"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a"]):
        subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)
    return folder


def test_code_version_names_the_commit_and_every_uncommitted_change(tmp_path):
    from cifar_lab.book.runner import code_version

    repo = git_repo(tmp_path / "repo")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert code_version(repo) == commit                      # a clean tree is its commit
    (repo / "a.py").write_text("x = 2\n")
    edited = code_version(repo)
    assert edited.startswith(commit + "+") and code_version(repo) == edited   # the same edit, the same version
    (repo / "a.py").write_text("x = 3\n")
    assert code_version(repo) not in (edited, commit)        # another edit at the same commit
    (repo / "a.py").write_text("x = 2\n")
    (repo / "new.py").write_text("y = 1\n")
    assert code_version(repo) not in (edited, commit)        # an untracked file can change what runs
    assert code_version(tmp_path) == "unknown"               # not a checkout


def test_a_point_finished_with_other_code_is_not_done(tmp_path):
    from cifar_lab.book import reproduce
    from cifar_lab.book.runner import CODE_VERSION, is_done, mark_done, same_code

    folder, notebook, parameters = tmp_path / "p", tmp_path / "nb.md", {"x": 1}
    folder.mkdir()
    (folder / "metrics.json").write_text("{}")
    mark_done(folder, notebook, parameters, "c0ffee")
    assert is_done(folder, notebook, parameters, "c0ffee")
    assert not is_done(folder, notebook, parameters, "beef")              # another commit
    assert not is_done(folder, notebook, parameters, "c0ffee+0123456789abcdef")  # same commit, a dirty tree
    assert not is_done(folder, notebook, {"x": 2}, "c0ffee")
    assert not same_code("unknown", "unknown") and not same_code(None, "unknown")
    entry = {"status": "ok", "scale": "smoke", "parameters": {}, "commit": "c0ffee",
             "environment": {"commit": "c0ffee", "dirty": True, CODE_VERSION: "c0ffee+0123456789abcdef"}}
    assert reproduce.is_done(entry, "c0ffee+0123456789abcdef", "smoke", {})
    assert not reproduce.is_done(entry, "c0ffee", "smoke", {})            # the changes were since committed away
    assert not reproduce.is_done(entry, "c0ffee+fedcba9876543210", "smoke", {})  # other uncommitted changes


# 6. one writer per output folder: two runs, sweeps or reproductions into one --out

def waiting_notebook(folder: Path, release: Path) -> Path:
    """A notebook that says it started (out_dir/started), then waits for `release` to exist before it writes its
    metrics: the test decides how long the first process holds its folder."""
    return write_notebook(folder, "import pathlib, time\n"
                                  "pathlib.Path(out_dir, 'started').write_text('started')\n"
                                  "deadline = time.monotonic() + 600\n"
                                  f"while not pathlib.Path({str(release)!r}).exists() and time.monotonic() < deadline:\n"
                                  "    time.sleep(0.05)\n"
                                  "pathlib.Path(out_dir, 'metrics.json').write_text('{\"done\": 1}')",
                          name="waiting.md")


# `cifar-lab reproduce` with the book's chapters replaced by one that waits: the real command otherwise, so
# its lock, and the nested lock of the chapter's own run in out/waiting, are the ones under test.
REPRODUCE_WAITING = """import sys
from pathlib import Path
from cifar_lab.book import reproduce
from cifar_lab.cli import main
notebook = Path(sys.argv[1])
reproduce.chapters = lambda root=None: [reproduce.Chapter("zz", notebook, "A chapter that waits")]
sys.exit(main(sys.argv[2:]))
"""


def book_command(kind: str, notebook: Path, out: Path) -> list[str]:
    if kind == "reproduce":
        return [sys.executable, "-c", REPRODUCE_WAITING, str(notebook), "reproduce", "--scale", "smoke",
                "--out", str(out)]
    if kind == "sweep":
        return [sys.executable, "-m", "cifar_lab", "sweep", str(notebook), "--grid", "steps=1", "--out", str(out)]
    return [sys.executable, "-m", "cifar_lab", "run", str(notebook), "--out", str(out)]


def tree(folder: Path, leave_out: str) -> dict:
    """Every file under `folder` with its size and modification time, but for the executed notebooks named
    `leave_out` (papermill saves the first process's copy now and then while a cell runs)."""
    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*")) if path.is_file() and path.name != leave_out}


@pytest.mark.parametrize("kind", ["run", "reproduce", "sweep"])
def test_a_second_process_on_the_same_out_stops_with_one_line_and_writes_nothing(tmp_path, kind):
    """Mutant caught: `runner.run_notebook` (kind run), `reproduce.reproduce` (reproduce) or `runner.sweep`
    (sweep) takes no lock on its output folder, so a second process into the same --out runs as well, rewrites
    environment.json, clears the first one's points and metrics, and both exit 0. The first process, whose own
    chapter or point runs in a sub-folder under the outer lock, must finish: no deadlock on its own lock."""
    release = tmp_path / "release"
    notebook, out = waiting_notebook(tmp_path, release), tmp_path / "out"
    first = subprocess.Popen(book_command(kind, notebook, out), cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not list(out.rglob("started")):
            assert first.poll() is None, f"the first {kind} ended early: {first.communicate()[1][-3000:]}"
            assert time.monotonic() < deadline, f"the first {kind} never reached its notebook"
            time.sleep(0.1)
        before = tree(out, "waiting.ipynb")
        # The timeout only ends a second process that went on to run the notebook, which waits for `release`.
        second = subprocess.run(book_command(kind, notebook, out), cwd=tmp_path, capture_output=True, text=True,
                                timeout=120)
        assert second.returncode == 2, second.stderr[-3000:]
        line = one_line(second.stderr)
        assert f"{out} is in use by another notebook run, sweep or reproduction (PID {first.pid})" in line, line
        assert second.stdout == ""
        assert tree(out, "waiting.ipynb") == before   # the second process wrote, removed and cleared nothing
    finally:
        release.write_text("go")
        try:
            first.wait(timeout=300)
        finally:
            if first.poll() is None:
                first.kill()
    stdout, stderr = first.communicate()
    assert first.returncode == 0, stderr[-3000:]
    assert json.loads(next(out.rglob("metrics.json")).read_text()) == {"done": 1}
    assert not list(out.rglob(".notebook-run.lock"))   # every lock file goes with its holder
