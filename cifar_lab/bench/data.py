"""`cifar-lab bench data`: augmented, normalised training batches per second.

Ours: the device-resident loader (uint8 split on the device, batched crop+flip, fused normalisation).
Reference: torchvision's route (PIL images, RandomCrop, RandomHorizontalFlip, ToTensor, Normalize, DataLoader
with worker processes). Same images, same batch size, same run.
"""
from __future__ import annotations

import itertools

import torch

from ..commands import write_json
from ..config import TrainConfig
from ..data import channel_stats, load_cifar_splits
from ..data.loader import DeviceLoader
from ..data.reference import make_loader
from ..engine.runtime import resolve_device
from ..errors import UsageError
from .timing import interleaved, report_line


def register(bench_sub) -> None:
    p = bench_sub.add_parser("data", help="device-resident loader vs torchvision DataLoader (images/s)")
    p.add_argument("--dataset", default="synthetic", help="synthetic (default), cifar10 or cifar100")
    p.add_argument("--data-root", default="data")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--images", type=int, default=10000, help="images per timed run (default 10000)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the reference (default 2)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", help="write the result as JSON")
    p.set_defaults(func=run)


def _count(batches, limit: int) -> int:
    seen = 0
    for images, _ in batches:
        seen += images.shape[0]
        if seen >= limit:
            break
    return seen


def run(args) -> int:
    if args.dataset not in ("synthetic", "cifar10", "cifar100"):
        raise UsageError(f"unknown dataset '{args.dataset}'; choose one of: synthetic, cifar10, cifar100")
    if args.batch_size < 1 or args.images < 1 or args.repeats < 1 or args.workers < 0:
        raise UsageError("--batch-size, --images and --repeats must be positive and --workers 0 or more")
    device = resolve_device(args.device)
    config = TrainConfig(dataset=args.dataset, data_root=args.data_root, progress=False)
    train, _ = load_cifar_splits(config)
    mean, std = channel_stats(train.images)
    generator = torch.Generator(device=device).manual_seed(0)
    ours_loader = DeviceLoader(train.images, train.labels, args.batch_size, device=device, mean=mean, std=std,
                               train=True, generator=generator)
    ref_loader = make_loader(train.images, train.labels, args.batch_size, mean=mean, std=std, train=True,
                             num_workers=args.workers)

    def ours() -> int:  # as many epochs as it takes to reach the image count
        return _count(itertools.chain.from_iterable(itertools.repeat(ours_loader)), args.images)

    def reference() -> int:
        return _count(itertools.chain.from_iterable(itertools.repeat(ref_loader)), args.images)

    _count(ours_loader, 4 * args.batch_size)  # warm-up: allocator, worker start-up
    _count(ref_loader, 4 * args.batch_size)
    result = interleaved(ours, reference, device, args.repeats)
    result.update(benchmark="data", device=str(device), dataset=args.dataset, batch_size=args.batch_size,
                  images=args.images, reference_workers=args.workers, torch_threads=torch.get_num_threads())
    print(report_line(f"data pipeline on {device} (batch {args.batch_size}, {args.workers} reference workers)",
                      result))
    write_json(args.json, result)
    return 0
