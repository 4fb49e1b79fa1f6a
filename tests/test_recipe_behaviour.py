"""Recipe constants checked by what they do, not only by their value in `tests/golden/presets.json`.

A golden file that is regenerated after a change passes again whatever the change was; these tests compute the
behaviour the published recipes describe - the loss a step computes, what evaluation counts at its boundaries,
where the AST controller stops, where a schedule peaks, what the augmentation does to the pixels the loader of a
run serves - from the presets' resolved configurations, and compare it with values worked out by hand from the
sources' definitions.
"""
from __future__ import annotations

import math

import pytest
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from cifar_lab import presets
from cifar_lab.data import fashion_mnist, registry
from cifar_lab.engine.evaluate import evaluate
from cifar_lab.engine.optim import build_scheduler
from cifar_lab.engine.steps import DenseStep
from cifar_lab.sparse.controller import WINDUP_DECAY, PIController
from data_files import crop_windows, key, random_garments, served, write_fashion_mnist  # tests/ is on sys.path


class GivenLogits(nn.Module):
    """A "model" whose logits are its input plus a (zero) trainable bias, so a step has something to update."""

    def __init__(self, classes: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(classes))

    def forward(self, x):
        return x + self.bias


LOGITS = torch.tensor([[2.0, 0.5, -1.0, 0.0], [0.1, 0.2, 3.0, -2.0], [1.0, 1.0, 1.0, 1.0]])
LABELS = torch.tensor([0, 3, 1])


def smoothed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, epsilon: float) -> float:
    """Label smoothing as Szegedy et al. (2016, "Rethinking the Inception Architecture") define it: the target is
    (1 - epsilon) on the true class plus epsilon spread uniformly over all K classes; the loss is its cross
    entropy with softmax(logits), averaged over the batch. Written out in float64, term by term."""
    total = 0.0
    for row, label in zip(logits.double().tolist(), labels.tolist()):
        log_z = math.log(sum(math.exp(v) for v in row))
        log_p = [v - log_z for v in row]
        k = len(row)
        target = [epsilon / k + (1 - epsilon) * (i == label) for i in range(k)]
        total += -sum(t * lp for t, lp in zip(target, log_p))
    return total / len(labels)


def step_loss(preset: str) -> float:
    """The mean training loss that `DenseStep` (the engine's step) computes on LOGITS under `preset`."""
    config = presets.resolve(preset)
    model = GivenLogits(LOGITS.shape[1])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    config.grad_accum = 1
    step = DenseStep(model, optimizer, None, config, torch.device("cpu"), "fp32")
    step.train_batch(LOGITS, LABELS)
    return step.end_epoch()["train_loss"]


@pytest.mark.parametrize("preset", ["cifar100-resnet18", "cifar100-mobilenetv2", "cifar10-naivenet"])
def test_the_step_smooths_labels_by_0_1_where_the_recipe_does(preset):
    # The CIFAR-100 recipes and NaiveNet's use label smoothing 0.1 (the value of the Inception paper and of
    # torchvision's classification reference).
    assert step_loss(preset) == pytest.approx(smoothed_cross_entropy(LOGITS, LABELS, 0.1), rel=1e-6)
    assert step_loss(preset) != pytest.approx(smoothed_cross_entropy(LOGITS, LABELS, 0.0), rel=1e-3)


@pytest.mark.parametrize("preset", ["cifar10-resnet18", "cifar10-simplecnn", "imagenet1k-resnet18"])
def test_the_step_uses_plain_cross_entropy_where_the_recipe_has_no_smoothing(preset):
    assert step_loss(preset) == pytest.approx(smoothed_cross_entropy(LOGITS, LABELS, 0.0), rel=1e-6)


# --- evaluation at the metric's boundaries ----------------------------------------------------------------

class Identity(nn.Module):
    def forward(self, x):
        return x


def test_top5_counts_the_fifth_rank_and_not_the_sixth():
    # 7 classes, the true class 0 ranked 5th in the first sample and 6th in the second.
    fifth = torch.tensor([[3.0, 7, 6, 5, 4, 2, 1]])
    sixth = torch.tensor([[2.0, 7, 6, 5, 4, 3, 1]])
    result = evaluate(Identity(), [(torch.cat([fifth, sixth]), torch.tensor([0, 0]))], 7, "cpu")
    assert result["top5"] == 0.5 and result["top1"] == 0.0


def test_with_fewer_than_five_classes_top5_is_every_sample():
    logits = torch.tensor([[0.0, 1, 2], [2.0, 1, 0]])
    result = evaluate(Identity(), [(logits, torch.tensor([0, 2]))], 3, "cpu")
    assert result["top5"] == 1.0 and result["top1"] == 0.0


