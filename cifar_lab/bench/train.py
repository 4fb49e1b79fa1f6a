"""`cifar-lab bench train --model NAME`: training images per second, ours against the plain fp32 loop.

Ours: the engine's own step (`DenseStep`) with its defaults - precision `auto` (bf16 where the hardware runs it
natively), channels_last - fed by the device-resident loader.
Reference: the plain loop of most tutorials (`bench.plain_loop.PlainLoop`: fp32, contiguous memory format),
batches from torchvision's DataLoader with PIL transforms. Same model, optimizer, batch size and images, in the
same run.
"""
from __future__ import annotations

import itertools

import torch

from .. import models
from ..config import TrainConfig
from ..data import channel_stats, load_cifar_splits
from ..data.loader import DeviceLoader
from ..data.reference import make_loader
from ..engine.runtime import resolve_device, resolve_precision
from ..engine.steps import DenseStep
from ..errors import UsageError
from ..measure import interleaved
from ..provenance import device_name
from . import check_model_and_precision, progress
from .plain_loop import PlainLoop


def run(model: str = "resnet18_cifar", classes: int = 10, size: int = 32, batch_size: int = 64, steps: int = 6,
        repeats: int = 3, workers: int = 2, channels_last: bool = True, compile: bool = False,
        precision: str = "auto", device: str = "auto", data_root: str = "data") -> dict:
    """Training images per second of both loops on the same model and images, alternated `repeats` times."""
    check_model_and_precision(model, precision)
    if min(classes, size, batch_size, steps, repeats) < 1:
        raise UsageError("--classes, --size, --batch-size, --steps and --repeats must be positive")
    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    data_config = TrainConfig(dataset="synthetic", num_classes=min(classes, 100), data_root=data_root,
                              synthetic_train_size=max(2000, 4 * batch_size), progress=False)
    train, _ = load_cifar_splits(data_config)
    labels = train.labels % classes
    mean, std = channel_stats(train.images)

    torch.manual_seed(0)
    ours_model = models.build(model, num_classes=classes).to(device)
    ref_model = models.build(model, num_classes=classes).to(device)
    ref_model.load_state_dict(ours_model.state_dict())
    if channels_last:
        ours_model = ours_model.to(memory_format=torch.channels_last)
    runner = torch.compile(ours_model) if compile else ours_model
    step_config = TrainConfig(grad_accum=1, label_smoothing=0.0)
    ours_opt = torch.optim.SGD(ours_model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    step = DenseStep(runner, ours_opt, scaler, step_config, device, precision)
    ours_loader = DeviceLoader(train.images, labels, batch_size, device=device, mean=mean, std=std, train=True,
                               generator=torch.Generator(device=device).manual_seed(0), drop_last=True,
                               channels_last=channels_last, input_size=size)
    ours_batches = itertools.chain.from_iterable(itertools.repeat(ours_loader))

    ref_opt = torch.optim.SGD(ref_model.parameters(), lr=0.01, momentum=0.9)
    ref_loader = make_loader(train.images, labels, batch_size, mean=mean, std=std, train=True,
                             num_workers=workers, input_size=size)
    ref_batches = itertools.chain.from_iterable(itertools.repeat(ref_loader))
    plain = PlainLoop()
    bar = progress(total=4 + 2 * repeats * steps, desc="bench train", unit="step")

    def ours(steps: int = steps) -> int:
        for _ in range(steps):
            images, y = next(ours_batches)
            step.train_batch(images, y)
            bar.update(1)
        float(step.loss_sum)  # wait for the queued work before the clock stops
        return steps * batch_size

    def reference(steps: int = steps) -> int:
        done = plain.train(ref_model, ref_opt, ref_batches, device, steps=steps, on_step=lambda: bar.update(1))
        return done["images"]

    with bar:
        ours(2)  # warm-up: allocator, oneDNN/cuDNN kernel choice, compile, worker start-up
        reference(2)
        result = interleaved(ours, reference, device, repeats)
    result.update(benchmark="train", model=model, classes=classes, size=size,
                  batch_size=batch_size, steps=steps, device=device_name(device), precision=precision,
                  channels_last=channels_last, compile=compile, reference=f"{plain.describe()}, DataLoader",
                  reference_settings=plain.record(), torch_threads=torch.get_num_threads())
    return result
