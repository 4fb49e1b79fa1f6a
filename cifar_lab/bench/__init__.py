"""Benchmarks that time the project's path and a reference path in the same run and report the ratio.

Each module has a `run(...)` function that measures and returns a plain dict; `cifar-lab bench KIND` (the
command-line layer) parses the options, calls it, prints the result and writes the JSON report. While a
benchmark runs it shows a progress bar on a terminal (`progress`), and nothing in a pipe or a log file.
"""
from __future__ import annotations

import sys

from ..errors import UsageError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def check_model_and_precision(model: str, precision: str) -> None:
    """The checks every model benchmark makes on its model name and precision, as one-line errors."""
    from .. import models

    if model not in models.names():
        raise UsageError(f"unknown model '{model}'; choose one of: {', '.join(models.names())}")
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision '{precision}'; choose one of: {', '.join(PRECISIONS)}")


def progress(total=None, desc: str = "", unit: str = "it", enabled: bool = True):
    """A tqdm bar on stderr when stderr is a terminal; disabled (silent) in a pipe or a redirected log, where
    the carriage returns of a bar would only fill the file. The bar is cleared when it closes, so the result
    lines printed afterwards stand alone."""
    from tqdm import tqdm  # plain bars: tqdm.auto would ask for ipywidgets inside Jupyter

    stream = sys.stderr
    return tqdm(total=total, desc=desc, unit=unit, leave=False, file=stream, dynamic_ncols=True,
                disable=not (enabled and stream.isatty()))
