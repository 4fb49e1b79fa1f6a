"""The command line's help: it answers without loading PyTorch, every option explains itself and shows its
default, required options read as required, Fashion-MNIST is named where a user looks for data, and the
scripts answer --help without doing anything."""
import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cifar_lab.cli import build_parser
from cifar_lab.cli.parsers import shows_default
from cifar_lab.errors import TrainingDiverged, UsageError

ROOT = Path(__file__).resolve().parents[1]

# Builds the parser and prints every help page in a fresh interpreter, then names the heavy modules that got
# imported, and for torch the chain of cifar_lab modules that imported it.
HELP_WITHOUT_HEAVY_IMPORTS = """
import argparse, contextlib, io, sys, traceback

importers = []

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not importers:
            files = [frame.filename.split("cifar_lab/")[-1] for frame in traceback.extract_stack()
                     if "cifar_lab/" in frame.filename]
            importers.append(" -> ".join(dict.fromkeys(files)))
        return None

sys.meta_path.insert(0, Watch())
from cifar_lab.cli import build_parser

def parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from parsers(child)

parser = build_parser()
with contextlib.redirect_stdout(io.StringIO()):
    for each in parsers(parser):
        each.print_help()
    try:
        parser.parse_args(["--help"])
    except SystemExit:
        pass
heavy = [name for name in ("torch", "torchvision", "numpy", "pandas", "matplotlib", "scipy", "papermill")
         if name in sys.modules]
print("heavy:", " ".join(heavy))
print("torch imported through:", importers[0] if importers else "-")
"""


def all_parsers(parser, path=("cifar-lab",)):
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from all_parsers(child, (*path, name))


def options(parser):
    return [action for action in parser._actions
            if action.option_strings and not isinstance(action, argparse._HelpAction)]


def test_building_the_parser_and_printing_every_help_imports_no_torch():
    """Mutant caught: a subcommand module that imports the library (cifar_lab.models, .presets, .data, ...) at
    its top again, so `cifar-lab --help` waits for PyTorch to load."""
    done = subprocess.run([sys.executable, "-c", HELP_WITHOUT_HEAVY_IMPORTS], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "heavy: \n" in done.stdout, done.stdout


def test_every_option_has_help_and_shows_its_default():
    """Mutants caught: an option added without help (as `data synthetic --train-size` was), and a formatter that
    no longer appends the default (argparse's plain HelpFormatter), so `--repeats` hides its 3."""
    checked = 0
    for where, parser in all_parsers(build_parser()):
        formatter = parser._get_formatter()
        for action in options(parser):
            name = f"{where} {action.option_strings[-1]}"
            assert action.help and action.help != argparse.SUPPRESS, f"{name} has no help"
            shown = formatter._expand_help(action)
            assert shown.strip(), f"{name} has empty help"
            if shows_default(action):
                spellings = {str(action.default)}
                if isinstance(action.default, float):
                    spellings.add(f"{action.default:g}")
                assert "default" in shown and any(s in shown for s in spellings), \
                    f"{name}: the help does not show the default {action.default!r}: {shown!r}"
            checked += 1
    assert checked > 100  # every subcommand was walked, nested ones (data ..., bench ...) included


def test_a_default_is_printed_once():
    """Mutant caught: the formatter appending "(default: ...)" to a help text that already names its default in
    its own words (`--device`: "default auto: CUDA, then ..."), so the page says it twice."""
    device = next(action for action in options(dict(all_parsers(build_parser()))["cifar-lab latency"])
                  if "--device" in action.option_strings)
    for where, parser in all_parsers(build_parser()):
        formatter = parser._get_formatter()
        for action in options(parser):
            shown = formatter._expand_help(action)
            assert shown.count("default") <= 1, f"{where} {action.option_strings[-1]}: {shown!r}"
            if action is device:
                assert shown.count("default") == 1 and "auto" in shown


def test_required_options_read_as_required():
    """Mutants caught: `reproduce --scale` optional again (shown in brackets, checked only in the handler), and
    the "(required)" note dropped from required options' help."""
    parsers = dict(all_parsers(build_parser()))
    usage = " ".join(parsers["cifar-lab reproduce"].format_usage().split())
    assert "(--scale {smoke,cpu,full} | --report)" in usage and "[--scale" not in usage
    for where, parser in parsers.items():
        usage = " ".join(parser.format_usage().split())
        formatter = parser._get_formatter()
        for action in options(parser):
            if action.required:
                flag = action.option_strings[-1]
                assert f"[{flag}" not in usage, f"{where}: {flag} is required but shown in brackets"
                assert "(required)" in formatter._expand_help(action), f"{where} {flag}"


def test_reproduce_without_a_scale_is_one_line_exit_2(capsys, tmp_path):
    """Mutant caught: --scale optional again, so a missing scale is found only after the run started."""
    from cifar_lab.cli import main

    assert main(["reproduce", "--out", str(tmp_path / "R")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--scale" in err[0] and "--report" in err[0], err
    assert not (tmp_path / "R").exists()


def test_top_level_and_data_help_name_fashion_mnist():
    """Mutant caught: the top-level and `data` help speaking of CIFAR only, so a user never learns that the
    real dataset at CPU scale is Fashion-MNIST or how to get it."""
    parsers = dict(all_parsers(build_parser()))
    assert "Fashion-MNIST" in parsers["cifar-lab"].format_help()
    assert "Fashion-MNIST" in parsers["cifar-lab data"].format_help()
    assert "fashion-mnist" in parsers["cifar-lab data download"].format_help()
    bench_data = next(action for action in options(parsers["cifar-lab bench data"])
                      if "--dataset" in action.option_strings)
    assert "fashion_mnist" in bench_data.choices


def test_train_help_documents_the_exit_statuses_the_code_returns():
    """Mutant caught: the exit statuses documented nowhere but errors.py, or documented with numbers the code
    does not return (a diverged run is `TrainingDiverged.exit_code`, bad input `UsageError.exit_code`)."""
    page = dict(all_parsers(build_parser()))["cifar-lab train"].format_help()
    documented = dict(re.findall(r"^  (\d+)\s+(.+)$", page.split("exit status:")[1], re.MULTILINE))
    assert set(documented) == {"0", "1", "2", "130"}, documented
    assert "diverged" in documented[str(TrainingDiverged.exit_code)]
    assert "bad input" in documented[str(UsageError.exit_code)]
    assert "interrupted" in documented["130"]


@pytest.mark.parametrize("script", ["setup.sh", "book.sh", "test.sh"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_scripts_answer_help_with_a_usage_text_and_do_nothing(tmp_path, script, flag):
    """Mutants caught: `book.sh --help` printing lines of its own code (a `sed` over the header that no longer
    matches it), and `setup.sh --help` (or `test.sh --help`) running the set-up: with a fresh environment folder
    and an interpreter that cannot build it, any set-up step leaves a trace or fails."""
    venv = tmp_path / "venv"
    env = {**os.environ, "CIFAR_LAB_VENV": str(venv), "PYTHON": "/bin/false"}
    done = subprocess.run(["bash", str(ROOT / "scripts" / script), flag], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: scripts/{script}"), done.stdout
    assert "-h, --help" in done.stdout and done.stderr == ""
    for code in ("set -euo", "repo=", "$venv", "fi\n", "esac"):
        assert code not in done.stdout, f"{script} {flag} printed its own code: {code!r}"
    assert not venv.exists() and list(tmp_path.iterdir()) == []
