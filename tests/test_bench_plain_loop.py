"""The plain training loop the benchmarks time the engine against (`bench.plain_loop.PlainLoop`): it trains, it
runs with the settings it records, and `bench train` times it as its reference."""
import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from cifar_lab.bench import plain_loop
from cifar_lab.bench.plain_loop import PlainLoop
from cifar_lab.engine.runtime import cpu_supports_bf16
from cifar_lab.errors import UsageError

CLASSES = 10


def learnable_batches(n: int = 400, batch: int = 40, seed: int = 0) -> list:
    """Ten classes of 3x8x8 images, class k a bright spot at its own place on a noisy background; chance is 0.1."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % CLASSES
    images = 0.3 * torch.randn(n, 3, 8, 8, generator=generator)
    images.view(n, 3, 64)[torch.arange(n), :, labels * 6] += 3.0
    return [(images[i:i + batch], labels[i:i + batch]) for i in range(0, n, batch)]


def small_network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, CLASSES))


def test_the_plain_loop_trains_a_learnable_set_far_above_chance():
    """Mutants: the loop never calls `optimizer.step()`; it zeroes the gradients between backward and step;
    evaluation counts the wrong images as right."""
    loop, model = PlainLoop(), small_network()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    train, test = learnable_batches(), learnable_batches(seed=1)
    before = loop.evaluate(model, test, "cpu")
    losses = [loop.train(model, optimizer, train, "cpu")["loss"] for _ in range(5)]
    after = loop.evaluate(model, test, "cpu")
    assert losses[-1] < 0.5 * losses[0]
    assert before["accuracy"] < 0.3 and after["accuracy"] > 0.8  # chance: 0.1
    assert after["images"] == 400 and after["correct"] == round(after["accuracy"] * 400)


def test_one_step_is_forward_loss_backward_step_with_the_recorded_smoothing():
    """Mutants: label smoothing recorded but not applied to the loss; the loss reported per batch instead of per
    image; the scheduler stepped per epoch (or not at all) instead of per batch; `steps` off by one."""
    loop = PlainLoop(label_smoothing=0.2)
    assert loop.record() == {"loop": "plain", "precision": "fp32", "channels_last": False, "label_smoothing": 0.2}
    model = small_network()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # no change: the loss is the first model's
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    batches = learnable_batches(n=120, batch=40)
    with torch.no_grad():
        expected = [F.cross_entropy(model(x), y, label_smoothing=0.2) * len(y) for x, y in batches[:2]]
    endless = itertools.cycle(batches)
    done = loop.train(model, optimizer, endless, "cpu", scheduler=scheduler, steps=2)
    assert done["batches"] == 2 and done["images"] == 80 and scheduler.last_epoch == 2
    assert done["loss"] == pytest.approx(float(sum(expected)) / 80, rel=1e-5)
    assert next(endless)[0] is batches[2][0]  # exactly `steps` batches drawn


@pytest.mark.parametrize("loop", [PlainLoop(), PlainLoop.informed("cpu")], ids=["plain", "informed"])
def test_the_loop_runs_with_the_settings_it_records(loop):
    """Mutants: the informed loop records bf16 and channels_last but runs fp32 or contiguous inputs (in training or
    in evaluation); the plain loop autocasts."""
    seen = []

    def look(module, inputs, output):
        seen.append((inputs[0].is_contiguous(memory_format=torch.channels_last) and not inputs[0].is_contiguous(),
                     output.dtype))

    model = loop.prepare(small_network())
    model[0].register_forward_hook(look)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    batches = learnable_batches(n=80, batch=40)
    loop.train(model, optimizer, batches, "cpu")
    loop.evaluate(model, batches, "cpu")
    dtype = torch.bfloat16 if loop.precision == "bf16" else torch.float32
    assert seen == [(loop.channels_last, dtype)] * 4
    assert loop.record()["precision"] == loop.precision and loop.record()["channels_last"] == loop.channels_last


def test_the_informed_loop_uses_what_the_cpu_supports():
    """Mutants: bf16 chosen on a CPU without native bf16 (emulated, slower), or never; channels_last left out;
    fp16 (which needs a GradScaler) accepted."""
    informed = PlainLoop.informed("cpu", label_smoothing=0.1)
    assert informed == PlainLoop("bf16" if cpu_supports_bf16() else "fp32", True, 0.1)
    with pytest.raises(UsageError, match="fp16"):
        PlainLoop("fp16")


def test_bench_train_times_the_plain_loop_as_its_reference(tmp_path, monkeypatch):
    """Mutant: `bench train` keeps a loop of its own for the reference (the loop it records is not the one it
    times)."""
    from cifar_lab.bench import train

    calls = []
    real_train = PlainLoop.train

    def counted(self, model, optimizer, batches, device, **kwargs):
        calls.append((self, kwargs.get("steps")))
        return real_train(self, model, optimizer, batches, device, **kwargs)

    monkeypatch.setattr(plain_loop.PlainLoop, "train", counted)
    result = train.run(model="simple_cnn", data_root=str(tmp_path), steps=2, repeats=3, workers=0, batch_size=8,
                       device="cpu", precision="fp32")
    assert calls == [(PlainLoop(), 2)] * 4  # the warm-up and three timed runs
    assert result["reference_settings"] == PlainLoop().record()
