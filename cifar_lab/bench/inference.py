"""`cifar-lab bench inference --checkpoint C`: every inference route of a trained model, side by side.

The routes (`cifar_lab.inference_routes`: eager fp32, channels-last, bf16/fp16 autocast, torch.compile,
ONNX Runtime, int8 static quantization) are built once; then, `repeats` times, each route in turn is timed
with the book's one latency definition (`measure.latency`: untimed warm-up, then timed runs) at batch 1
and at the throughput batch size. Alternating the routes inside each repeat spreads drift in the
machine's load over all of them; each figure is the median over the repeats, with its spread.

Per route: batch-1 `p50_ms` and `p95_ms`, `img_s` at the throughput batch size, top-1 on the test split,
top-1 `agreement` with eager fp32, and `size_mb` of what the route loads (weights file, ONNX file).
`best_route` is the route with the lowest batch-1 p50 among those whose agreement is at least
`AGREEMENT_FLOOR`; `speedup_vs_eager` is eager's p50 over its p50 (per-repeat ratios in
`speedup_spread`).
"""
from __future__ import annotations

import os
import statistics
from typing import Optional

import torch

from .. import export, inference_routes
from ..engine import checkpoint
from ..engine.runtime import resolve_device
from ..errors import UsageError
from ..measure import latency, timing_summary
from ..provenance import device_name
from . import progress as progress_bar

AGREEMENT_FLOOR = 0.99


def parse_routes(routes) -> list[str]:
    """A comma-separated string or a list of route names -> the list, eager first (the reference)."""
    if routes is None:
        return list(inference_routes.ROUTES)
    names = [r.strip() for r in routes.split(",")] if isinstance(routes, str) else list(routes)
    unknown = [r for r in names if r not in inference_routes.ROUTES]
    if unknown or not names:
        raise UsageError(f"unknown route '{(unknown or [''])[0]}'; choose from: "
                         f"{', '.join(inference_routes.ROUTES)} (comma-separated)")
    return [inference_routes.REFERENCE] + [r for r in dict.fromkeys(names) if r != inference_routes.REFERENCE]


def best_of(routes: dict, floor: float = AGREEMENT_FLOOR) -> Optional[str]:
    """The fastest route at batch 1 (lowest p50) among those whose agreement with eager is >= `floor`."""
    eligible = {name: r for name, r in routes.items() if r["agreement"] >= floor}
    return min(eligible, key=lambda name: eligible[name]["p50_ms"]) if eligible else None


def run(checkpoint_path, *, routes=None, repeats: int = 3, runs: int = 100, warmup: int = 10,
        batch_size: int = 64, batch_runs: int = 5, eval_images: Optional[int] = None,
        calibration_images: int = 256, device: str = "auto", data_root=None, work_dir=None,
        threads: Optional[int] = None, progress: bool = True) -> dict:
    """Measure the routes of a checkpoint's model; returns a plain dict (see the module docstring).

    `threads` sets PyTorch's intra-op threads (`torch.set_num_threads`) and with them ONNX Runtime's, so
    every route computes with the same number of cores, for the duration of the call; None keeps
    PyTorch's setting.
    """
    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be at least 1 (got {threads})")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(checkpoint_path, routes, repeats, runs, warmup, batch_size, batch_runs, eval_images,
                    calibration_images, device, data_root, work_dir, progress)
    finally:
        torch.set_num_threads(previous)


