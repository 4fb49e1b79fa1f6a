"""Measurements the reproduction tables compare with published figures: latency, file size, pass/fail rows.

`batch1_latency` times single-image inference the way the seed documents quote it (fp32, batch 1, eval mode,
median over many calls after a warm-up); `weights_file_size` writes a weights-only file and returns its size
(what "checkpoint size" means in the seeds, as opposed to the full training checkpoint with optimizer
state); `reproduction_table` lays measured values next to the expected ranges with an honest status.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from .io import atomic_write


@torch.inference_mode()
def batch1_latency(model: torch.nn.Module, device, input_size: int = 32, channels: int = 3, warmup: int = 10,
                   repeats: int = 50) -> dict:
    """Median and 90th-percentile milliseconds of one fp32 forward pass on a single image."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    image = torch.randn(1, channels, input_size, input_size, device=device)
    timings = []
    for index in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        model(image)
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # the call only queues the kernels; wait for them
        if index >= warmup:
            timings.append(1000 * (time.perf_counter() - start))
    model.train(was_training)
    timings.sort()
    return {"median_ms": statistics.median(timings), "p90_ms": timings[int(0.9 * (len(timings) - 1))],
            "repeats": repeats, "device": str(device), "threads": torch.get_num_threads()}


def weights_file_size(model: torch.nn.Module, path) -> int:
    """Write the weights-only file (atomically) and return its size in bytes."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(path, lambda handle: torch.save(state, handle))
    return Path(path).stat().st_size


@dataclass
class Expectation:
    metric: str
    expected: str                 # the published range, as text
    passes: Optional[Callable[[float], bool]]    # measured value -> bool (the success criterion), or None
    criterion: str
    unit: str = ""


def reproduction_table(rows: list[tuple]):
    """A DataFrame indexed by metric: expected, criterion, measured, how it was measured, status.

    Each row is (expectation, measured value or None, how it was measured, comparable). A row that is not
    comparable (a smoke run on synthetic data, other hardware) says so instead of claiming a pass or a failure.
    """
    import pandas as pd

    records = []
    for expectation, value, how, comparable in rows:
        if value is None:
            status = "not measured"
        elif not comparable:
            status = "not comparable"
        elif expectation.passes is None:
            status = "see note"
        else:
            status = "pass" if expectation.passes(value) else "FAIL"
        shown = "-" if value is None else f"{value:,.4g} {expectation.unit}".strip()
        records.append({"metric": expectation.metric, "expected": expectation.expected,
                        "criterion": expectation.criterion, "measured": shown, "how": how, "status": status})
    return pd.DataFrame.from_records(records).set_index("metric")
