"""Measurement, defined once for the whole book: device sync, timers, latency, throughput, memory, file size.

- `latency`: the one latency definition (batch 1 or batched). Untimed warm-up runs first (allocator, cuDNN
  autotuning, caches); then each timed run is measured with CUDA events on a GPU, which time the kernels on
  the device rather than Python's view of them, and with `time.perf_counter` on the CPU. It reports mean,
  std and the 50th/90th/95th/99th percentiles in milliseconds.
- `timed` and `interleaved`: throughput of a callable, and two paths alternated in one run with the medians
  kept, so that drift in the machine's load hits both; `timing_summary`: median, min and max of repeats.
- `matmul_flops`: the device's measured peak FLOP/s at a precision, what a training run's FLOP/s is set against.
- `training_memory_estimate` (any machine) and `measure_cuda_memory` (a CUDA GPU): memory per batch size.
- `weights_file_size`: what a weights-only file of a model takes on disk.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from .io import atomic_write
from .provenance import device_name

PERCENTILES = (50, 90, 95, 99)


def sync(device) -> None:
    """Wait for the work queued on `device`: a CUDA or MPS call only queues kernels, so a timer must wait."""
    kind = torch.device(device).type
    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind == "mps":
        torch.mps.synchronize()


def timed(fn: Callable[[], int], device) -> float:
    """Run `fn` (which returns how many images it processed) and return images per second."""
    sync(device)
    start = time.perf_counter()
    images = fn()
    sync(device)
    return images / (time.perf_counter() - start)


def timing_summary(values) -> dict:
    """Median, min and max of repeated timings (what a published ratio carries). Not a spread over seeds:
    that is a standard deviation, and a timing's min and max say how much the machine drifted instead."""
    values = list(values)
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def matmul_flops(device, precision: str = "fp32", size: int = 2048, runs: int = 10, warmup: int = 2) -> dict:
    """The device's measured peak: FLOP/s of a `size` x `size` matrix product in `precision` (fp32, bf16 or
    fp16), the best of `runs` timed products after `warmup` untimed ones. A training run's FLOP/s over this
    says how much of what the machine can compute at that precision the run used."""
    device = torch.device(device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=generator).to(device, dtype) for _ in range(2))
    for _ in range(warmup):
        a @ b
    seconds = []
    for _ in range(runs):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        seconds.append(time.perf_counter() - start)
    work = 2.0 * size ** 3  # a multiply and an add per term
    return {"precision": precision, "size": size, "runs": runs, "flop_s": work / min(seconds),
            "median_flop_s": work / statistics.median(seconds)}


def compare_means(mean: float, std: float, other_mean: float, other_std: float) -> dict:
    """Is one mean over seeds above another? The difference counts only when it exceeds the seeds' spread
    (the larger of the two standard deviations; with one seed there is no spread and every difference counts).
    {"difference", "spread", "verdict": "better" | "worse" | "no clear difference"}."""
    gap = float(mean) - float(other_mean)
    noise = float(max(std, other_std))
    noise = 0.0 if noise != noise else noise  # NaN: one seed, no spread to compare with
    verdict = "better" if gap > noise else "worse" if gap < -noise else "no clear difference"
    return {"difference": gap, "spread": noise, "verdict": verdict}


def interleaved(ours: Callable[[], int], reference: Callable[[], int], device, repeats: int = 3) -> dict:
    """Alternate the two paths `repeats` times and keep the medians of images per second."""
    ours_runs, ref_runs = [], []
    for _ in range(repeats):
        ref_runs.append(timed(reference, device))
        ours_runs.append(timed(ours, device))
    ours_img_s, ref_img_s = statistics.median(ours_runs), statistics.median(ref_runs)
    return {"ours_img_s": ours_img_s, "reference_img_s": ref_img_s, "ratio": ours_img_s / ref_img_s,
            "ratio_spread": timing_summary(o / r for o, r in zip(ours_runs, ref_runs)),
            "ours_runs": ours_runs, "reference_runs": ref_runs, "repeats": repeats}


