"""Provenance: every training run and every notebook run records the commit, the software, the hardware and
the command in environment.json (and checkpoints under "environment"), with nothing personal in it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cifar_lab import provenance
from cifar_lab.engine import checkpoint
from cifar_lab.book.runner import run_notebook

ROOT = Path(__file__).resolve().parents[1]
HEADER = (ROOT / "notebooks" / "01_cifar10_data.md").read_text().split("\n---\n", 1)[0] + "\n---\n"
SMALL = ["dataset=synthetic", "epochs=1", "train_subset=256", "test_subset=100", "synthetic_train_size=512",
         "synthetic_test_size=128"]


def head_commit() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def cifar_lab(*args, env=None, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "cifar_lab", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env=env)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A one-epoch run whose command line holds a home folder and a user name, which must not be recorded."""
    home = tmp_path_factory.mktemp("home")
    user = "zoe-tester"
    out = home / f"{user}-runs" / "D"
    env = {**os.environ, "HOME": str(home), "USER": user, "LOGNAME": user}
    data_root = os.environ["CIFAR_LAB_DATA"]
    done = cifar_lab("train", "--preset", "cifar10-simplecnn", "--set", *SMALL, f"data_root={data_root}", "--out",
                     out, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return {"out": out, "home": home, "user": user, "env": env, "data_root": data_root}


def test_train_writes_environment_json_with_commit_torch_and_device(trained):
    record = json.loads((trained["out"] / "environment.json").read_text())
    assert record["commit"] == head_commit() and isinstance(record["dirty"], bool)
    assert record["versions"]["torch"] == torch.__version__
    assert record["versions"]["python"] and record["versions"]["cifar_lab"]
    expected_device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    assert expected_device in record["device"] and record["device_count"] == torch.cuda.device_count()
    assert record["cpu"] and record["torch_threads"] >= 1 and record["world_size"] == 1
    assert record["command"].startswith("python -m cifar_lab train --preset cifar10-simplecnn")
    assert record["start_utc"] <= record["end_utc"]  # rewritten at the end with the end time


def test_no_home_folder_and_no_user_name_in_the_record(trained):
    text = (trained["out"] / "environment.json").read_text()
    assert str(trained["home"]) not in text and trained["user"] not in text
    assert "~/<user>-runs/D" in json.loads(text)["command"]  # scrubbed, still readable


def test_checkpoints_carry_the_record_and_eval_prints_it(trained, tmp_path):
    state = checkpoint.load(trained["out"] / "best.pt")
    assert state["environment"]["commit"] == head_commit()
    report = tmp_path / "eval.json"
    done = cifar_lab("eval", "--checkpoint", trained["out"] / "best.pt", "--json", report, env=trained["env"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"commit: {head_commit()}" in done.stdout
    assert f"torch {torch.__version__}" in done.stdout and "device: " in done.stdout
    assert json.loads(report.read_text())["environment"]["commit"] == head_commit()


def test_a_notebook_run_records_its_parameters_also_when_it_fails(tmp_path):
    notebook = tmp_path / "tiny.md"
    notebook.write_text(HEADER + "\n```{code-cell} ipython3\n:tags: [parameters]\n\nout_dir = 'x'\nsteps = 1\n```\n\n"
                        "```{code-cell} ipython3\nassert steps < 5, 'too many steps'\n```\n")
    run_notebook(notebook, tmp_path / "ok", {"steps": 2})
    record = provenance.read(tmp_path / "ok")
    assert record["parameters"] == {"steps": 2, "out_dir": str((tmp_path / "ok").resolve())}
    assert record["end_utc"] and record["commit"] == head_commit()
    with pytest.raises(Exception, match="too many steps"):
        run_notebook(notebook, tmp_path / "failed", {"steps": 7})
    assert provenance.read(tmp_path / "failed")["end_utc"]


def test_scrub_replaces_home_and_user_everywhere(monkeypatch):
    monkeypatch.setenv("HOME", "/home/ada")
    monkeypatch.setenv("LOGNAME", "ada")
    scrubbed = provenance.scrub({"a": "/home/ada/x", "b": ["ada wrote", "data_ada", "adam"], "c": 3})
    assert scrubbed == {"a": "~/x", "b": ["<user> wrote", "data_ada", "adam"], "c": 3}


def test_outside_a_git_checkout_the_commit_is_unknown(tmp_path):
    assert provenance.git_state(tmp_path) == ("unknown", "unknown")


def test_command_line_reads_as_typed():
    assert provenance.command_line(["/x/.venv/bin/cifar-lab", "train", "--out", "a b"]) == "cifar-lab train --out 'a b'"
    assert provenance.command_line(["/x/cifar_lab/__main__.py", "eval"]) == "python -m cifar_lab eval"


def test_finish_adds_the_end_time_and_describe_reads_well():
    record = provenance.collect({"epochs": 3})
    finished = provenance.finish(record)
    assert record["end_utc"] is None and finished["end_utc"]
    lines = provenance.describe(finished)
    assert lines[0].startswith("commit: ") and any(line.startswith("device: ") for line in lines)
    assert "epochs=3" in lines[-1]
    assert "not recorded" in provenance.describe(None)[0]
