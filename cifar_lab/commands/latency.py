"""`cifar-lab latency`: batch-1 inference latency of a registry model or a trained checkpoint.

Warm-up runs first (allocator, cuDNN autotuning, caches), then timed runs one image at a time. On a GPU each
run is timed with CUDA events, which measure the kernels on the device rather than Python's view of them; on
the CPU with `time.perf_counter`. Reports mean, std and the 50th/95th/99th percentiles in milliseconds.
"""
from __future__ import annotations

import time

import torch

from .. import models
from ..engine import checkpoint
from ..engine.runtime import resolve_device
from ..errors import UsageError
from . import write_json
from .summary import default_input_size


@torch.inference_mode()
def measure(model: torch.nn.Module, input_size: int, device, warmup: int = 10, runs: int = 100,
            channels_last: bool = False) -> dict:
    """Time `runs` forward passes of one random image after `warmup` untimed ones; milliseconds."""
    device = torch.device(device)
    model = model.to(device).eval()
    image = torch.randn(1, 3, input_size, input_size, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        image = image.contiguous(memory_format=torch.channels_last)
    for _ in range(warmup):
        model(image)
    times = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(runs)]
        for start, end in pairs:
            start.record()
            model(image)
            end.record()
        torch.cuda.synchronize(device)
        times = [start.elapsed_time(end) for start, end in pairs]
    else:
        for _ in range(runs):
            start = time.perf_counter()
            model(image)
            times.append((time.perf_counter() - start) * 1000.0)
    ms = torch.tensor(times, dtype=torch.float64)
    return {
        "mean_ms": float(ms.mean()), "std_ms": float(ms.std()) if runs > 1 else 0.0,
        "p50_ms": float(ms.quantile(0.50)), "p95_ms": float(ms.quantile(0.95)), "p99_ms": float(ms.quantile(0.99)),
        "min_ms": float(ms.min()), "runs": runs, "warmup": warmup, "batch_size": 1, "input_size": input_size,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
    }


def register(sub) -> None:
    parser = sub.add_parser("latency", help="batch-1 inference latency (mean, std, p50, p95, p99 in ms)",
                            description="Time single-image forward passes of a registry model (random weights: "
                                        "latency does not depend on them) or of a trained checkpoint.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help=f"one of: {', '.join(models.names())}")
    source.add_argument("--checkpoint", help="best.pt or last.pt of a run (model, classes, input size from it)")
    parser.add_argument("--classes", type=int, default=10, help="head size for --model (default 10)")
    parser.add_argument("--size", type=int, default=None, help="input resolution (default: the model's own)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
    parser.add_argument("--runs", type=int, default=100, help="timed runs (default 100)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    parser.add_argument("--json", help="write the result as JSON (keys mean_ms, std_ms, p50_ms, p95_ms, p99_ms)")
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.runs < 1 or args.warmup < 0:
        raise UsageError(f"--runs must be at least 1 and --warmup 0 or more (got {args.runs}, {args.warmup})")
    device = resolve_device(args.device)
    if args.checkpoint:
        from ..config import from_dict
        from .evaluate import load_model

        state = checkpoint.load(args.checkpoint)
        config = from_dict(state["config"])
        model, name, classes = load_model(state, "cpu"), config.model, config.num_classes
        size = args.size or config.input_size
    else:
        model = models.build(args.model, num_classes=args.classes)
        name, classes = args.model, args.classes
        size = args.size or default_input_size(model)
    result = {"model": name, "num_classes": classes, "params": models.count_parameters(model),
              **measure(model, size, device, args.warmup, args.runs, args.channels_last)}
    print(f"{name} batch 1 at {size}x{size} on {result['device']}: mean {result['mean_ms']:.2f} ms "
          f"(std {result['std_ms']:.2f}), p50 {result['p50_ms']:.2f}, p95 {result['p95_ms']:.2f}, "
          f"p99 {result['p99_ms']:.2f} ms over {args.runs} runs")
    write_json(args.json, result)
    return 0
