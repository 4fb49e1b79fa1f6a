"""Parser pieces that several subcommands share."""
from __future__ import annotations

import argparse


def documented_parser(sub, name: str, help: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """A subcommand whose description (its module's docstring) and epilog (examples) keep their line breaks."""
    return sub.add_parser(name, help=help, formatter_class=argparse.RawDescriptionHelpFormatter,
                          description=description, epilog=epilog)


def add_notebook_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", metavar="NOTEBOOK", help="path to notebooks/NN_topic.md or .ipynb")


def add_checkpoint_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="best.pt or last.pt of a run")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                        help="where to run (default auto: CUDA, then Apple's MPS, then the CPU)")
