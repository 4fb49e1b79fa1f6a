"""The sparse step: only the gated samples train, the fallback, the random baseline, packing, warm-up."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cifar_lab.sparse.score import score_batch
from cifar_lab.engine.sparse_step import SparseStep
from cifar_lab.config import ASTConfig, TrainConfig


def tiny(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))


def batch(n=16, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 4, 4, generator=gen), torch.randint(0, 5, (n,), generator=gen)


def make_step(model, lr=1.0, **ast):
    ast.setdefault("pack", False)  # most tests here look at one scoring batch's own training step
    config = TrainConfig(batch_size=16, channels_last=False, label_smoothing=0.0,
                         ast=ASTConfig(enabled=True, **ast))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    return SparseStep(model, optimizer, None, config, torch.device("cpu"), "fp32")


def test_only_selected_samples_contribute_to_the_gradient():
    images, labels = batch()
    model = tiny()
    reference = copy.deepcopy(model)
    with torch.no_grad():
        scores, _ = score_batch(reference(images), labels, images)
    theta = float(scores.median())
    selected = scores > theta
    assert 0 < int(selected.sum()) < len(labels)

    # Manual computation: plain SGD (lr 1) on the mean cross-entropy of the selected samples only.
    loss = F.cross_entropy(reference(images[selected]), labels[selected])
    grads = torch.autograd.grad(loss, list(reference.parameters()))
    expected = [p.detach() - g for p, g in zip(reference.parameters(), grads)]

    step = make_step(model)
    step.controller.theta = torch.tensor(theta)
    step.train_batch(images, labels)
    for got, want in zip(model.parameters(), expected):
        assert torch.allclose(got.detach(), want, atol=1e-6)
    row = step.end_epoch()
    assert row["active_samples"] == row["samples_trained"] == int(selected.sum())
    assert row["fallback_batches"] == 0


def test_fallback_trains_on_two_random_samples_when_nothing_passes():
    images, labels = batch()
    step = make_step(tiny())
    step.controller.theta = torch.tensor(1.0)  # scores are at most 1: nothing passes
    step.controller.kp = 0.0  # keep theta there for the second batch
    step.train_batch(images, labels)
    step.train_batch(images, labels)
    row = step.end_epoch()
    assert row["fallback_batches"] == 2
    assert row["active_samples"] == row["samples_trained"] == 4
    assert row["activation_rate"] == pytest.approx(4 / 32)


def test_random_selection_trains_a_fixed_share_without_scoring():
    images, labels = batch()
    step = make_step(tiny(), selection="random", target=0.25)
    for _ in range(3):
        step.train_batch(images, labels)
    row = step.end_epoch()
    assert row["samples_trained"] == 12 and row["activation_rate"] == pytest.approx(0.25)
    assert row["compute_vs_dense_model"] == pytest.approx(0.25)  # no scoring pass to pay for


def test_packing_trains_on_every_selected_sample_in_full_batches():
    step = make_step(tiny(), pack=True, target=0.3)
    sizes = []
    original = step.optimize
    step.optimize = lambda x, y: (sizes.append(len(y)), original(x, y))[1]
    for i in range(10):
        step.train_batch(*batch(seed=i))
    row = step.end_epoch()
    assert row["samples_trained"] == row["active_samples"] == sum(sizes)
    assert all(size == 16 for size in sizes[:-1]) and 0 < sizes[-1] <= 16
    assert row["host_syncs"] < 10  # the fill level is read far less often than once per batch


def test_accounting_counts_the_scoring_pass():
    images, labels = batch()
    step = make_step(tiny())
    step.controller.theta = torch.tensor(float(score_batch(step.model(images), labels, images)[0].detach().median()))
    step.controller.kp = 0.0
    step.train_batch(images, labels)
    row = step.end_epoch()
    active = row["active_samples"]
    assert row["compute_vs_dense_model"] == pytest.approx((16 + 3 * active) / (3 * 16))
    assert row["energy_savings_seed_formula"] == pytest.approx(1 - (active + 0.01 * (16 - active)) / 16)


def test_warmup_epochs_are_dense_and_ast_starts_with_a_fresh_controller():
    model = tiny()
    config = TrainConfig(batch_size=16, channels_last=False, ast=ASTConfig(enabled=True, dense_epochs=1))
    step = SparseStep(model, torch.optim.SGD(model.parameters(), lr=0.1), None, config, torch.device("cpu"), "fp32")
    step.controller.theta = torch.tensor(0.9)  # must be reset when AST begins
    step.start_epoch(0)
    step.train_batch(*batch())
    row = step.end_epoch()
    assert row["ast_phase"] == "dense" and row["activation_rate"] == 1.0 and row["compute_vs_dense_model"] == 1.0
    step.start_epoch(1)
    assert float(step.controller.theta) == 0.5
    step.train_batch(*batch())
    assert step.end_epoch()["ast_phase"] == "ast"
