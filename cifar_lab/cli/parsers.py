"""Parser pieces that several subcommands share: the help formatters and the common options.

Nothing here imports PyTorch: building the whole parser (what `cifar-lab --help` does) stays quick, and a
subcommand loads the library only when it runs.
"""
from __future__ import annotations

import argparse


def shows_default(action: argparse.Action) -> bool:
    """Whether an option's default is worth printing: not for flags (False), unset values (None) or empty lists."""
    default = action.default
    if default is None or default is False or default is argparse.SUPPRESS:
        return False
    return not (isinstance(default, (list, tuple)) and not default)


def mentions_default(help_text: str, default) -> bool:
    """Whether a help text already names its default (some say it in their own words, e.g. "(default 10)")."""
    if "%(default)" in help_text:
        return True
    spellings = {str(default)} | ({f"{default:g}"} if isinstance(default, float) else set())
    return "default" in help_text and any(spelling in help_text for spelling in spellings)


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, plus: every option's help ends with its default (like argparse's
    `ArgumentDefaultsHelpFormatter`, but not for flags or unset values, and not twice where the text already
    names it), and a required option says "(required)" in its help as well as in the usage line."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if action.option_strings and action.required:
            return f"{help_text} (required)"
        if action.option_strings and shows_default(action) and not mentions_default(help_text, action.default):
            return f"{help_text} (default: %(default)s)"
        return help_text


class DocumentedHelpFormatter(DefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The same, keeping the line breaks of a description and an epilog written as paragraphs and examples."""


def documented_parser(sub, name: str, help: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """A subcommand whose description (its module's docstring) and epilog (examples) keep their line breaks."""
    return sub.add_parser(name, help=help, formatter_class=DocumentedHelpFormatter, description=description,
                          epilog=epilog)


def add_notebook_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebook", metavar="NOTEBOOK", help="path to notebooks/NN_topic.md or .ipynb")


def add_checkpoint_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="best.pt or last.pt of a run")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                        help="where to run (default auto: CUDA, then Apple's MPS, then the CPU)")


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="FILE", help="also write the result as JSON to FILE")
