"""The training engine: it learns, its config is strict, schedules and stopping rules do what they say."""
import json

import pytest
import torch

from cifar_lab import presets
from cifar_lab.config import TrainConfig, apply_overrides, validate
from cifar_lab.engine import train
from cifar_lab.engine.evaluate import coarse_confusion, evaluate, superclass_accuracy
from cifar_lab.engine.optim import build_scheduler, lr_factor
from cifar_lab.errors import UsageError
from cifar_lab.io import atomic_write


def simplecnn(tmp_path_factory_or_path, **sets):
    overrides = {"dataset": "synthetic", "data_root": str(tmp_path_factory_or_path), "progress": False}
    overrides.update(sets)
    return presets.resolve("cifar10-simplecnn", overrides)


def test_simplecnn_reaches_90_percent_on_synthetic_data_on_cpu(tmp_path):
    result = train(simplecnn(tmp_path / "data", epochs=3, device="cpu"), tmp_path / "run")
    assert result.summary["best_acc"] >= 0.90
    assert result.summary["params"] == 620_362
    for name in ("config.json", "metrics.csv", "summary.json", "best.pt", "last.pt"):
        assert (tmp_path / "run" / name).is_file()
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"] == "simple_cnn" and saved["dataset"] == "synthetic" and saved["epochs"] == 3
    assert not list((tmp_path / "run").glob(".*.tmp"))  # atomic writes leave no temporaries
    report = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert len(report["confusion"]) == 10 and sum(map(sum, report["confusion"])) == report["samples"] == 1000
    assert set(report["per_class_acc"]) == set(result.data.class_names)


def test_target_accuracy_stops_early(tmp_path):
    result = train(simplecnn(tmp_path / "data", epochs=5, target_acc=0.5, train_subset=1000), None)
    assert result.summary["stop_reason"] == "target_acc" and result.summary["epochs"] < 5


def test_min_epochs_hold_back_early_stopping(tmp_path):
    result = train(simplecnn(tmp_path / "data", epochs=3, target_acc=0.01, min_epochs=2, train_subset=500), None)
    assert result.summary["epochs"] == 2 and result.summary["stop_reason"] == "target_acc"


@pytest.mark.parametrize("key, value, message", [
    ("no_such_key", "1", "unknown config key 'no_such_key'"),
    ("epochs", "three", "epochs='three' is not a valid int"),
    ("lr", "fast", "lr='fast' is not a valid float"),
    ("optimizer", "adam", "is not one of: sgd, adamw"),
    ("channels_last", "maybe", "is not a valid bool"),
    ("ast.target", "x", "is not a valid float"),
])
def test_bad_overrides_are_one_line_errors(key, value, message):
    with pytest.raises(UsageError, match=message) as err:
        presets.resolve("cifar10-simplecnn", [(key, value)])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("key, value, message", [
    ("model", "vgg99", "unknown model 'vgg99'"),
    ("dataset", "mnist", "unknown dataset 'mnist'"),
    ("epochs", "0", "epochs must be at least 1"),
    ("target_acc", "85", "target_acc must be in"),
])
def test_validation_names_the_valid_choices(key, value, message):
    with pytest.raises(UsageError, match=message):
        validate(presets.resolve("cifar10-simplecnn", [(key, value)]))


def test_unknown_preset_lists_presets():
    with pytest.raises(UsageError, match="cifar10-resnet18"):
        presets.resolve("cifar10-vgg")


def test_presets_match_the_seed_recipes():
    r18 = presets.resolve("cifar10-resnet18")
    assert (r18.model, r18.optimizer, r18.lr, r18.momentum, r18.weight_decay, r18.epochs, r18.batch_size,
            r18.seed, r18.schedule) == ("resnet18_cifar", "sgd", 0.1, 0.9, 5e-4, 200, 128, 42, "cosine")
    cnn = presets.resolve("cifar10-simplecnn")
    assert (cnn.model, cnn.optimizer, cnn.lr, cnn.weight_decay, cnn.epochs, cnn.batch_size) == \
        ("simple_cnn", "adamw", 1e-3, 1e-4, 40, 128)


def test_warmup_cosine_rises_linearly_from_zero_then_decays_to_zero():
    assert lr_factor("warmup_cosine", 0, 100, 10) == 0.0
    assert lr_factor("warmup_cosine", 5, 100, 10) == pytest.approx(0.5)
    assert lr_factor("warmup_cosine", 10, 100, 10) == pytest.approx(1.0)
    assert lr_factor("warmup_cosine", 100, 100, 10) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor("cosine", 50, 100, 0) == pytest.approx(0.5)