def test_a_tie_for_first_place_goes_to_the_lower_class_index():
    # torch.argmax returns the first maximal index (PyTorch docs), so a tie between the true class 2 and class 0
    # counts as a prediction of class 0: wrong. The same tie with the true class 0 counts as right.
    tied = torch.tensor([[5.0, 1, 5.0], [5.0, 1, 5.0]])
    result = evaluate(Identity(), [(tied, torch.tensor([2, 0]))], 3, "cpu")
    assert result["top1"] == 0.5
    assert result["confusion"].tolist() == [[1, 0, 0], [0, 0, 0], [1, 0, 0]]


def test_the_loss_is_the_mean_over_samples_not_over_batches():
    # Batches of 3 and 1: the mean of the four per-sample losses, which the mean of batch means would miss.
    big = torch.tensor([[4.0, 0], [4.0, 0], [4.0, 0]])
    small = torch.tensor([[0.0, 4.0]])
    labels_big, labels_small = torch.tensor([0, 0, 0]), torch.tensor([0])
    result = evaluate(Identity(), [(big, labels_big), (small, labels_small)], 2, "cpu")
    per_sample = [smoothed_cross_entropy(big[:1], labels_big[:1], 0.0)] * 3 + \
                 [smoothed_cross_entropy(small, labels_small, 0.0)]
    assert result["loss"] == pytest.approx(sum(per_sample) / 4, rel=1e-6)
    assert result["loss"] != pytest.approx((per_sample[0] + per_sample[3]) / 2, rel=1e-3)


# --- the AST controller at its limits ---------------------------------------------------------------------

def controller(**changes) -> PIController:
    ast = presets.resolve("cifar10-resnet18-ast").ast
    made = PIController.from_config(ast, "cpu")
    for name, value in changes.items():
        setattr(made, name, value)
    return made


def test_theta_is_clamped_to_the_unit_interval_at_both_ends():
    up, down = controller(), controller()
    for _ in range(500):
        up.update(1.0)    # every sample active: raise the threshold
        down.update(0.0)  # none active: lower it
    assert float(up.theta) == 1.0 and float(down.theta) == 0.0


def test_the_integral_is_clamped_at_the_recipes_limit_of_50():
    # Gains of zero keep theta at theta0 (inside the anti-windup band), so only the integral's clamp stops it.
    pi = controller(kp=0.0, ki=0.0)
    for _ in range(200):
        pi.update(1.0)
    error = 1.0 - presets.resolve("cifar10-resnet18-ast").ast.target
    assert 200 * error * 0.9 > 50  # the unclamped sum would be far beyond the limit
    assert float(pi.integral) == pytest.approx(50.0)
    for _ in range(2000):  # the error is now -target = -0.1 per update
        pi.update(0.0)
    assert float(pi.integral) == pytest.approx(-50.0)


def test_while_theta_is_pinned_the_integral_decays_instead_of_winding_up():
    pi = controller()
    for _ in range(300):
        pi.update(1.0)
    assert float(pi.theta) == 1.0
    before = float(pi.integral)
    pi.update(1.0)
    assert float(pi.integral) == pytest.approx(WINDUP_DECAY * before, rel=1e-6)
    assert abs(float(pi.integral)) < 1.0  # decayed to almost nothing, not stuck at the limit


# --- where the schedules peak -------------------------------------------------------------------------------

