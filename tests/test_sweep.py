"""`cifar-lab sweep` and `runner.run_sweep`: one notebook run per grid point, in parallel workers (pinned to GPUs
when asked) or as submitit jobs; results.csv with a row per point; failed points recorded; finished points
skipped on a rerun."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cifar_lab.cli import main
from cifar_lab.book.runner import SweepFailed, flatten_scalars, grid_points, run_sweep, sweep

ROOT = Path(__file__).resolve().parents[1]
SWEEP_POINT = ROOT / "notebooks" / "03b_ast_sweep_point.md"
HEADER = (ROOT / "notebooks" / "01_cifar10_data.md").read_text().split("\n---\n", 1)[0] + "\n---\n"
# A rerun skips a point only if the code is the same (`runner.same_code`): an edit of the checkout between the
# two runs of a test, or a new untracked file, rightly makes every point run again.
CHANGED_CODE_HINT = "points ran again: did the checkout change while the test ran?"


def cifar_lab(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "cifar_lab", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True)


def tiny_notebook(folder: Path) -> Path:
    """A notebook that runs in a second: it records x, x squared and the GPUs it was given, and raises for x=3."""
    path = folder / "tiny.md"
    path.write_text(HEADER + "\n```{code-cell} ipython3\n:tags: [parameters]\n\nout_dir = 'x'\nx = 1\n"
                    "label = 'a'\n```\n\n```{code-cell} ipython3\nimport json, os, pathlib\n"
                    "if x == 3:\n    raise ValueError('x=3 is the point made to fail')\n"
                    "pathlib.Path(out_dir, 'metrics.json').write_text(json.dumps({'x': x, 'square': x * x, "
                    "'label': label, 'visible': os.environ.get('CUDA_VISIBLE_DEVICES'), 'nested': {'cube': x ** 3}, "
                    "'history': [1, 2]}))\n```\n")
    return path


def test_grid_points_and_flattened_metrics():
    assert grid_points({"a": [1, 2], "b": ["x", "y"]}) == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"},
                                                          {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    assert flatten_scalars({"a": 1, "b": {"c": 0.5, "d": [1]}, "e": None}) == {"a": 1, "b.c": 0.5, "e": None}


def test_sweep_of_the_ast_point_notebook_in_parallel_then_a_rerun_skips(tmp_path):
    out = tmp_path / "S"
    args = ["sweep", SWEEP_POINT, "--grid", "target=0.05,0.2", "--grid", "gains=seed,tuned", "--jobs", "2",
            "--out", out]
    done = cifar_lab(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "4 points: 4 ran" in done.stdout
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 4 and set(table["status"]) == {"ok"}
    assert sorted(zip(table["target"], table["gains"])) == [(0.05, "seed"), (0.05, "tuned"), (0.2, "seed"),
                                                            (0.2, "tuned")]
    assert table["activation_rate"].between(0, 1).all() and table["final_acc"].notna().all()
    for point in table["point"]:
        folder = out / point
        assert (folder / "03b_ast_sweep_point.ipynb").is_file() and (folder / ".done").is_file()
        assert json.loads((folder / "environment.json").read_text())["parameters"]["out_dir"] == str(folder)
    stamps = {point: (out / point / "metrics.json").stat().st_mtime_ns for point in table["point"]}

    again = cifar_lab(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "4 points: 0 ran, 4 already done" in again.stdout, CHANGED_CODE_HINT
    assert stamps == {point: (out / point / "metrics.json").stat().st_mtime_ns for point in table["point"]}
    assert len(pd.read_csv(out / "results.csv")) == 4


def test_a_failing_point_is_recorded_the_others_finish_and_a_rerun_runs_only_it(tmp_path):
    notebook, out = tiny_notebook(tmp_path), tmp_path / "S"
    args = ["sweep", notebook, "--grid", "x=1,2,3,4", "--jobs", "2", "--gpus", "0,1", "--out", out]
    done = cifar_lab(*args)
    assert done.returncode == 1, done.stderr[-3000:]
    error = done.stderr.strip().splitlines()
    assert len(error) == 1 and "x3" in error[0] and "ValueError" in error[0] and "results.csv" in error[0], error
    table = pd.read_csv(out / "results.csv").set_index("x")
    assert list(table.index) == [1, 2, 3, 4]
    assert table.loc[3, "status"] == "failed" and "x=3 is the point made to fail" in table.loc[3, "error"]
    ok = table.drop(index=3)
    assert set(ok["status"]) == {"ok"} and list(ok["square"]) == [1, 4, 16] and list(ok["nested.cube"]) == [1, 8, 64]
    assert "history" not in table.columns  # lists are not scalars
    assert set(ok["visible"].astype(int)) <= {0, 1}  # every point saw one GPU of --gpus
    assert (out / "x3" / "tiny.ipynb").is_file() and not (out / "x3" / ".done").exists()

    again = cifar_lab(*args)
    assert again.returncode == 1
    assert "4 points: 0 ran, 3 already done (skipped), 1 failed" in again.stdout, CHANGED_CODE_HINT


def test_run_sweep_keeps_the_notebook_call_and_raises_after_the_other_points(tmp_path):
    notebook = tiny_notebook(tmp_path)
    metrics = run_sweep(notebook, tmp_path / "ok", [{"x": 1}, {"x": 2}], fixed={"label": "b"}, progress=False)
    assert [(m["x"], m["label"]) for m in metrics] == [(1, "b"), (2, "b")]
    assert len(pd.read_csv(tmp_path / "ok" / "results.csv")) == 2
    with pytest.raises(SweepFailed, match="1 of 3 sweep points failed"):
        run_sweep(notebook, tmp_path / "bad", [{"x": 3}, {"x": 4}, {"x": 5}], progress=False)
    assert json.loads((tmp_path / "bad" / "x5" / "metrics.json").read_text())["square"] == 25


def test_submitit_local_executor_runs_the_same_code_path(tmp_path):
    pytest.importorskip("submitit")
    notebook = tiny_notebook(tmp_path)
    result = sweep(notebook, tmp_path / "S", [{"x": 2}, {"x": 3}], launcher="submitit-local", progress=False)
    by_x = {point.point["x"]: point for point in result.points}
    assert by_x[2].status == "ok" and by_x[2].metrics["square"] == 4
    assert by_x[3].status == "failed" and "made to fail" in by_x[3].error
    assert len(pd.read_csv(tmp_path / "S" / "results.csv")) == 2


def test_slurm_launcher_without_submitit_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit now raises ImportError
    out = tmp_path / "S"
    assert main(["sweep", str(tiny_notebook(tmp_path)), "--grid", "x=1", "--launcher", "slurm", "--out",
                 str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'cifar-lab[cluster]'" in err[0], err
    assert not out.exists()


@pytest.mark.parametrize("extra, words", [
    (["--grid", "x"], ["NAME=V1,V2"]),
    (["--grid", "nope=1"], ["unknown parameter", "nope"]),
    (["--grid", "x=1", "--jobs", "0"], ["--jobs"]),
    (["--grid", "x=1,1"], ["repeats point"]),
    (["--grid", "x=one"], ["x", "int"]),
    ([], ["--grid"]),
])
def test_bad_sweeps_are_one_line_errors_and_write_nothing(tmp_path, capsys, extra, words):
    out = tmp_path / "S"
    assert main(["sweep", str(tiny_notebook(tmp_path)), *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(word in err[0] for word in words), err
    assert not out.exists()
