"""`cifar-lab run`: papermill execution of a MyST notebook with checked parameters into an output folder."""
import json
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

from cifar_lab.cli import main
from cifar_lab.book.runner import parse_value

ROOT = Path(__file__).resolve().parents[1]
DATA_NOTEBOOK = ROOT / "notebooks" / "01_cifar10_data.md"


def cifar_lab(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "cifar_lab", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True)


def test_run_md_notebook_keeps_executed_notebook_and_metrics(tmp_path):
    out = tmp_path / "run01"
    # A relative --out from another working directory: the notebook must still write into this folder.
    done = cifar_lab("run", DATA_NOTEBOOK, "--out", "run01", "-p", "bench_images", "512", "-p", "bench_repeats", "1",
                     "-p", "smoke", "true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    executed = out / "01_cifar10_data.ipynb"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["smoke"] is True and metrics["dataset"] == "synthetic"
    assert metrics["bench_images"] == 512          # the -p value arrived as an int and was used
    assert metrics["train_samples"] > 0 and metrics["loader_ratio"] > 0
    nb = jupytext.read(executed)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    assert f'out_dir = "{out.resolve()}"' in injected[0].source
    assert all(c.get("outputs") is not None for c in nb.cells if c.cell_type == "code")
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]


def test_unknown_parameter_is_one_line_exit_2_and_nothing_written(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["run", str(DATA_NOTEBOOK), "--out", str(out), "-p", "no_such_knob", "1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "no_such_knob" in lines[0] and "bench_images" in lines[0], lines
    assert not out.exists()


@pytest.mark.parametrize("args, words", [
    (["notebooks/no_such_notebook.md"], ["does not exist"]),
    ([DATA_NOTEBOOK, "-p", "out_dir", "x"], ["--out"]),
])
def test_bad_invocations_are_one_line_errors(tmp_path, capsys, args, words):
    out = tmp_path / "never"
    assert main(["run", *map(str, args), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and all(w in err for w in words), err
    assert not out.exists()


@pytest.mark.parametrize("text, value", [
    ("3", 3), ("0.1", 0.1), ("1e-3", 1e-3), ("true", True), ("False", False), ("null", None), ("None", None),
    ("[1, 2]", [1, 2]), ("cifar10-resnet18", "cifar10-resnet18"), ("../data", "../data"), ("a: b", "a: b"),
])
def test_parameter_values_parse_like_yaml_scalars(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_failing_notebook_is_one_line_exit_1_with_executed_notebook_kept(tmp_path, capsys):
    source = tmp_path / "broken.md"
    front_matter = DATA_NOTEBOOK.read_text().split("\n---\n", 1)[0] + "\n---\n"  # the book's notebook header
    source.write_text(front_matter + "\n"
                      "```{code-cell} ipython3\n:tags: [parameters]\n\nout_dir = 'x'\nsteps = 1\n```\n\n"
                      "```{code-cell} ipython3\nraise ValueError(f'steps={steps}')\n```\n")
    out = tmp_path / "out"
    assert main(["run", str(source), "--out", str(out), "-p", "steps", "7"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ValueError" in err[0] and "steps=7" in err[0], err
    assert (out / "broken.ipynb").is_file()  # kept for debugging: it shows the traceback
