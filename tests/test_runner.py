"""`cifar-lab run`: papermill execution of a MyST notebook with checked parameters into an output folder."""
import json
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

from cifar_lab.runner import parse_value

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


def test_unknown_parameter_is_one_line_exit_2_and_nothing_written(tmp_path):
    out = tmp_path / "never"
    done = cifar_lab("run", DATA_NOTEBOOK, "--out", out, "-p", "no_such_knob", "1")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no_such_knob" in lines[0] and "bench_images" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


@pytest.mark.parametrize("args, words", [
    (["notebooks/no_such_notebook.md"], ["does not exist"]),
    ([DATA_NOTEBOOK, "-p", "out_dir", "x"], ["--out"]),
])
def test_bad_invocations_are_one_line_errors(tmp_path, args, words):
    out = tmp_path / "never"
    done = cifar_lab("run", *args, "--out", out)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and all(w in done.stderr for w in words), done.stderr
    assert not out.exists()


@pytest.mark.parametrize("text, value", [
    ("3", 3), ("0.1", 0.1), ("1e-3", 1e-3), ("true", True), ("False", False), ("null", None), ("None", None),
    ("[1, 2]", [1, 2]), ("cifar10-resnet18", "cifar10-resnet18"), ("../data", "../data"), ("a: b", "a: b"),
])
def test_parameter_values_parse_like_yaml_scalars(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)
