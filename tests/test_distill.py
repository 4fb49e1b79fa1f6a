"""Knowledge distillation (Hinton, Vinyals, Dean 2015) as a mode of the training loop: the loss on a fixed
example, a frozen teacher, what summary.json records, one-line errors, the AST combination, resume, and the
chapter's comparison with training from scratch. Runs are tiny (synthetic data, a few hundred images)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from cifar_lab import presets
from cifar_lab.config import TrainConfig, apply_overrides, validate
from cifar_lab.book.distillation import compare_with_scratch
from cifar_lab.engine import checkpoint
from cifar_lab.engine.distill_step import DistillStep, distillation_loss
from cifar_lab.engine.trainer import train
from cifar_lab.errors import UsageError

TINY = {"dataset": "synthetic", "synthetic_train_size": 128, "synthetic_test_size": 64, "batch_size": 64,
        "eval_batch_size": 64, "progress": False, "device": "cpu", "lr": 0.05}


def tiny_config(data_root, **extra) -> TrainConfig:
    config = presets.resolve("cifar10-distill-mobilenetv3", {**TINY, "data_root": str(data_root), "epochs": 1})
    return apply_overrides(config, extra)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    """A SimpleCNN teacher trained for one epoch on the tiny synthetic split (fast; any zoo model would do)."""
    root = tmp_path_factory.mktemp("distill")
    config = apply_overrides(TrainConfig(), {**TINY, "model": "simple_cnn", "epochs": 1, "optimizer": "adamw",
                                             "lr": 1e-3, "schedule": "constant", "data_root": str(root / "data")})
    train(config, root / "teacher")
    return root / "teacher" / "best.pt"


def test_loss_is_hintons_formula_with_t_squared_on_a_fixed_example():
    student = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    teacher = torch.tensor([[1.5, 1.0, -0.5], [-1.0, 0.0, 4.0]])
    labels = torch.tensor([0, 2])
    T, alpha = 3.0, 0.7
    total, soft, hard = distillation_loss(student, teacher, labels, T, alpha)
    # By hand: KL(p_t || p_s) = sum p_t (log p_t - log p_s), averaged over the batch; CE on the raw logits.
    kl = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist()):
        zs = sum(math.exp(v / T) for v in s_row)
        zt = sum(math.exp(v / T) for v in t_row)
        for s_v, t_v in zip(s_row, t_row):
            p_t, p_s = math.exp(t_v / T) / zt, math.exp(s_v / T) / zs
            kl += p_t * (math.log(p_t) - math.log(p_s))
    kl /= 2
    ce = sum(-math.log(math.exp(row[y]) / sum(math.exp(v) for v in row))
             for row, y in zip(student.tolist(), labels.tolist())) / 2
    assert soft.item() == pytest.approx(kl, rel=1e-5)
    assert hard.item() == pytest.approx(ce, rel=1e-5)
    assert total.item() == pytest.approx(alpha * T ** 2 * kl + (1 - alpha) * ce, rel=1e-5)
    # alpha = 0 is plain cross-entropy; identical logits give no soft loss.
    assert distillation_loss(student, teacher, labels, T, 0.0)[0].item() == pytest.approx(ce, rel=1e-5)
    assert distillation_loss(student, student, labels, T, 1.0)[0].item() == pytest.approx(0.0, abs=1e-6)


def test_teacher_gets_no_gradient_and_stays_unchanged(teacher, tmp_path):
    config = tiny_config(tmp_path / "data", **{"distill.teacher": str(teacher), "model": "simple_cnn"})
    before = checkpoint.load_model(checkpoint.load(teacher)).state_dict()
    seen = {}
    original = DistillStep.optimize

    def spy(self, images, labels):
        original(self, images, labels)
        seen["grads"] = [p.grad for p in self.teacher.parameters()]
        seen["student_grads"] = any(p.grad is not None for p in self.model.parameters()) or self.optimizer_steps > 0
        seen["training"] = self.teacher.training
        seen["teacher"] = self.teacher

    DistillStep.optimize = spy
    try:
        train(config, tmp_path / "run")
    finally:
        DistillStep.optimize = original
    assert all(g is None for g in seen["grads"])
    assert seen["student_grads"] and not seen["training"]
    assert all(not p.requires_grad for p in seen["teacher"].parameters())
    after = seen["teacher"].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm statistics included


def test_cli_run_writes_the_usual_files_and_records_teacher_and_settings(teacher, tmp_path):
    out = tmp_path / "D"
    sets = [f"{k}={v}" for k, v in TINY.items()] + [
        "epochs=1", f"data_root={tmp_path / 'data'}", f"distill.teacher={teacher}", "distill.temperature=3"]
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "train", "--preset", "cifar10-distill-mobilenetv3",
                           "--set", *sets, "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for name in ("config.json", "metrics.csv", "summary.json", "evaluation.json", "best.pt", "last.pt",
                 "environment.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "mobilenetv3_small_cifar"
    record = summary["distill"]
    assert record["teacher"]["path"] == str(teacher)
    assert record["teacher"]["model"] == "simple_cnn"
    assert 0.0 <= record["teacher"]["test_acc"] <= 1.0
    assert record["temperature"] == 3.0 and record["alpha"] == 0.9
    assert summary["teacher_flops_per_sample"] > 0
    assert summary["compute_vs_student"] == pytest.approx(
        1 + summary["teacher_flops_per_sample"] / summary["student_flops_per_sample_train"])
    # A student training step counts as three of its (counted) forwards.
    assert summary["student_flops_per_sample_train"] == pytest.approx(3 * summary["student_flops_per_sample_forward"])
    config = json.loads((out / "config.json").read_text())
    assert config["distill"] == {"enabled": True, "teacher": str(teacher), "temperature": 3.0, "alpha": 0.9}
    columns = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "train_soft_loss" in columns and "train_label_loss" in columns

    # Resume: a second epoch continues the run, with the teacher loaded again from config.json's path.
    state = checkpoint.load(out / "last.pt")
    state["config"]["epochs"] = 2
    checkpoint.save(out / "last.pt", state)
    resumed = subprocess.run([sys.executable, "-m", "cifar_lab", "train", "--resume", "--out", str(out)],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["distill"]["teacher"]["path"] == str(teacher)


def _cli_error(tmp_path, *sets) -> str:
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "train", "--preset", "cifar10-distill-mobilenetv3",
                           "--set", *[f"{k}={v}" for k, v in TINY.items()], f"data_root={tmp_path / 'data'}",
                           "epochs=1", *sets, "--out", str(tmp_path / "bad")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert not (tmp_path / "bad" / "config.json").exists()  # nothing half-written
    return lines[0]


def test_bad_teachers_are_one_line_errors(teacher, tmp_path):
    # On the command line: one line, exit 2, nothing written.
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(teacher.read_bytes()[:1000])
    assert "corrupt" in _cli_error(tmp_path, f"distill.teacher={corrupt}")
    # The same checks in the library, before anything is written: a missing file, a teacher with another class
    # count, one trained at another input size, and no teacher at all.
    state = checkpoint.load(teacher)
    checkpoint.save(tmp_path / "classes.pt", dict(state, config=dict(state["config"], num_classes=100)))
    checkpoint.save(tmp_path / "size.pt", dict(state, input=dict(state["input"], resolution=64)))
    cases = [(tmp_path / "missing.pt", "no such file"), (tmp_path / "classes.pt", "100 classes"),
             (tmp_path / "size.pt", "64 px"), ("", "needs a teacher")]
    for path, message in cases:
        out = tmp_path / f"run_{message.split()[-1]}"
        config = tiny_config(tmp_path / "data", **{"distill.teacher": str(path)})
        with pytest.raises(UsageError, match=message) as error:
            train(config, out)
        assert "\n" not in str(error.value)
        assert not out.exists()


@pytest.mark.parametrize("key, value, message", [
    ("distill.temperature", "0", "above 0"),
    ("distill.alpha", "1.5", "in [0, 1]"),
])
def test_bad_settings_are_one_line_errors(teacher, key, value, message):
    config = presets.resolve("cifar10-distill-mobilenetv3", {"distill.teacher": str(teacher), key: value})
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate(config)


def test_teacher_without_enabling_distillation_is_refused(teacher):
    config = presets.resolve("cifar10-resnet18", {"distill.teacher": str(teacher)})
    with pytest.raises(UsageError, match="distill.enabled=true"):
        validate(config)


def test_ast_and_distillation_together_are_refused_with_one_line(teacher, tmp_path):
    line = _cli_error(tmp_path, f"distill.teacher={teacher}", "ast.enabled=true")
    assert "distillation and AST cannot be combined" in line


def test_compare_with_scratch_returns_a_row_per_seed_and_variant(teacher, tmp_path):
    # A SimpleCNN student keeps the test fast; the chapter uses the preset's MobileNetV3-Small.
    table = compare_with_scratch(teacher, epochs=1, seeds=[0, 1], out_dir=tmp_path / "cmp",
                                 overrides={"batch_size": 64, "eval_batch_size": 64, "lr": 0.05,
                                            "model": "simple_cnn"})
    assert list(table[["seed", "variant"]].itertuples(index=False, name=None)) == [
        (0, "distilled"), (0, "scratch"), (1, "distilled"), (1, "scratch")]
    assert table["test_acc"].between(0, 1).all()
    assert (table["model"] == "simple_cnn").all()
    assert (table.loc[table.variant == "distilled", "compute_vs_student"] > 1).all()
    assert (table.loc[table.variant == "scratch", "compute_vs_student"] == 1).all()
    assert (tmp_path / "cmp" / "distilled_seed1" / "summary.json").is_file()
    scratch = json.loads((tmp_path / "cmp" / "scratch_seed0" / "summary.json").read_text())
    assert "distill" not in scratch


def test_the_student_is_mobilenetv3_small_at_32_px():
    from cifar_lab import models

    model = models.build("mobilenetv3_small_cifar", num_classes=10).eval()
    features = model.features(torch.zeros(1, 3, 32, 32))
    assert features.shape[-1] == 4  # 8x downsampling, not torchvision's 32x
    assert isinstance(model.classifier[-1], nn.Linear) and model.classifier[-1].out_features == 10
