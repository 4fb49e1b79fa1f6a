"""Timing helpers shared by the benchmarks: warm-up, device sync, interleaved repeats, a report line."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

from ..errors import UsageError


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], int], device) -> float:
    """Run `fn` (which returns how many images it processed) and return images per second."""
    sync(device)
    start = time.perf_counter()
    images = fn()
    sync(device)
    return images / (time.perf_counter() - start)


def interleaved(ours: Callable[[], int], reference: Callable[[], int], device, repeats: int = 3) -> dict:
    """Alternate the two paths `repeats` times (so drift in machine load hits both) and keep the medians."""
    ours_runs, ref_runs = [], []
    for _ in range(repeats):
        ref_runs.append(timed(reference, device))
        ours_runs.append(timed(ours, device))
    ours_img_s, ref_img_s = statistics.median(ours_runs), statistics.median(ref_runs)
    return {"ours_img_s": ours_img_s, "reference_img_s": ref_img_s, "ratio": ours_img_s / ref_img_s,
            "ours_runs": ours_runs, "reference_runs": ref_runs, "repeats": repeats}


def report_line(title: str, result: dict) -> str:
    return (f"{title}: ours {result['ours_img_s']:,.0f} img/s, reference {result['reference_img_s']:,.0f} img/s, "
            f"ratio {result['ratio']:.2f}x")


def check_model_and_precision(args) -> None:
    """The checks every model benchmark makes on `--model` and `--precision`, as one-line errors."""
    from .. import models

    if args.model not in models.names():
        raise UsageError(f"unknown model '{args.model}'; choose one of: {', '.join(models.names())}")
    if args.precision not in ("auto", "fp32", "bf16", "fp16"):
        raise UsageError(f"unknown precision '{args.precision}'; choose one of: auto, fp32, bf16, fp16")


def add_run_arguments(parser, precision_help: str = "auto, fp32, bf16 or fp16") -> None:
    """The options every model benchmark takes: precision, device, data folder, JSON report."""
    parser.add_argument("--precision", default="auto", help=precision_help)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--json", help="write the result as JSON")
