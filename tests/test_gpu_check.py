"""scripts/gpu_check.sh: its dry run (each CUDA check's CPU equivalent) passes here, writes a results record, and
the checker itself turns a failing command or a CUDA error message into a failed check and a non-zero exit."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cifar_lab.book import records

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "gpu_check.sh"


def gpu_check_module():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dry_run_runs_every_cpu_equivalent_and_writes_a_record(tmp_path):
    out = tmp_path / "record.json"
    book_records = sorted((REPO / "book" / "results").iterdir())
    done = subprocess.run([str(SCRIPT), "--dry-run", "--work", str(tmp_path / "work"), "--out", str(out)],
                          capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stdout + done.stderr
    record = records.read_record(out)  # the book's record format, provenance included
    rows = record["measurements"][0]["table"]["rows"]
    results = {row[0]: row[2] for row in rows}
    assert len(rows) == len(gpu_check_module().checks(tmp_path, cuda=False, gpus=0))
    assert set(results.values()) <= {"passed", "skipped"}
    assert sum(value == "passed" for value in results.values()) >= 9
    latency = next(row for row in rows if row[0].startswith("latency criterion"))
    assert "not comparable" in latency[4]  # chapter 2's criterion refuses a CPU measurement, as it must
    assert record["environment"]["torch_threads"] >= 1 and record["provenance"]["commit"]
    assert sorted((REPO / "book" / "results").iterdir()) == book_records  # a dry run is no record for the book


def test_without_cuda_the_real_check_is_one_line_and_exit_2(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the real check would run")
    done = subprocess.run([str(SCRIPT), "--work", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "--dry-run" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("code, expected", [
    ("print('fine')", "passed"),
    ("import sys; sys.exit(3)", "failed"),
    ("import sys; print('RuntimeError: CUDA error: an illegal memory access', file=sys.stderr)", "failed"),
])
def test_a_check_fails_on_a_non_zero_exit_or_a_cuda_error(tmp_path, code, expected):
    gpu_check = gpu_check_module()
    item = {"name": "probe", "command": [sys.executable, "-c", code], "verify": lambda: "ok", "cuda": True}
    with open(tmp_path / "log", "w") as log:
        row = gpu_check.run_check(item, deadline=float("inf"), log=log, step_limit=60)
    assert row["result"] == expected, row


def test_a_check_whose_output_does_not_show_the_path_fails(tmp_path):
    gpu_check = gpu_check_module()

    def verify():
        raise AssertionError("summary.json has precision='fp32', expected 'bf16'")

    item = {"name": "probe", "command": [sys.executable, "-c", "pass"], "verify": verify, "cuda": True}
    with open(tmp_path / "log", "w") as log:
        row = gpu_check.run_check(item, deadline=float("inf"), log=log, step_limit=60)
    assert row["result"] == "failed" and "expected 'bf16'" in row["detail"]
