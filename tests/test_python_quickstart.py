"""The README's Python quick start runs as written, and `import cifar_lab` stays light.

The snippet is read from the README's "Python quick start" section and run in a fresh folder by this
interpreter, with matplotlib's Agg backend and one change the README states: `train_subset=1000,
test_subset=500` in place of `train_subset=12800`. `photo.jpg`, the user's own photo, is a Fashion-MNIST test
image photographed dark on white (`test_readme_tour.write_photo`).
"""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cifar_lab
from cifar_lab.data import fashion_mnist

from test_readme_tour import README, ROOT, SESSION_VARIABLES, section, write_photo  # tests/ is on sys.path

QUICK_START = "## Python quick start"
README_SIZE = "train_subset=12800"
TEST_SIZE = "train_subset=1000, test_subset=500"
FIGURES = ("curves.png", "confusion.png", "mistakes.png", "lr.png")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def quick_start_code() -> str:
    """The one python block of the quick start section."""
    blocks = re.findall(r"^```python\n(.*?)^```", section(README.read_text(), QUICK_START), re.M | re.S)
    assert len(blocks) == 1, f"the quick start holds {len(blocks)} python blocks, not one"
    return blocks[0]


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in SESSION_VARIABLES}
    env.update(MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


def test_the_quick_start_is_short_and_uses_only_the_package_api():
    """About ten lines, each call a public function of `cifar_lab` (`cifar_lab.__all__`). Mutant caught: a
    step that reaches into a submodule (`from cifar_lab.plots import ...`) or a name `__all__` does not list."""
    code = quick_start_code()
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 12
    called = {node.func.attr for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Call)
              and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
              and node.func.value.id == "cifar_lab"}
    assert called == {"preset", "train", "plot_curves", "plot_confusion", "plot_mistakes", "lr_range_test",
                      "plot_lr_range_test", "predict"}
    assert called <= set(cifar_lab.__all__)
    imports = [node for node in ast.walk(ast.parse(code)) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert [ast.unparse(node) for node in imports] == ["import cifar_lab"]


def test_every_public_name_is_the_library_function_it_names():
    """`cifar_lab.X` is the library's own function, not a copy. Mutant caught: the lazy table mapping a name to
    the wrong function (`plot_confusion` to `plots.per_class_accuracy`) or to a misspelt one."""
    from cifar_lab import engine, lr_finder, plots

    assert cifar_lab.train is engine.train
    assert cifar_lab.plot_curves is plots.training_curves
    assert cifar_lab.plot_confusion is plots.run_confusion_matrix
    assert cifar_lab.plot_mistakes is plots.run_mistakes
    assert cifar_lab.lr_range_test is lr_finder.range_test
    assert cifar_lab.plot_lr_range_test is plots.lr_range_test
    assert all(callable(getattr(cifar_lab, name)) for name in cifar_lab.__all__)
    with pytest.raises(AttributeError, match="no attribute 'plot_everything'"):
        cifar_lab.plot_everything


def test_importing_the_package_loads_neither_torch_nor_matplotlib(tmp_path):
    """`import cifar_lab` (which every `cifar-lab` command runs first) imports no heavy library; the public
    names load on first use. Mutant caught: `from .engine.trainer import train` at the top of `__init__.py`."""
    done = run_python("import sys, cifar_lab; print(sorted(m for m in ('torch', 'matplotlib', 'pandas') "
                      "if m in sys.modules))", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_preset_refuses_an_unknown_field_in_one_line():
    """A misspelt field is a UsageError naming it. Mutant caught: `preset` dropping keyword overrides it does
    not know, so a typo (`epoch=2`) would silently train the preset's 15 epochs."""
    from cifar_lab.errors import UsageError

    with pytest.raises(UsageError, match="epoch"):
        cifar_lab.preset("fmnist-simplecnn", epoch=2)
    assert cifar_lab.preset("fmnist-simplecnn", epochs=2, ast={"target": 0.2}).ast.target == 0.2


def test_the_quick_start_runs_as_written(tmp_path):
    """Run the snippet: the four figures are PNG files, the run folder holds its checkpoint, and the last line
    printed is a top-5 prediction of Fashion-MNIST classes, most probable first. Mutant caught: any step of
    the snippet that fails (a public name missing, `plot_mistakes` on a run without its test split) or a
    `predict` that returns something else than (class, id, probability) triples."""
    if not fashion_mnist.has_files(Path(fashion_mnist.DEBIAN_DIR)):
        pytest.fail(f"the quick start trains on Fashion-MNIST: apt-get install -y {fashion_mnist.APT_PACKAGE} "
                    f"(as root)")
    code = quick_start_code()
    assert code.count(README_SIZE) == 1
    write_photo(tmp_path / "photo.jpg")
    done = run_python(code.replace(README_SIZE, TEST_SIZE), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in FIGURES:
        assert (tmp_path / name).read_bytes()[:8] == PNG_SIGNATURE, name
    assert (tmp_path / "runs" / "quick" / "best.pt").is_file()
    top = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert len(top) == 5
    assert [name for name, _, _ in top] == [fashion_mnist.CLASS_NAMES[index] for _, index, _ in top]
    probabilities = [p for _, _, p in top]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-6


def test_the_run_plots_refuse_what_they_cannot_draw_in_one_line(tmp_path):
    """A run folder without metrics.csv, and a run whose test images are not held in memory (the ImageNet
    routes), are a UsageError naming the fix. Mutant caught: `plots.history_frame` handing a missing path to
    pandas (a FileNotFoundError traceback), or `mistakes.of_run` reading `test_split.images` of None."""
    from types import SimpleNamespace

    from cifar_lab import mistakes
    from cifar_lab.errors import UsageError

    with pytest.raises(UsageError, match="metrics.csv"):
        cifar_lab.plot_curves(tmp_path / "runs" / "never-trained")
    imagenet_run = SimpleNamespace(data=SimpleNamespace(test_split=None), config=SimpleNamespace(dataset="imagenet100"),
                                   evaluation={"confusion": [[1, 0], [0, 1]]})
    with pytest.raises(UsageError, match="imagenet100 is not held in memory"):
        mistakes.of_run(imagenet_run)
