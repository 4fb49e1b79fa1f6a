"""The learning-rate range test and the book's explanatory diagrams."""
import copy
import math

import matplotlib
import numpy as np
import pytest
import torch

from cifar_lab import lr_finder, plots, presets
from cifar_lab.book import diagrams
from cifar_lab.errors import UsageError

matplotlib.use("Agg")


def test_steepest_lr_finds_where_the_loss_falls_fastest():
    lrs = list(np.logspace(-6, 0, 100))
    # a loss that falls fastest at lr 1e-3 (a logistic step in log10(lr)), then blows up past 0.1
    losses = [2.0 - 1.5 / (1 + math.exp(-4 * (math.log10(lr) + 3))) + (5.0 if lr > 0.1 else 0.0) for lr in lrs]
    assert lr_finder.steepest_lr(lrs, losses) == pytest.approx(1e-3, rel=0.2)


def small_config(tmp_path):
    """SimpleCNN on 512 synthetic images, deterministic on the CPU: a problem it learns within a few batches."""
    return presets.resolve("fmnist-simplecnn", {"dataset": "synthetic", "data_root": str(tmp_path), "device": "cpu",
                                                  "precision": "fp32", "train_subset": 512, "batch_size": 32,
                                                  "progress": False, "deterministic": True, "seed": 0})


def test_range_test_grows_the_lr_exponentially_and_restores_model_and_optimizer(tmp_path, monkeypatch):
    """Mutants caught: a linear schedule (`step_mode="linear"`) or an `end_lr` that is not passed on (the
    schedule then ends elsewhere than asked); and a range test that leaves the model and optimizer as its last,
    largest learning rate left them (`finder.reset()` left out)."""
    built = {}
    real_setup, real_optimizer = lr_finder.setup, lr_finder.build_optimizer

    def setup(*args, **kwargs):
        built["run"] = real_setup(*args, **kwargs)
        built["weights"] = {k: v.clone() for k, v in built["run"].model.state_dict().items()}
        return built["run"]

    def build_optimizer(*args, **kwargs):
        built["optimizer"] = real_optimizer(*args, **kwargs)
        built["optimizer_state"] = copy.deepcopy(built["optimizer"].state_dict())
        return built["optimizer"]

    monkeypatch.setattr(lr_finder, "setup", setup)
    monkeypatch.setattr(lr_finder, "build_optimizer", build_optimizer)
    config = small_config(tmp_path)
    result = lr_finder.range_test(config, start_lr=1e-4, end_lr=1e-1, num_iter=12, diverge=1e9)
    assert result["batches"] == 12 and not result["stopped_early"] and result["config_lr"] == config.lr
    # lr_i = start * (end / start) ** (i / (n - 1)): from start_lr to end_lr, the same factor every batch.
    assert result["lr"] == pytest.approx([1e-4 * 1000 ** (i / 11) for i in range(12)], rel=1e-9)
    assert result["min_loss_lr"] == result["lr"][int(np.argmin(result["loss"]))]
    after = built["run"].model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in built["weights"].items()), "the model kept the test's updates"
    state = built["optimizer"].state_dict()
    assert state["state"] == {} and state["param_groups"] == built["optimizer_state"]["param_groups"]
    assert plots.lr_range_test(result).axes[0].get_xscale() == "log"


def test_the_suggested_lr_lies_where_the_loss_falls_on_a_learnable_problem(tmp_path):
    """Mutants caught: `steepest_lr` taking the steepest rise (argmax of the slope) or the lowest loss instead
    of the steepest fall, and a range test whose loss never falls (the optimizer's learning rate never set
    from the schedule, a model that does not train). The sweep, ten batches a decade, runs until the loss
    diverges."""
    result = lr_finder.range_test(small_config(tmp_path), start_lr=1e-5, end_lr=10.0, num_iter=61)
    lrs, losses = result["lr"], result["loss"]
    assert result["stopped_early"] and lrs[0] == pytest.approx(1e-5) and lrs == sorted(lrs)
    assert min(losses) < losses[0] - 0.1                # the loss falls somewhere in the sweep ...
    assert losses[-1] > min(losses) + 0.1               # ... and rises again where the rate is too high
    suggested = result["steepest_lr"]
    index = int(np.argmin(np.abs(np.log(lrs) - math.log(suggested))))
    assert lrs[index] == pytest.approx(suggested, rel=1e-9)   # one of the swept rates ...
    assert 2 <= index <= len(lrs) - 3                          # ... inside the sweep, not at its ends
    # Where the loss falls: lower two batches after the suggestion than two before, and below where it began.
    assert losses[index + 2] < losses[index - 2] and losses[index] < losses[0], (suggested, losses)


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


def test_the_suggestion_never_lies_past_the_lowest_loss():
    """A loss that blows up, then drifts down again without reaching the divergence stop: the suggestion lies
    before the lowest loss, where the loss fell. Mutant caught: searching the whole curve, which puts the
    steepest fall in the drift after the blow-up."""
    from cifar_lab.lr_finder import steepest_lr

    lrs = [10 ** (-5 + 6 * k / 59) for k in range(60)]
    falling = [2.3 - 1.2 * k / 29 for k in range(30)]            # 2.3 -> 1.1 over the first 30 batches
    blow_up = [1.1 + 0.6 * k for k in range(1, 7)]                # up to 4.7
    drift = [4.7 - 0.15 * k for k in range(1, 25)]                # down again, steeply, to 1.1
    losses = falling + blow_up + drift
    assert len(losses) == len(lrs)
    lowest = min(range(30), key=lambda k: losses[k])
    suggested = steepest_lr(lrs, losses)
    assert lrs[10] <= suggested <= lrs[lowest]
