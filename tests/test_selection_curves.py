"""The AST chapter's compute curves (`book.selection_curves`): typed records per variant and compute level, on a
tiny synthetic run through the one engine."""
import contextlib
import dataclasses

import pytest
import torch
import torch.nn as nn

from cifar_lab import models
from cifar_lab.book import ast_comparison, record, selection_curves, stats
from cifar_lab.book.selection_curves import BUDGET, BUDGET_OF
from cifar_lab.config import TrainConfig, apply_overrides
from cifar_lab.engine.sparse_step import count_flops_per_sample
from cifar_lab.errors import UsageError

TRAIN, TEST, SEEDS = 128, 32, [0, 1]


def tiny_cnn(num_classes=10):
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, num_classes))


def tiny_measure(data_root: str, epochs: int, **arguments):
    """`selection_curves.measure` of the tiny network on synthetic images: (its base config, records, extras)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(models.MODELS, "tiny_test_cnn", models.ModelSpec(tiny_cnn, 16))
        base = apply_overrides(TrainConfig(), {
            "dataset": "synthetic", "data_root": data_root, "synthetic_train_size": TRAIN,
            "synthetic_test_size": TEST, "model": "tiny_test_cnn", "input_size": 16, "epochs": epochs,
            "batch_size": 32, "optimizer": "sgd", "lr": 0.05, "ast.target": 0.25, "progress": False,
            "save_checkpoints": False, "device": "cpu"})
        return (base, *selection_curves.measure(base, SEEDS, **arguments))


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    return tiny_measure(str(tmp_path_factory.mktemp("data")), 3, variants=[BUDGET_OF, BUDGET])


def flops_per_sample():
    """The tiny model's FLOPs per sample: (scoring forward, training step), counted apart from the driver."""
    images, labels = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,))
    counted = count_flops_per_sample(tiny_cnn(), images, labels, nn.CrossEntropyLoss(), contextlib.nullcontext)
    return counted["forward"], counted["train"]


def test_every_record_is_filled_for_every_seed(measured):
    """Mutant caught: a record with a field the claims read left empty (data, run length, provenance), or
    per-seed details that do not line up with the seeds."""
    _, records, _ = measured
    assert [r.label for r in records] == [f"{BUDGET_OF}, epoch {k}" for k in (1, 2, 3)] + [BUDGET]
    for found in records:
        assert found.measured == record.FINAL_ACCURACY and found.seeds == tuple(SEEDS)
        assert all(0.0 <= value <= 1.0 for value in found.values)
        assert (found.dataset, found.train_images, found.test_images) == ("synthetic", TRAIN, TEST)
        assert found.device and found.data_source and found.date
        assert len(found.epochs) == len(found.optimizer_steps) == 2 and min(found.optimizer_steps) > 0
        for key in selection_curves.POINT_KEYS:
            assert len(found.details[key]) == 2 and min(found.details[key]) > 0
    assert all(found.epochs == (k, k) for k, found in enumerate(records[:3], 1))


def test_the_compute_levels_accumulate_the_training_flops_with_the_scoring_pass(measured):
    """Mutants caught: a level's FLOPs that are the epoch's alone (not accumulated); the scoring forward left
    out of them; samples or steps that do not grow with the level."""
    _, records, extras = measured
    forward, step = flops_per_sample()
    levels = records[:3]
    for seed in range(2):
        flops = [found.details["training_flops"][seed] for found in levels]
        samples = [found.details["samples_backpropagated"][seed] for found in levels]
        steps = [found.optimizer_steps[seed] for found in levels]
        assert flops == sorted(set(flops)) and samples == sorted(set(samples)) and steps == sorted(steps)
        # every epoch scores the whole split once, and trains what it selected
        assert flops == pytest.approx([k * TRAIN * forward + step * n for k, n in zip((1, 2, 3), samples)])
        mix = extras[BUDGET_OF]["class_mix"][seed]["selected_per_class"]
        assert [sum(map(sum, mix[:k])) for k in (1, 2, 3)] == samples


def test_dense_at_asts_compute_gets_the_closest_whole_epochs_and_ends_its_schedule(measured):
    """Mutants caught: the budget variant trained for the curves' epochs rather than the AST run's FLOPs; its
    schedule left at a constant rate (not decayed inside the budget); the curves not at a constant rate."""
    base, records, extras = measured
    _, step = flops_per_sample()
    budget = records[-1]
    spent = records[2].details["training_flops"]
    assert list(budget.epochs) == [max(1, round(f / (step * TRAIN))) for f in spent]
    assert budget.details["samples_backpropagated"] == [TRAIN * e for e in budget.epochs]
    for run in extras[BUDGET]["curves"]:
        assert run["points"][-1]["lr"] == 0.0
    for run in extras[BUDGET_OF]["curves"]:
        assert [p["lr"] for p in run["points"]] == [base.lr] * 3