@pytest.mark.parametrize("pct_start", [0.3, 0.1, 0.5])
def test_onecycle_peaks_at_its_max_lr_pct_start_into_the_run(pct_start):
    total = 200
    config = apply_overrides(TrainConfig(), {"schedule": "onecycle", "lr": 0.01, "onecycle_max_lr": 0.05,
                                             "onecycle_pct_start": pct_start, "epochs": 2})
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01, momentum=0.9)
    scheduler = build_scheduler(config, optimizer, total_steps=total)
    lrs = []  # the lr of each optimizer step
    for _ in range(total):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    peak = max(range(total), key=lrs.__getitem__)
    assert abs(peak - pct_start * total) <= 1, (peak, pct_start * total)
    assert lrs[peak] == pytest.approx(0.05, rel=1e-3) and lrs[-1] < 0.001
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1:peak + 1]))  # rises to the peak, then falls
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))


class NoFloat64(torch.utils._python_dispatch.TorchDispatchMode):
    """Fails on any operation that makes a float64 tensor: what a device without float64 (Apple MPS) refuses."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for item in torch.utils._pytree.tree_leaves(out):
            if isinstance(item, torch.Tensor) and item.dtype == torch.float64:
                raise AssertionError(f"{func} made a float64 tensor")
        return out


def test_evaluate_makes_no_float64_tensor_and_keeps_the_loss_exact():
    torch.manual_seed(0)
    batches = [(torch.randn(n, 10) * 3, torch.randint(0, 10, (n,))) for n in (64, 64, 7)]

    class Fixed(torch.nn.Module):
        def forward(self, x):
            return x

    with NoFloat64():
        result = evaluate(Fixed(), batches, 10, "cpu")
    logits = torch.cat([x for x, _ in batches]).double()
    labels = torch.cat([y for _, y in batches])
    expected = torch.nn.functional.cross_entropy(logits, labels).item()
    assert result["loss"] == pytest.approx(expected, rel=1e-6) and result["samples"] == 135
    assert all(isinstance(p, float) for p in result["per_class"])


def test_the_loss_accumulator_keeps_float32_on_the_device_and_sums_exactly_on_the_host():
    from cifar_lab.engine.evaluate import LossSum

    total = LossSum("cpu")
    for _ in range(LossSum.FLUSH_EVERY * 2 + 3):  # across flushes
        total.add(torch.tensor(1e7, dtype=torch.float32))
        total.add(torch.tensor(1.0, dtype=torch.float32))
    assert all(t.dtype == torch.float32 for t in total.pending)
    assert total.host_total() == (1e7 + 1.0) * (LossSum.FLUSH_EVERY * 2 + 3)  # float32 alone would drop the 1s
    assert total.total().dtype == torch.float32


def test_evaluate_counts_top1_top5_confusion_and_superclasses():
    class Fixed(torch.nn.Module):
        def forward(self, x):  # class scores given directly as the input
            return x

    logits = torch.tensor([[5.0, 1, 0, 0], [0, 5.0, 1, 0], [0, 0, 1, 5.0], [5.0, 0, 0, 1]])
    labels = torch.tensor([0, 2, 2, 1])
    coarse = torch.tensor([0, 0, 1, 1])
    result = evaluate(Fixed(), [(logits, labels)], 4, "cpu", coarse_of_fine=coarse)
    assert result["top1"] == 0.25  # only the first sample is right
    assert result["confusion"][2].tolist() == [0, 1, 0, 1]
    assert result["per_class"] == [1.0, 0.0, 0.0, 0.0]
    assert result["superclass_top1"] == pytest.approx(0.75)  # 2->3 and 1->0 stay in their superclass, 2->1 not
    assert superclass_accuracy(result["confusion"], coarse) == pytest.approx(0.75)
    assert coarse_confusion(result["confusion"], coarse).tolist() == [[2, 0], [1, 1]]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "last.pt"
    target.write_bytes(b"complete checkpoint")

    def crash(handle):
        handle.write(b"half a")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert target.read_bytes() == b"complete checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_gradient_accumulation_matches_one_large_batch(tmp_path):
    from cifar_lab.engine.steps import DenseStep

    torch.manual_seed(0)
    x, y = torch.randn(16, 8), torch.randint(0, 3, (16,))
    weights = []
    for accum, chunks in ((1, 1), (2, 2)):
        torch.manual_seed(1)
        model = torch.nn.Linear(8, 3)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        step = DenseStep(model, optimizer, None, TrainConfig(grad_accum=accum), torch.device("cpu"), "fp32")
        for xs, ys in zip(x.chunk(chunks), y.chunk(chunks)):
            step.train_batch(xs, ys)
        weights.append(model.weight.detach().clone())
    assert torch.allclose(weights[0], weights[1], atol=1e-6)


def test_time_budget_stops_inside_an_epoch(tmp_path):
    # A budget far below one epoch: training stops after the batch that crosses it, then evaluates once.
    # With a cosine schedule over 3 epochs, the lr after a whole first epoch would be 0.75 of the base; after
    # one batch it is still the base.
    result = train(simplecnn(tmp_path / "data", epochs=3, time_budget_s=1e-6, schedule="cosine"), None)
    assert result.summary["stop_reason"] == "time_budget" and result.summary["epochs"] == 1
    assert result.history[0]["lr"] > 0.99 * 1e-3 and "test_acc" in result.history[0]
