"""AST runs through the engine and the CLI: resume mid-run, accounting in the outputs, one-line config errors."""
import json
import subprocess
import sys

import pytest
import torch

from cifar_lab import presets
from cifar_lab.engine import train


class StopAfter(Exception):
    pass


def config(data_root, **extra):
    return presets.resolve("cifar10-simplecnn-ast", {
        "dataset": "synthetic", "data_root": str(data_root), "epochs": 3, "train_subset": 640, "test_subset": 200,
        "deterministic": True, "progress": False, "device": "cpu", "ast.dense_epochs": 1, **extra})


def test_resume_in_the_middle_of_an_ast_run_gives_the_uninterrupted_weights(tmp_path):
    full = train(config(tmp_path / "data"), tmp_path / "full")

    def stop_after_two(row):
        if row["epoch"] == 2:  # the first AST epoch (after one dense warm-up epoch) is done
            raise StopAfter

    with pytest.raises(StopAfter):
        train(config(tmp_path / "data"), tmp_path / "cut", on_epoch_end=stop_after_two)
    resumed = train(None, tmp_path / "cut", resume=True)

    full_state, resumed_state = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(full_state[k], resumed_state[k]) for k in full_state)
    assert [r["activation_rate"] for r in resumed.history] == [r["activation_rate"] for r in full.history]
    assert resumed.extra["ast_trace"]["theta"] == full.extra["ast_trace"]["theta"]
    assert [r["ast_phase"] for r in full.history] == ["dense", "ast", "ast"]

    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    for key in ("activation_rate", "energy_savings_seed_formula", "compute_vs_dense_model", "compute_vs_dense_flops",
                "threshold_mean", "fallback_batches",
                "ast_train_seconds", "run_compute_vs_dense_model", "ast_kp", "ast_ki", "ast_target"):
        assert key in summary
    header = (tmp_path / "full" / "metrics.csv").read_text().splitlines()[0].split(",")
    for column in ("activation_rate", "threshold_mean", "energy_savings_seed_formula", "compute_vs_dense_model",
                   "compute_vs_dense_flops", "fallback_batches"):
        assert column in header
    trace = (tmp_path / "full" / "ast_trace.csv").read_text().splitlines()
    assert trace[0] == "epoch,batch,phase,theta,rate,ema,integral" and len(trace) == 1 + 2 * 5  # AST epochs only


@pytest.mark.parametrize("setting, message", [
    ("ast.target=1.5", "ast.target must be in (0, 1]"),
    ("ast.target=0", "ast.target must be in (0, 1]"),
    ("ast.kp=-0.1", "controller gains must be 0 or more"),
    ("ast.ki=-1e-5", "controller gains must be 0 or more"),
    ("ast.loss_weight=0.5", "ast.loss_weight + ast.intensity_weight must be 1"),
])
def test_bad_ast_settings_are_one_line_errors_and_write_nothing(tmp_path, setting, message):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "train", "--preset", "cifar10-simplecnn-ast",
                           "--set", setting, "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr
    assert not out.exists()