def _run(checkpoint_path, routes, repeats, runs, warmup, batch_size, batch_runs, eval_images,
         calibration_images, device, data_root, work_dir, progress) -> dict:
    names = parse_routes(routes)
    if min(repeats, runs, batch_size, batch_runs, calibration_images) < 1 or warmup < 0:
        raise UsageError("--repeats, --runs, --batch-size, --batch-runs and --calibration-images must be at "
                         "least 1 and --warmup 0 or more")
    if eval_images is not None and eval_images < 1:
        raise UsageError(f"--eval-images must be at least 1 (got {eval_images})")
    device = resolve_device(device)
    state = checkpoint.load(checkpoint_path)
    model = checkpoint.load_model(state, "cpu")
    meta = export.metadata(state)
    resolution = meta["input"]["resolution"]
    images, labels, calibration = export.test_split(state, data_root=data_root, limit=eval_images,
                                                    calibration=calibration_images)
    bar = progress_bar(total=len(names) * (1 + 2 * repeats), unit="step", enabled=progress)
    built, skipped, quality = {}, {}, {}
    reference_logits = None
    with inference_routes.work_folder(work_dir) as folder, inference_routes.quiet_compiler_logs():
        for name in names:
            bar.set_description(f"build {name}")
            try:
                route = inference_routes.build(name, model, meta, device, folder, calibration)
                # The first call compiles (torch.compile) or initialises; the test split is also the warm-up.
                route_logits = inference_routes.logits(route, images, batch_size)
            except inference_routes.RouteUnavailable as exc:
                skipped[name] = str(exc)
                bar.update(1 + 2 * repeats)
                continue
            built[name] = route
            if reference_logits is None:
                reference_logits = route_logits
            quality[name] = inference_routes.quality(route_logits, reference_logits, labels)
            bar.update(1)
        timings = {name: {"batch1": [], "batch": []} for name in built}
        for repeat in range(repeats):
            for name, route in built.items():
                bar.set_description(f"repeat {repeat + 1}/{repeats}: {name}")
                # A batch of 64 warms the caches and the allocator as well as ten single images do.
                for key, size, count, untimed in (("batch1", 1, runs, warmup),
                                                  ("batch", batch_size, batch_runs, min(warmup, 2))):
                    timings[name][key].append(latency(route.module, resolution, device, untimed, count, size,
                                                      route.channels_last))
                    bar.update(1)
    bar.close()
    results = {name: _summary(built[name], timings[name], quality[name]) for name in built}
    best = best_of(results)
    report = {
        "checkpoint": str(checkpoint_path), "model": meta["model"], "dataset": meta["dataset"],
        "device": device_name(device), "threads": torch.get_num_threads(), "input_size": resolution,
        "repeats": repeats, "runs": runs, "warmup": warmup, "batch_size": batch_size, "batch_runs": batch_runs,
        "eval_images": len(labels), "calibration_images": len(calibration), "reference": "eager",
        "agreement_floor": AGREEMENT_FLOOR, "routes": results, "skipped": skipped, "best_route": best,
        "speedup_vs_eager": None, "speedup_spread": None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if best is not None:
        eager_runs = [t["p50_ms"] for t in timings["eager"]["batch1"]]
        best_runs = [t["p50_ms"] for t in timings[best]["batch1"]]
        report["speedup_vs_eager"] = results["eager"]["p50_ms"] / results[best]["p50_ms"]
        report["speedup_spread"] = timing_summary(e / b for e, b in zip(eager_runs, best_runs))
    return report


def _summary(route, timings: dict, quality: dict) -> dict:
    p50 = [t["p50_ms"] for t in timings["batch1"]]
    img_s = [t["img_s"] for t in timings["batch"]]
    return {"p50_ms": statistics.median(p50), "p95_ms": statistics.median(t["p95_ms"] for t in timings["batch1"]),
            "img_s": statistics.median(img_s), "agreement": quality["agreement"], "top1": quality["top1"],
            "max_abs_diff": quality["max_abs_diff"], "size_mb": route.size_bytes / 1e6,
            "p50_spread": timing_summary(p50), "img_s_spread": timing_summary(img_s), "detail": route.detail,
            "device": route.device, **route.info}


def table_lines(result: dict) -> list[str]:
    """The routes as aligned text lines (what the command prints), at most 76 characters wide."""
    lines = [f"{'route':<14}{'p50 ms':>8}{'p95 ms':>8}{'img/s':>8}{'top-1':>7}{'agree':>7}{'MB':>7}"]
    for name, r in result["routes"].items():
        lines.append(f"{name:<14}{r['p50_ms']:>8.2f}{r['p95_ms']:>8.2f}{r['img_s']:>8.0f}{r['top1']:>7.3f}"
                     f"{r['agreement']:>7.3f}{r['size_mb']:>7.1f}")
    for name, reason in result["skipped"].items():
        lines.append(f"{name:<14}skipped: {reason}"[:76])
    return lines


def verdict_line(result: dict) -> str:
    best = result["best_route"]
    if best is None:
        return f"no route agrees with eager on >= {result['agreement_floor']:.0%} of the test images"
    s = result["speedup_spread"]
    return (f"best route at batch 1 (agreement >= {result['agreement_floor']:.2f}): {best}, "
            f"{result['speedup_vs_eager']:.2f}x eager's p50 (repeats {s['min']:.2f}-{s['max']:.2f}x)")

