"""Small helpers the notebooks share: the smoke switch, the results file, tidy tables, and the one way a page
shows measured records.

A chapter shows records (`record.RecordSet`: measured by this run, or a committed record) only through `show`
and `glue_record`: `show` prints one line naming the records file, their content hash (`record.digest`) and their
origin ("measured by this run ..." or "the committed record of commit X (date)"), then displays what `rendered`
makes of them; `glue_record` glues a number or a sentence made from them into the prose (myst-nb's glue). Both
attach `RECORD_METADATA` to the output (the file, the labels, the hash, the kind of rendering and its
arguments), so that every number a page prints from a record can be recomputed from that record and compared
(tests/test_edition_consistency.py does this for the committed edition).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable

from ..io import atomic_write_text
from .record import RecordSet

RECORD_METADATA = "cifar_lab/records"


def smoke_default() -> bool:
    """Smoke mode (synthetic data, CPU-sized work) when CIFAR_LAB_SMOKE=1; the real experiment otherwise."""
    return os.environ.get("CIFAR_LAB_SMOKE", "0").strip().lower() in ("1", "true", "yes")


def tidy(table, digits: int = 3, missing: str = "—"):
    """A table as the book shows it: numbers rounded to `digits`, the index's name in the header's corner
    instead of on a second, otherwise empty header row, and missing cells shown as `missing` (the text next to
    the table says what a missing cell means)."""
    shown = table.round(digits)
    if shown.index.nlevels == 1 and shown.index.name is not None and shown.columns.name is None:
        shown = shown.rename_axis(index=None, columns=shown.index.name)
    if shown.isna().to_numpy().any():
        shown = shown.astype(object).where(shown.notna(), missing)
    return shown


def save_metrics(out_dir, payload: dict, name: str = "metrics.json") -> Path:
    """Write a notebook's results as JSON into its output folder (what papermill runs keep)."""
    path = Path(out_dir) / name
    atomic_write_text(path, json.dumps(payload, indent=2, default=_plain) + "\n")
    return path


def images_per_class(labels) -> str:
    """How many images each class holds, as a page says it: "6,000" when every class holds the same number,
    else the range ("5,990 to 6,010")."""
    import torch

    counts = torch.bincount(torch.as_tensor(labels))
    low, high = int(counts.min()), int(counts.max())
    return f"{low:,}" if low == high else f"{low:,} to {high:,}"


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


# --- records on a page ---------------------------------------------------------------------------------------

STATISTICS: dict[str, Callable] = {   # what `value` reads of one record
    "mean": lambda r: r.summary.mean,
    "std": lambda r: r.summary.std if r.summary.std is not None else math.nan,
    "seeds": lambda r: r.n,
    "fewest epochs": lambda r: r.fewest_epochs,
    "recipe epochs": lambda r: r.recipe_epochs,
    "train images": lambda r: r.train_images,
    "test images": lambda r: r.test_images,
    "sum": lambda r: sum(r.values),
}


def value(shown: RecordSet, label: str, measured: str, statistic: str = "mean", scale: float = 1.0):
    """One number of one record: its `statistic` (`STATISTICS`), times `scale` for the floats."""
    found = STATISTICS[statistic](shown.get(label, measured))
    return float(found) * scale if isinstance(found, float) else found


def extreme(shown: RecordSet, measured: str, statistic: str = "mean", largest: bool = True) -> str:
    """The label whose record of `measured` has the largest (or smallest) `statistic`."""
    scored = {label: STATISTICS[statistic](shown.get(label, measured)) for label in shown.labels}
    return (max if largest else min)(scored, key=scored.get)


def detail(shown: RecordSet, label: str, measured: str, key: str):
    """A detail of one record (`Record.details[key]`: the batch per process, the preset, ...)."""
    return shown.get(label, measured).details[key]


def curve_point(shown: RecordSet, label: str, seed_index: int, epoch_index: int, key: str,
                scale: float = 1.0) -> float:
    """One number of a learning curve the records keep in their extras: `key` ("test_acc", ...) of the epoch at
    `epoch_index` of the seed at `seed_index`, times `scale`."""
    return float(shown.extras[label]["runs"][seed_index]["history"][epoch_index][key]) * scale


def _sentences(lines: list[str]):
    from IPython.display import Markdown

    return Markdown("\n".join(f"- {line}" for line in lines))


