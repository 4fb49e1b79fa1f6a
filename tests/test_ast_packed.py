"""AST as the presets train it: packed sparse steps, a schedule that ends with training whatever the
activation rate, measured FLOPs next to the 1:3 model, the controller's EMA weighted by batch size, and the
benchmark that times all four paths in one run."""
import json
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from cifar_lab import models, presets
from cifar_lab.engine import train
from cifar_lab.engine.optim import lr_factor
from cifar_lab.engine.steps import planned_optimizer_steps
from cifar_lab.sparse.controller import PIController

SMOKE = {"dataset": "synthetic", "train_subset": 1280, "test_subset": 200, "progress": False,
         "save_checkpoints": False}


@pytest.mark.parametrize("name", ["cifar10-simplecnn-ast", "cifar10-resnet18-ast", "imagenet100-resnet50-ast"])
def test_the_ast_presets_train_packed(name):
    assert presets.resolve(name).ast.pack is True


@pytest.fixture(scope="module")
def packed_cosine_run(tmp_path_factory):
    data = tmp_path_factory.mktemp("packed-data")
    config = presets.resolve("cifar10-simplecnn-ast", {**SMOKE, "data_root": str(data), "epochs": 3,
                                                       "schedule": "cosine", "lr": 0.003})
    return train(config, tmp_path_factory.mktemp("packed") / "run")


def test_packed_ast_takes_fewer_optimizer_steps_and_still_ends_its_schedule(packed_cosine_run):
    history = packed_cosine_run.history
    assert all({"optimizer_steps", "samples_trained", "activation_rate"} <= set(row) for row in history)
    # 10 scoring batches per epoch; at a 10 % rate the selected samples fill one or two full batches
    assert all(1 <= row["optimizer_steps"] <= 3 for row in history)
    assert all(row["samples_trained"] == row["active_samples"] for row in history)
    assert history[-1]["lr"] == pytest.approx(0.003 * lr_factor("cosine", 30, 30, 0), abs=1e-12)  # 0.0
    assert history[0]["lr"] == pytest.approx(0.003 * lr_factor("cosine", 10, 30, 0))  # a third of the way


def test_compute_is_measured_in_flops_next_to_the_model(packed_cosine_run):
    summary = packed_cosine_run.summary
    assert summary["flops_per_sample_train"] == pytest.approx(3 * summary["flops_per_sample_forward"], rel=0.2)
    assert summary["compute_vs_dense_flops"] <= 0.5
    assert summary["compute_vs_dense_model"] == pytest.approx(
        (1 + 3 * summary["activation_rate"]) / 3, rel=1e-6)
    assert 0.85 < summary["energy_savings_seed_formula"] < 0.95


def test_dense_runs_record_optimizer_steps_and_samples_trained(tmp_path):
    config = presets.resolve("cifar10-simplecnn", {**SMOKE, "data_root": str(tmp_path), "epochs": 1})
    row = train(config, tmp_path / "dense").history[0]
    assert row["optimizer_steps"] == 10 and row["samples_trained"] == 1280


def test_a_short_batch_moves_the_ema_by_its_share_of_a_full_batch():
    full, short = PIController(0.1, 0.0, 0.0), PIController(0.1, 0.0, 0.0)
    full.update(torch.tensor(1.0))
    short.update(torch.tensor(1.0), weight=8 / 128)
    assert float(full.ema) == pytest.approx(0.3 * 1.0 + 0.7 * 0.1)
    assert float(short.ema) == pytest.approx(0.3 / 16 * 1.0 + (1 - 0.3 / 16) * 0.1)


def test_bench_ast_times_four_paths_with_their_steps(tmp_path):
    report = tmp_path / "ast.json"
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "bench", "ast", "--model", "simple_cnn",
                           "--data-root", str(tmp_path), "--batch-size", "32", "--batches", "10", "--repeats", "3",
                           "--json", str(report)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(report.read_text())
    assert set(result["paths"]) == {"dense", "packed", "unpacked", "random"}
    for name in ("packed", "unpacked", "random"):
        ratio = result[f"ratio_{name}"]
        assert ratio["min"] <= ratio["median"] <= ratio["max"]
        assert len(result["paths"][name]["runs_s"]) == 3
    assert result["ratio"] == result["ratio_packed"]["median"]
    paths = result["paths"]
    assert paths["dense"]["optimizer_steps"] == paths["unpacked"]["optimizer_steps"] == 10
    assert paths["packed"]["optimizer_steps"] < 10 and paths["random"]["optimizer_steps"] < 10
    assert paths["dense"]["samples_trained"] == 320


def _tiny_cnn(num_classes=10):
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, num_classes))


@pytest.mark.parametrize("selection", ["gate", "selective_backprop"])
def test_planned_steps_are_dense_steps_and_a_packed_run_ends_its_schedule_with_its_last_epoch(
        tmp_path, monkeypatch, selection):
    """The schedule of a packed selection is planned in the optimizer steps of dense training and follows the
    data, so it stands at its final value when the last epoch ends, however few optimizer steps were taken.
    Mutants caught: the plan counting the packed run's own steps as predicted from the target (the schedule is
    spent within the first epoch); the schedule moved once per optimizer step (it never gets to its end)."""
    monkeypatch.setitem(models.MODELS, "tiny_test_cnn", models.ModelSpec(_tiny_cnn, 16))
    config = presets.resolve("cifar10-simplecnn-ast", {
        "dataset": "synthetic", "data_root": str(tmp_path), "synthetic_train_size": 160, "synthetic_test_size": 32,
        "model": "tiny_test_cnn", "input_size": 16, "batch_size": 32, "epochs": 3, "grad_accum": 2,
        "schedule": "cosine", "lr": 0.01, "ast.selection": selection, "ast.target": 0.2, "progress": False,
        "save_checkpoints": False, "device": "cpu"})
    assert planned_optimizer_steps(config, 5) == 3 * 3   # 5 batches an epoch, a step every 2 (and the last)
    history = train(config, None).history
    assert sum(row["optimizer_steps"] for row in history) < 9
    assert [row["lr"] for row in history] == pytest.approx(
        [0.01 * lr_factor("cosine", 3 * epoch, 9, 0) for epoch in (1, 2, 3)], abs=1e-12)
    assert history[-1]["lr"] == 0.0
