"""`cifar-lab bench KIND`: the project's path against the reference path, measured in the same run."""
from __future__ import annotations

import importlib

from ..bench import BENCH_MODULES


def register(sub) -> None:
    parser = sub.add_parser("bench", help="benchmark our path against the plain reference path",
                            description="Each benchmark times the project's path and the reference path in the "
                                        "same run (alternating, median of repeats) and reports the ratio.")
    bench_sub = parser.add_subparsers(dest="bench_command", metavar="KIND", parser_class=type(parser))
    bench_sub.required = True
    for name in BENCH_MODULES:
        importlib.import_module(f"...bench.{name}", __name__).register(bench_sub)
