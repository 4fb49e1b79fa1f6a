"""The learning-rate range test and the book's explanatory diagrams."""
import math

import matplotlib
import numpy as np
import pytest

from cifar_lab import lr_finder, plots, presets
from cifar_lab.book import diagrams
from cifar_lab.errors import UsageError

matplotlib.use("Agg")


def test_steepest_lr_finds_where_the_loss_falls_fastest():
    lrs = list(np.logspace(-6, 0, 100))
    # a loss that falls fastest at lr 1e-3 (a logistic step in log10(lr)), then blows up past 0.1
    losses = [2.0 - 1.5 / (1 + math.exp(-4 * (math.log10(lr) + 3))) + (5.0 if lr > 0.1 else 0.0) for lr in lrs]
    assert lr_finder.steepest_lr(lrs, losses) == pytest.approx(1e-3, rel=0.2)


def test_range_test_runs_on_a_config_and_leaves_a_curve(tmp_path):
    config = presets.resolve("fmnist-simplecnn", {"dataset": "synthetic", "data_root": str(tmp_path), "device": "cpu",
                                                  "precision": "fp32", "train_subset": 256, "batch_size": 32,
                                                  "progress": False})
    result = lr_finder.range_test(config, start_lr=1e-5, end_lr=10.0, num_iter=20)
    lrs, losses = result["lr"], result["loss"]
    assert 2 <= len(lrs) == len(losses) <= 20 and lrs == sorted(lrs) and lrs[0] == pytest.approx(1e-5)
    assert all(math.isfinite(value) for value in losses[:5])
    assert lrs[0] <= result["steepest_lr"] <= lrs[-1] and result["config_lr"] == config.lr
    assert plots.lr_range_test(result).axes[0].get_xscale() == "log"


@pytest.mark.parametrize("kwargs, message", [
    ({"start_lr": 1.0, "end_lr": 0.1}, "start_lr < end_lr"),
    ({"num_iter": 3}, "too short"),
])
def test_bad_range_test_arguments_are_one_line_errors(tmp_path, kwargs, message):
    config = presets.resolve("fmnist-simplecnn", {"dataset": "synthetic", "data_root": str(tmp_path)})
    with pytest.raises(UsageError, match=message) as err:
        lr_finder.range_test(config, **kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("draw", [diagrams.stems, diagrams.ast_step, diagrams.ddp_and_local_sgd,
                                  diagrams.export_routes], ids=lambda f: f.__name__)
def test_each_diagram_draws_something(draw):
    figure = draw()
    drawn = sum(len(ax.patches) + len(ax.texts) for ax in figure.axes)
    assert drawn >= 8, f"{draw.__name__} drew only {drawn} shapes and labels"