def learning_rates(config, total_steps: int) -> list[float]:
    """The lr each optimizer step of a run of `total_steps` steps uses, as the engine's schedule sets it."""
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=config.lr, momentum=0.9)
    scheduler = build_scheduler(config, optimizer, total_steps=total_steps)
    lrs = []
    for _ in range(total_steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_warmup_cosine_recipes_peak_after_5_of_100_epochs():
    config = presets.resolve("cifar100-resnet18")
    lrs = learning_rates(config, 1000)  # 10 steps per epoch
    peak = max(range(len(lrs)), key=lrs.__getitem__)
    assert peak == 50 and lrs[peak] == pytest.approx(config.lr)
    assert lrs[0] == 0.0 and lrs[25] == pytest.approx(config.lr / 2)


@pytest.mark.parametrize("preset, max_lr", [("cifar10-naivenet", 0.05), ("imagenet1k-resnet18", 0.001)])
def test_onecycle_recipes_peak_at_their_max_lr_30_percent_into_the_run(preset, max_lr):
    config = presets.resolve(preset)
    total = 1000
    lrs = learning_rates(config, total)
    peak = max(range(total), key=lrs.__getitem__)
    assert abs(peak - 0.3 * total) <= 1 and lrs[peak] == pytest.approx(max_lr, rel=1e-4)
    # OneCycleLR starts at max_lr / div_factor (25) and ends near max_lr / (25 * 1e4) (PyTorch docs).
    assert lrs[0] == pytest.approx(max_lr / 25) and lrs[-1] < max_lr / 1e4


# --- what the augmentation policies do, through the loader a run builds ----------------------------------------

def preset_data(preset: str, tmp_path, monkeypatch, **sets):
    """The data a run of `preset` builds, on small generated data in the published format: Fashion-MNIST's IDX
    files (in the Debian package's place) for `fmnist-*`, else CIFAR pickles of the synthetic stand-in."""
    common = {"num_workers": 0, "progress": False, **sets}
    if preset.startswith("fmnist-"):
        folder = write_fashion_mnist(tmp_path / "fashion-mnist", random_garments(96, 0)[0], random_garments(16, 1)[0])
        monkeypatch.setenv(fashion_mnist.DIR_VARIABLE, str(folder))
        config = presets.resolve(preset, {"data_root": str(tmp_path / "empty"), "download": False, **common})
    else:
        config = presets.resolve(preset, {"dataset": "synthetic", "data_root": str(tmp_path), **common})
    return config, registry.build(config, torch.device("cpu"), torch.Generator().manual_seed(0))


@pytest.mark.parametrize("preset", ["cifar10-simplecnn", "fmnist-simplecnn"])
def test_the_crop_flip_recipe_shifts_up_to_4_pixels_with_zero_fill_and_mirrors_half_the_images(preset, tmp_path,
                                                                                             monkeypatch):
    """crop_flip (Krizhevsky et al. 2012; He et al. 2016's CIFAR setting): pad 4 with zeros, a random 32x32 crop,
    a horizontal flip with probability 1/2. Every image of two epochs of the preset's training loader is found
    among the crops of a stored image padded by 4 zeros, or their mirrors; each of the 9 offsets occurs on both
    axes; about half are mirrored.

    Mutants: padding 2 (offsets 0, 1, 7 and 8 never occur), 8 (crops not found), a fill other than 0, a flip
    probability of 0 or 1."""
    config, data = preset_data(preset, tmp_path, monkeypatch, synthetic_train_size=96, synthetic_test_size=16,
                               batch_size=32)
    assert config.augment == "crop_flip"
    windows = {}
    for image in data.train_split.images:
        windows.update(crop_windows(image, padding=4))
    draws = [windows.get(key(image)) for epoch in (0, 1) for image in served(data, epoch)]
    assert len(draws) == 192 and None not in draws
    assert {dy for dy, _, _ in draws} == {dx for _, dx, _ in draws} == set(range(9))
    rate = np.mean([flipped for _, _, flipped in draws])
    assert 0.35 < rate < 0.65, rate   # 192 draws: SE 0.036; 0.35 and 0.65 are 4 SE away


def test_the_cutout_recipe_cuts_one_16x16_hole_filled_with_the_dataset_mean_in_half_the_images(tmp_path,
                                                                                              monkeypatch):
    """crop_flip_cutout (DeVries and Taylor 2017, the CIFAR-100 recipe): after crop and flip, one 16x16 hole
    with probability 1/2, filled with the training split's mean - the statistics the loader normalises with.
    Two epochs of `cifar100-resnet18`'s training loader on a 100-class synthetic set: no image has more than one
    16x16 square of that colour (a 17-wide hole would show as two), and about half have one.

    Mutants: a hole of 8 or 24 pixels, the probability 1 (or 0), a fill of 0 instead of the mean."""
    config, data = preset_data("cifar100-resnet18", tmp_path, monkeypatch, num_classes=100,
                               synthetic_train_size=200, synthetic_test_size=100, batch_size=100)
    assert config.augment == "crop_flip_cutout"
    fill = (torch.tensor(data.mean) * 255).round().to(torch.uint8).view(1, 3, 1, 1)
    images = torch.cat([served(data, 0), served(data, 1)])
    in_fill = (images == fill).all(dim=1, keepdim=True).float()                       # [B, 1, 32, 32]
    holes = F.avg_pool2d(in_fill, 16, stride=1).flatten(1).eq(1).sum(1)            # full 16x16 squares
    assert set(holes.tolist()) <= {0, 1}
    rate = holes.eq(1).float().mean().item()
    assert 0.4 < rate < 0.6, rate   # 400 draws: SE 0.025; 0.4 and 0.6 are 4 SE away