@torch.inference_mode()
def latency(model: torch.nn.Module, input_size: int, device, warmup: int = 10, runs: int = 100,
            batch_size: int = 1, channels_last: bool = False) -> dict:
    """Milliseconds per forward pass of `batch_size` random images, over `runs` timed runs after `warmup`.

    The model is put in eval mode (and left there). Weights do not change the time a forward pass takes,
    so a freshly built model measures the same as a trained one.
    """
    device = torch.device(device)
    model = model.to(device).eval()
    images = torch.randn(batch_size, 3, input_size, input_size, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    for _ in range(warmup):
        model(images)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(runs)]
        for start, end in pairs:
            start.record()
            model(images)
            end.record()
        torch.cuda.synchronize(device)
        times = [start.elapsed_time(end) for start, end in pairs]
    else:
        # No timing events off CUDA: wall-clock around each pass, waiting for the queue on MPS (a no-op on CPU).
        times = []
        for _ in range(runs):
            sync(device)
            start = time.perf_counter()
            model(images)
            sync(device)
            times.append((time.perf_counter() - start) * 1000.0)
    ms = torch.tensor(times, dtype=torch.float64)
    result = {"mean_ms": float(ms.mean()), "std_ms": float(ms.std()) if runs > 1 else 0.0}
    result.update({f"p{q}_ms": float(ms.quantile(q / 100)) for q in PERCENTILES})
    result.update(min_ms=float(ms.min()), img_s=1000.0 * batch_size / float(ms.median()), runs=runs,
                  warmup=warmup, batch_size=batch_size, input_size=input_size, device=device_name(device),
                  threads=torch.get_num_threads())
    return result


def training_memory_estimate(model: torch.nn.Module, image_size: int, batch_sizes, activation_bytes: int = 2,
                             optimizer_states: int = 2) -> list[dict]:
    """An estimate of training memory per batch size, for machines without a GPU to measure on.

    Weights, gradients and `optimizer_states` tensors per weight (AdamW: 2) in fp32; activations = the
    elements of every leaf module's output for one image (what autograd keeps for the backward pass, roughly),
    times `activation_bytes` (2 under bf16/fp16 autocast), times the batch size. It leaves out the allocator's
    slack, cuDNN workspaces and temporaries, so a measurement (`torch.cuda.max_memory_allocated`) is higher.
    """
    elements = []

    def count(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            elements.append(output.numel())

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, image_size, image_size))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    fixed = params * 4 * (2 + optimizer_states)
    per_image = sum(elements) * activation_bytes
    return [{"batch_size": b, "weights_grads_optimizer_MiB": fixed / 2**20, "activations_MiB": b * per_image / 2**20,
             "total_MiB": (fixed + b * per_image) / 2**20} for b in batch_sizes]


def measure_cuda_memory(model: torch.nn.Module, image_size: int, batch_sizes, precision: str = "bf16") -> dict:
    """Peak CUDA memory (MiB, `torch.cuda.max_memory_allocated`) of one AdamW training step per batch size."""
    device = torch.device("cuda")
    model = model.to(device).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    peaks = {}
    for batch_size in batch_sizes:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        images = torch.randn(batch_size, 3, image_size, image_size, device=device).contiguous(
            memory_format=torch.channels_last)
        labels = torch.zeros(batch_size, dtype=torch.long, device=device)
        with torch.autocast("cuda", dtype=dtype):
            loss = torch.nn.functional.cross_entropy(model(images).float(), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize(device)
        peaks[batch_size] = torch.cuda.max_memory_allocated(device) / 2**20
    return peaks


def weights_file_size(model: torch.nn.Module, path) -> int:
    """Write the weights-only file (atomically) and return its size in bytes: what "checkpoint size" means
    when papers quote one, as opposed to a full training checkpoint with optimizer state."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(path, lambda handle: torch.save(state, handle))
    return Path(path).stat().st_size
