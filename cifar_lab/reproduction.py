"""Reproduction tables: measured values next to the published ranges, with an honest status per row.

The measurements themselves (latency, file size, memory) come from `cifar_lab.measure`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional


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
    # The index's name goes into the header's corner, so the table has one header row.
    return pd.DataFrame.from_records(records).set_index("metric").rename_axis(index=None, columns="metric")
