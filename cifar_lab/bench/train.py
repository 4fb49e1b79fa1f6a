"""`cifar-lab bench train --model NAME`: training images per second, ours against the plain fp32 loop.

Ours: the engine's own step (`DenseStep`) with its defaults - precision `auto` (bf16 where the hardware runs it
natively), channels_last - fed by the device-resident loader.
Reference: the loop of most tutorials - fp32, contiguous memory format, batches from torchvision's
DataLoader with PIL transforms. Same model, optimizer, batch size and images, in the same run.
"""
from __future__ import annotations

import itertools

import torch
import torch.nn as nn

from .. import models
from ..commands import write_json
from ..config import TrainConfig
from ..data import channel_stats, load_cifar_splits
from ..data.loader import DeviceLoader
from ..data.reference import make_loader
from ..engine.runtime import resolve_device, resolve_precision
from ..engine.steps import DenseStep
from ..errors import UsageError
from .timing import add_run_arguments, check_model_and_precision, interleaved, report_line


def register(bench_sub) -> None:
    p = bench_sub.add_parser("train", help="training images/s: engine step vs plain fp32 loop")
    p.add_argument("--model", default="resnet18_cifar", help=f"one of: {', '.join(models.names())}")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--size", type=int, default=32, help="input size in pixels (images are resized to it)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=6, help="timed training steps per run")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the reference")
    p.add_argument("--no-channels-last", action="store_true", help="switch channels_last off on our path")
    p.add_argument("--compile", action="store_true", help="torch.compile our model")
    add_run_arguments(p, precision_help="our precision: auto, fp32, bf16 or fp16")
    p.set_defaults(func=run)


def run(args) -> int:
    check_model_and_precision(args)
    if min(args.classes, args.size, args.batch_size, args.steps, args.repeats) < 1:
        raise UsageError("--classes, --size, --batch-size, --steps and --repeats must be positive")
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    channels_last = not args.no_channels_last
    data_config = TrainConfig(dataset="synthetic", num_classes=min(args.classes, 100), data_root=args.data_root,
                              synthetic_train_size=max(2000, 4 * args.batch_size), progress=False)
    train, _ = load_cifar_splits(data_config)
    labels = train.labels % args.classes
    mean, std = channel_stats(train.images)

    torch.manual_seed(0)
    ours_model = models.build(args.model, num_classes=args.classes).to(device)
    ref_model = models.build(args.model, num_classes=args.classes).to(device)
    ref_model.load_state_dict(ours_model.state_dict())
    if channels_last:
        ours_model = ours_model.to(memory_format=torch.channels_last)
    runner = torch.compile(ours_model) if args.compile else ours_model
    step_config = TrainConfig(grad_accum=1, label_smoothing=0.0)
    ours_opt = torch.optim.SGD(ours_model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    step = DenseStep(runner, ours_opt, scaler, step_config, device, precision)
    ours_loader = DeviceLoader(train.images, labels, args.batch_size, device=device, mean=mean, std=std, train=True,
                               generator=torch.Generator(device=device).manual_seed(0), drop_last=True,
                               channels_last=channels_last, input_size=args.size)
    ours_batches = itertools.chain.from_iterable(itertools.repeat(ours_loader))

    ref_opt = torch.optim.SGD(ref_model.parameters(), lr=0.01, momentum=0.9)
    ref_loader = make_loader(train.images, labels, args.batch_size, mean=mean, std=std, train=True,
                             num_workers=args.workers, input_size=args.size)
    ref_batches = itertools.chain.from_iterable(itertools.repeat(ref_loader))
    criterion = nn.CrossEntropyLoss()

    def ours(steps: int = args.steps) -> int:
        for _ in range(steps):
            images, y = next(ours_batches)
            step.train_batch(images, y)
        float(step.loss_sum)  # wait for the queued work before the clock stops
        return steps * args.batch_size

    def reference(steps: int = args.steps) -> int:
        ref_model.train()
        for _ in range(steps):
            images, y = next(ref_batches)
            images, y = images.to(device), y.to(device)
            loss = criterion(ref_model(images), y)
            ref_opt.zero_grad()
            loss.backward()
            ref_opt.step()
        return steps * args.batch_size

    ours(2)  # warm-up: allocator, oneDNN/cuDNN kernel choice, compile, worker start-up
    reference(2)
    result = interleaved(ours, reference, device, args.repeats)
    result.update(benchmark="train", model=args.model, classes=args.classes, size=args.size,
                  batch_size=args.batch_size, steps=args.steps, device=str(device), precision=precision,
                  channels_last=channels_last, compile=args.compile, reference="fp32, contiguous, DataLoader",
                  torch_threads=torch.get_num_threads())
    print(report_line(f"training {args.model} at {args.size}px on {device} (batch {args.batch_size}; ours "
                      f"{precision}{', channels_last' if channels_last else ''})", result))
    write_json(args.json, result)
    return 0
