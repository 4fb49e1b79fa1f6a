"""Benchmarks that time the project's path and a reference path in the same run and report the ratio.

Each module has a `run(...)` function that measures and returns a plain dict; `cifar-lab bench KIND` (the
command-line layer) parses the options, calls it, prints the result and writes the JSON report.
"""
from __future__ import annotations

from ..errors import UsageError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def check_model_and_precision(model: str, precision: str) -> None:
    """The checks every model benchmark makes on its model name and precision, as one-line errors."""
    from .. import models

    if model not in models.names():
        raise UsageError(f"unknown model '{model}'; choose one of: {', '.join(models.names())}")
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}")