def test_the_records_and_class_shares_are_saved_and_read_back(measured, tmp_path):
    """Mutant caught: extras that JSON cannot hold, or class shares that are not shares of the selection."""
    _, records, extras = measured
    record.save(tmp_path / "records.json", records, extras)
    loaded, loaded_extras = record.load(tmp_path / "records.json")
    assert loaded == records and loaded_extras == extras
    shares = selection_curves.class_shares(extras)
    assert set(shares) == {BUDGET_OF} and sum(shares[BUDGET_OF]) == pytest.approx(1.0)


def test_unknown_variants_a_budget_without_its_ast_run_and_a_subset_are_one_line_errors():
    """Mutants caught: the budget variant run without the AST run it is given the FLOPs of; curves on a subset of
    the training split. (The config would be refused before training in any case: a mutant fails at once.)"""
    base = TrainConfig(dataset="synthetic", model="no such model")
    with pytest.raises(UsageError, match="choose from"):
        selection_curves.measure(base, [0], variants=["dense", "rho loss"])
    with pytest.raises(UsageError, match=f"add '{BUDGET_OF}'"):
        selection_curves.measure(base, [0], variants=["dense", BUDGET])
    with pytest.raises(UsageError, match="set train_subset=0"):
        selection_curves.measure(apply_overrides(base, {"train_subset": 64}), [0], variants=["dense"])


@pytest.fixture(scope="module")
def every_variant(tmp_path_factory):
    """All variants, two seeds, two epochs, the first AST run keeping the scores of 3 batches."""
    _, found, extras = tiny_measure(str(tmp_path_factory.mktemp("data")), 2, record_scores=3)
    # among other records, as a chapter's file holds them
    other = dataclasses.replace(found[0], label="dense", details={})
    return record.RecordSet([other, *found], extras, "run", None)


def test_each_selection_is_answered_against_its_random_twin_at_every_level(every_variant):
    """Mutants caught: a selection compared with the wrong twin (packed against unpacked) or at another level;
    the budget answered against an AST level other than the last; records of other experiments read as curves."""
    answers = selection_curves.answers(every_variant)
    assert [(ours, other, level) for ours, other, level, _ in answers] == [
        (ours, other, level) for ours, other in selection_curves.TWINS for level in (1, 2)
    ] + [(BUDGET, f"{BUDGET_OF}, epoch 2", None)]
    for ours, other, level, comparison in answers:
        mine = every_variant.get(ours if level is None else f"{ours}, epoch {level}").values
        theirs = every_variant.get(other if level is None else f"{other}, epoch {level}").values
        assert comparison == stats.compare(mine, theirs)
    assert "dense" not in selection_curves.chosen(every_variant).labels
    sentence = selection_curves.answer_sentence(every_variant, "AST engine", "random packed", 2)
    assert sentence.startswith("AST engine") and "after epoch 2" in sentence and "n=2 and 2" in sentence
    table = selection_curves.answers_table(every_variant)
    assert len(table) == len(answers) and set(table["verdict"]) <= {stats.BETTER, stats.WORSE, stats.NO_CLEAR}


def test_the_class_mix_the_levels_and_the_score_stream_come_from_the_runs(every_variant):
    """Mutants caught: class shares that do not sum to 100 %, dense given a class mix, a level table that leaves
    out a record, a score stream not kept (or kept from another run than the first AST one)."""
    mix = selection_curves.class_mix_table(every_variant, [str(k) for k in range(10)])
    assert list(mix.index) == ["even share", "AST engine", "AST seed gate", "random packed", "random unpacked",
                               "Selective Backprop"]
    assert mix.sum(axis=1).tolist() == pytest.approx([100.0] * len(mix))
    levels = selection_curves.level_table(every_variant)
    assert len(levels) == len(selection_curves.chosen(every_variant).records) == 6 * 2 + 1
    assert len(selection_curves.points(every_variant)) == len(levels)
    stream = every_variant.extras[BUDGET_OF][ast_comparison.SCORE_STREAM]
    assert len(stream["scores"]) == 3 and stream["batches_per_epoch"] == TRAIN // 32
    assert all(ast_comparison.SCORE_STREAM not in every_variant.extras[name]
               for name in every_variant.extras if name != BUDGET_OF)
