"""The README's tour as a newcomer meets it: every command of its CPU block runs, in order, in a fresh folder.

The tour's command blocks are read from the README itself. A block whose lead-in paragraph starts with
`NEEDS` ("**Needs CIFAR-10") is not run; every other one is, line by line, as written, with one change that
the README states: a command that trains a preset (`train --preset`, `bench time-to-accuracy`) gets `TOUR_SET`
(`train_subset=1000 test_subset=500`) added to its `--set`, so that the block runs in minutes. The commands run
through this interpreter (`python -m cifar_lab`, which is what `cifar-lab` calls), without the test session's
smoke-mode variables, as in a new user's shell.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from cifar_lab import presets
from cifar_lab.data import fashion_mnist

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TOUR = "## A short tour"
NEEDS = "**Needs CIFAR-10"
TOUR_SET = ["train_subset=1000", "test_subset=500"]
# The variables conftest.py sets for the test session (smoke mode, a shared data folder): a user's shell has
# neither, and with CIFAR_LAB_SMOKE=1 the notebooks would ignore what the tour asks of them.
SESSION_VARIABLES = ("CIFAR_LAB_SMOKE", "CIFAR_LAB_DATA")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def section(text: str, heading: str) -> str:
    """The text of a `## ` section, up to the next one."""
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def tour_blocks(text: str) -> list[tuple[str, str, list[str]]]:
    """(lead-in paragraph, language, command lines) of each fenced block of the tour."""
    body = section(text, TOUR)
    blocks = []
    for match in FENCE.finditer(body):
        lead = body[:match.start()].rstrip("\n").split("\n\n")[-1]
        lines = [line for line in match.group(2).splitlines() if line.strip()]
        blocks.append((lead, match.group(1), lines))
    return blocks


def laptop_commands(text: str) -> list[list[str]]:
    """The argv of every command the CPU blocks hold, comments dropped, in order."""
    return [shlex.split(line, comments=True) for lead, language, lines in tour_blocks(text)
            if language == "bash" and not lead.startswith(NEEDS) for line in lines]


def with_tour_set(argv: list[str]) -> list[str]:
    """`argv` with `TOUR_SET` after its own `--set` items when it trains a preset (later items win)."""
    trains = (argv[1:2] == ["train"] and "--preset" in argv) or argv[1:3] == ["bench", "time-to-accuracy"]
    if not trains:
        return argv
    if "--set" not in argv:
        return argv + ["--set", *TOUR_SET]
    end = argv.index("--set") + 1
    while end < len(argv) and not argv[end].startswith("--"):
        end += 1
    return argv[:end] + TOUR_SET + argv[end:]


def needs_real_cifar_or_imagenet(argv: list[str]) -> bool:
    """Whether a command reads CIFAR or ImageNet: their download, or one of their presets without
    `dataset=synthetic`."""
    if argv[1:3] == ["data", "download"]:
        return argv[3].startswith("cifar")
    preset = argv[argv.index("--preset") + 1] if "--preset" in argv else ""
    return preset.startswith(("cifar", "imagenet")) and "dataset=synthetic" not in argv


def write_photo(path: Path) -> None:
    """A garment as a user photographs it: a Fashion-MNIST test image, dark on a light background, 300 px
    wide with a margin, as a JPEG."""
    images, _ = fashion_mnist.read_split(Path(fashion_mnist.DEBIAN_DIR), train=False)
    garment = Image.fromarray((255 - images[0]).numpy()).resize((240, 240), Image.BILINEAR)
    photo = Image.new("L", (300, 300), 255)
    photo.paste(garment, (30, 30))
    photo.convert("RGB").save(path, quality=90)


def test_the_tour_splits_into_a_laptop_block_and_a_marked_one():
    """Every block of the tour is a bash block, the laptop one holds only `cifar-lab` commands, and the block
    this test leaves out is the marked one. Mutant caught: a CIFAR-only command (`data download cifar10`)
    moved into the laptop block, or the marked block's lead-in dropped (its CIFAR commands would then run)."""
    blocks = tour_blocks(README.read_text())
    assert [language for _, language, _ in blocks] == ["bash"] * len(blocks)
    skipped = [lines for lead, _, lines in blocks if lead.startswith(NEEDS)]
    assert len(skipped) == 1 and any("cifar10" in line for line in skipped[0])
    commands = laptop_commands(README.read_text())
    assert len(commands) >= 20
    assert all(argv[0] == "cifar-lab" for argv in commands), [argv for argv in commands if argv[0] != "cifar-lab"]
    cifar_only = [argv for argv in commands if needs_real_cifar_or_imagenet(argv)]
    assert cifar_only == []


