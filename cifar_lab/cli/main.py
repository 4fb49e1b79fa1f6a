"""`cifar-lab` (also `python -m cifar_lab`): data, train, eval, notebook runs, sweeps, reproduction, benchmarks.

This package is the command-line layer and nothing else: each subcommand lives in its own module here with
a `register(subparsers)` function that declares its arguments, and a handler that calls the library and
prints. Nothing outside this package imports from it. Every user error is one line on stderr and exit code 2.

Building the parser imports no PyTorch: the handlers import the library when they run, so `cifar-lab --help`
and a mistyped option answer at once.
"""
from __future__ import annotations

import argparse
import sys

from ..errors import UsageError
from . import bench, data, demo, edition, eval, export, latency, predict, reproduce, run, summary, sweep, train
from .parsers import DefaultsHelpFormatter

# In the order `--help` lists them.
COMMANDS = [data, train, eval, bench, run, sweep, reproduce, edition, summary, latency, predict, export, demo]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line that points at --help, and every option's help shows its
    default (`parsers.DefaultsHelpFormatter`) unless a subcommand chooses another formatter."""

    def __init__(self, *args, formatter_class=DefaultsHelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message: str):  # noqa: D401 (argparse API)
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="cifar-lab",
        description="Train and benchmark image classifiers (Fashion-MNIST, CIFAR-10/100, ImageNet) the way the "
                    "cifar-lab book does. Every command prints what it does; `cifar-lab COMMAND --help` explains "
                    "each one.",
        epilog="Fashion-MNIST is the real dataset at CPU scale: `cifar-lab data download fashion-mnist` gets it, "
               "`cifar-lab train --list` shows its presets (fmnist-*).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit status (0 ok, 1 a diverged training run or a failed chapter or point,
    2 bad input, 130 interrupted), including argparse's own (0 after --help, 2 for a usage error)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the help or the one-line usage error
        return 0 if exc.code is None else int(exc.code)
    try:
        result = args.func(args)
    except UsageError as exc:
        print(f"cifar-lab {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a path the library did not anticipate: still one line, naming it
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"cifar-lab {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cifar-lab {args.command}: interrupted (files on disk are complete: they are written atomically)",
              file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
