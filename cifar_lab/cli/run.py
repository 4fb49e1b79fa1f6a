"""Execute one of the book's notebooks (the MyST .md or the .ipynb) top to bottom with new parameters, in the
notebook's own folder. The executed notebook (DIR/NAME.ipynb) and the metrics file the notebook writes
(DIR/metrics.json) are kept in DIR; the notebook's `out_dir` parameter is set to DIR (as an absolute path).
"""
from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

from .parsers import add_notebook_argument, documented_parser

# In a notebook's error message: `--root DIR` in a command it suggests (`cifar-lab data download ... --root DIR`),
# and any path written ./... or ../... (a folder it looked in).
ROOT_OPTION = re.compile(r"(--root\s+)([^\s`'\";,)]+)")
RELATIVE_PATH = re.compile(r"(?<![^\s`'\"(])()(\.\.?/[^\s`'\";,)]*)")


EPILOG = """\
Parameter names must be ones the notebook's `parameters` cell defines; values are read like YAML
scalars (3 -> int, 0.1 -> float, true -> bool, null/None -> None, anything else -> text).
A parameter whose default is a bool, an int or a float (smoke: a bool) only takes a value of that
type; an int is a valid float. The notebook runs in its own folder, so a relative path given as a
parameter (-p data_root ../data) is relative to the notebook's folder, not to this one.

examples:
  cifar-lab run notebooks/01_cifar10_data.md --out runs/01 -p smoke true
  cifar-lab run notebooks/02_cifar10_resnet18.md --out runs/r18-30ep -p smoke false -p epochs 30
  CIFAR_LAB_SMOKE=1 cifar-lab run notebooks/02_cifar10_resnet18.ipynb --out runs/smoke
"""


def register(sub) -> None:
    parser = documented_parser(
        sub, "run", "execute a notebook with papermill (new parameters, results kept in --out)",
        __doc__, EPILOG)
    add_notebook_argument(parser)
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder for the executed notebook and metrics.json (created)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        dest="parameters", help="set a notebook parameter; repeat for more")
    parser.add_argument("--timeout", type=int, default=None, metavar="SECONDS",
                        help="fail a cell that runs longer than this (default: no limit)")
    parser.add_argument("--log-output", action="store_true", help="stream the cells' output to the terminal")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..errors import UsageError
    from ..book.runner import run_notebook

    names = [name for name, _ in args.parameters]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise UsageError(f"parameter {', '.join(duplicated)} given more than once")
    try:
        result = run_notebook(args.notebook, args.out, args.parameters, progress_bar=sys.stderr.isatty(),
                              log_output=args.log_output, timeout=args.timeout)
    except UsageError as exc:
        raise type(exc)(paths_from_here(str(exc), args.notebook)) from None
    print(f"executed notebook: {result.notebook}")
    if result.metrics is not None:
        print(f"metrics: {result.metrics}")
    else:
        print(f"note: the notebook wrote no metrics.json into {args.out}")
    return 0


def paths_from_here(message: str, notebook) -> str:
    """A notebook runs in its own folder, so a relative path in its error message is relative to that folder
    ("../data" from notebooks/), and wrong where this command was typed: `--root DIR` and the paths written
    ./... or ../... are said again from here, relative to the current folder when they lie inside it, else
    absolute."""
    folder = Path(notebook).resolve().parent
    here = Path.cwd()

    def from_here(match: re.Match) -> str:
        text = match.group(2)
        stop = text.rstrip(".")  # the full stop of a sentence is not part of the path
        path, tail = Path(stop), text[len(stop):]
        if path.is_absolute():
            return match.group(0)
        target = Path(os.path.normpath(folder / path))
        shown = target.relative_to(here) if target.is_relative_to(here) else target
        return match.group(1) + shlex.quote(str(shown)) + tail

    return RELATIVE_PATH.sub(from_here, ROOT_OPTION.sub(from_here, message))