def test_the_tour_shows_every_real_data_preset():
    """Each Fashion-MNIST preset (`cifar-lab train --list`) appears in the tour, runnable or marked. Mutant
    caught: the MLP or the distillation preset left out of the tour (what a newcomer reported)."""
    tour = section(README.read_text(), TOUR)
    real_data = [name for name in presets.names() if name.startswith("fmnist-")]
    assert len(real_data) >= 5
    assert [name for name in real_data if f"--preset {name} " not in tour] == []


def test_tour_set_goes_after_the_commands_own_items():
    """The test's one change to a command: its own `--set` items stay, `TOUR_SET` follows them, and commands
    that do not train a preset are left alone. Mutant caught: `TOUR_SET` put before the command's items (its
    own `epochs=2` would then be overridden) or added to `--resume-from`, which refuses `--set`."""
    argv = shlex.split("cifar-lab train --preset p --set epochs=2 classes=0-4 --out runs/x")
    assert with_tour_set(argv) == ["cifar-lab", "train", "--preset", "p", "--set", "epochs=2", "classes=0-4",
                                   *TOUR_SET, "--out", "runs/x"]
    assert with_tour_set(["cifar-lab", "train", "--preset", "p"]) == ["cifar-lab", "train", "--preset", "p",
                                                                     "--set", *TOUR_SET]
    resume = ["cifar-lab", "train", "--resume-from", "runs/fm/epoch_001.pt", "--out", "runs/b"]
    assert with_tour_set(resume) == resume


def test_the_layout_table_names_files_that_exist():
    """Every file and folder the README's Layout table names for `cifar_lab/` exists there. Mutant caught: the
    table still naming `runner.py` and `reproduce.py` at the package's top after the book layer moved to
    `cifar_lab/book/`."""
    row = next(line for line in README.read_text().splitlines() if line.startswith("| `cifar_lab/` |"))
    named = [name for name in re.findall(r"`([^`]+)`", row.split("|")[2]) if name.endswith((".py", "/"))]
    assert len(named) >= 10
    package = ROOT / "cifar_lab"
    assert [name for name in named if not (package / name).exists()] == []


def test_every_laptop_command_of_the_tour_runs(tmp_path):
    """Run the laptop block in order in a fresh folder (with `notebooks/` copied, for `run` and `sweep`, and
    a photo of a garment); each command must exit 0. Mutant caught: any tour command that fails on a CPU
    without CIFAR - `sweep` on the 03b notebook without `-p smoke true` (all four points fail with no
    CIFAR-10), `bench data` without `--dataset fashion_mnist` support, `predict` refusing an `.onnx` file."""
    if not fashion_mnist.has_files(Path(fashion_mnist.DEBIAN_DIR)):
        pytest.fail(f"the tour trains on Fashion-MNIST: apt-get install -y {fashion_mnist.APT_PACKAGE} (as root)")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("*.ipynb"))
    write_photo(tmp_path / "photo.jpg")
    env = {key: value for key, value in os.environ.items() if key not in SESSION_VARIABLES}
    env["PYTHONPATH"] = str(ROOT)
    failed = []
    for argv in laptop_commands(README.read_text()):
        argv = with_tour_set(argv)
        done = subprocess.run([sys.executable, "-m", "cifar_lab", *argv[1:]], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)
        if done.returncode != 0:  # go on: one run names every command that fails
            failed.append(f"`{shlex.join(argv)}` exited {done.returncode}:\n{done.stdout[-1500:]}\n"
                          f"{done.stderr[-2500:]}")
    assert failed == [], "\n\n".join(failed)
    # the runs the later commands built on are there
    assert (tmp_path / "runs" / "fm" / "epoch_001.pt").is_file()
    assert (tmp_path / "fm.onnx").is_file()
    assert (tmp_path / "runs" / "sweep" / "results.csv").is_file()
    assert torch.load(tmp_path / "runs" / "ft" / "last.pt", map_location="cpu", weights_only=False)["config"][
        "init_from"].endswith("runs/fm04/last.pt")