def _column(pairs: list, name: str):
    """[[row, number], ...] as a one-column frame (lists, not dicts: a notebook's JSON sorts keys, so only a
    list keeps its order)."""
    import pandas as pd

    return pd.DataFrame({name: [number for _, number in pairs]}, index=[row for row, _ in pairs])


def table(shown: RecordSet, rows: list):
    """A table of numbers of the records: `rows` is [[row name, [[column, [label, measured, statistic, scale]],
    ...]], ...] (lists keep their order through a notebook's JSON); cells a row leaves out are missing."""
    import pandas as pd

    found = pd.DataFrame.from_dict({name: {column: value(shown, *cell) for column, cell in columns}
                                    for name, columns in rows}, orient="index")
    columns = list(dict.fromkeys(column for _, columns in rows for column, _ in columns))
    return tidy(found[columns], digits=4)


def _renderers() -> dict[str, Callable[..., Any]]:
    from . import ast_comparison, real_data, real_data_tables, selection_curves

    return {
        "summary": lambda shown: tidy(real_data.summary_table(shown)),
        "versus": lambda shown, ours, other, measured: real_data.versus_sentence(shown, ours, other, measured),
        "comparison": lambda shown, ours, other, measured: _sentences(
            [real_data.versus_sentence(shown, ours, other, measured)]),
        "value": value,
        "extreme": extreme,
        "curve point": curve_point,
        "detail": detail,
        "fine and superclass": lambda shown: tidy(real_data_tables.fine_and_superclass(shown), digits=4),
        "accuracy and latency": lambda shown, params_m, p50_ms: tidy(real_data_tables.accuracy_and_latency(
            shown, _column(params_m, "M params"), _column(p50_ms, "p50_ms")), digits=4),
        "AST spread": lambda shown, ending="": tidy(
            ast_comparison.readable(ast_comparison.spread_table(shown, ending))),
        "AST answers": lambda shown, ending="": _sentences(ast_comparison.answer_sentences(shown, ending)),
        "table": table,
        "selection levels": lambda shown: tidy(selection_curves.level_table(shown), digits=4),
        "selection answers": lambda shown: tidy(selection_curves.answers_table(shown), digits=4),
        "selection answer": lambda shown, ours, other, level=None: selection_curves.answer_sentence(
            shown, ours, other, level),
        "class mix": lambda shown, class_names: tidy(selection_curves.class_mix_table(shown, class_names),
                                                     digits=1),
    }


def rendered(shown: RecordSet, kind: str, **arguments):
    """What `show` displays (or `glue_record` glues) for `shown`: `kind` names the rendering, `arguments` are
    plain JSON values. The same call on the same records gives the same output."""
    renderers = _renderers()
    if kind not in renderers:
        raise ValueError(f"unknown rendering {kind!r}; one of {', '.join(renderers)}")
    return renderers[kind](shown, **arguments)


def _metadata(shown: RecordSet, kind: str, arguments: dict) -> dict:
    return {RECORD_METADATA: {"file": shown.path, "source": shown.source, "labels": shown.labels,
                              "records": [[r.label, r.measured] for r in shown.records],
                              "digest": shown.digest, "kind": kind, "arguments": arguments}}


def show(shown: RecordSet, kind: str = "summary", caption: bool = True, **arguments):
    """Print the records' caption (`RecordSet.caption`: file, hash, origin), then display `rendered(shown,
    kind, **arguments)` with `RECORD_METADATA`. Returns the displayed object."""
    from IPython.display import display

    found = rendered(shown, kind, **arguments)
    if caption:
        print(shown.caption())
    display(found, metadata=_metadata(shown, kind, arguments))
    return found


def glue_record(name: str, shown: RecordSet, kind: str = "value", **arguments):
    """myst-nb's `glue(name, ..., display=False)` of `rendered(shown, kind, **arguments)`, with
    `RECORD_METADATA` beside the glue's own. Returns the glued value."""
    from IPython.core.formatters import format_display_data
    from IPython.display import display
    from myst_nb.ext.glue import GLUE_PREFIX

    found = rendered(shown, kind, **arguments)
    bundle, metadata = format_display_data(found)
    metadata = {**metadata, **_metadata(shown, kind, arguments), "scrapbook": {"name": name,
                                                                               "mime_prefix": GLUE_PREFIX}}
    display({GLUE_PREFIX + key: data for key, data in bundle.items()}, raw=True, metadata=metadata)
    return found
