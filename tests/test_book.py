"""The book builds offline from the smoke-executed notebooks with warnings as errors, and every page of
_toc.yml is in the HTML; every chapter is a lesson (what you will learn, a summary, exercises with hidden
answers), links the glossary, and shows outputs a reader can read.

The build renders the notebooks' committed executed twins (notebooks/*.ipynb) without executing them again, as
the published edition is built: nbval executes those very notebooks in this suite (and compares the outputs it
checks), and `tests/test_notebooks_pairs.py` holds their cells equal to the .md sources, so one execution per
suite is enough. It runs once per session (`built_book`) and every check of the HTML shares it. The checks of the
sources and of the committed .ipynb outputs need no build.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
import yaml
from cifar_lab import presets
from cifar_lab.config import parse_assignments, validate
from cifar_lab.book.runner import declared_parameters

from book_outputs import cells_of_html, cells_of_notebook, problems
from book_toc import ROOT, toc_files  # tests/ is on sys.path under pytest
from html_overflow import measure

# The chapters: every numbered notebook of the table of contents (3b, one point of a sweep, is an appendix).
CHAPTERS = [entry for entry in toc_files() if re.fullmatch(r"notebooks/\d\d_\w+", entry)]
GLOSSARY = ROOT / "book" / "glossary.md"
# Terms the glossary must define: the ones a reader meets undefined otherwise.
REQUIRED_TERMS = ["AST", "significance score", "PI controller", "EMA", "anti-windup", "AMP", "bf16",
                  "channels-last", "OneCycle", "label smoothing", "Cutout", "top-k", "superclass", "DDP",
                  "all-reduce", "local SGD", "ONNX", "QDQ", "int8 calibration", "Inductor", "distillation",
                  "Sundew", "VNNI", "PT2E", "oneDNN", "freezing"]
QUICK = "(runs in under 5 minutes on a laptop CPU)"


def section(text: str, heading: str) -> str:
    """The text under `## heading` up to the next `## ` heading."""
    found = re.search(rf"(?ms)^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text)
    assert found, f"no '## {heading}' section"
    return found.group(1)


def glossary_terms() -> list[str]:
    block = re.search(r"(?s)```\{glossary\}\n(.*?)\n```", GLOSSARY.read_text()).group(1)
    return [line.strip() for line in block.splitlines() if line.strip() and not line.startswith((" ", "\t"))]


def test_the_chapters_are_found():
    assert [entry.split("/")[1][:2] for entry in CHAPTERS] == [f"{n:02d}" for n in range(1, 10)]
    assert "notebooks/03b_ast_sweep_point" in toc_files() and "notebooks/03b_ast_sweep_point" not in CHAPTERS


@pytest.mark.parametrize("entry", CHAPTERS, ids=lambda e: e.split("/")[1])
def test_every_chapter_is_a_lesson(entry):
    text = (ROOT / f"{entry}.md").read_text()
    learn = section(text, "You will learn").split("**Prerequisites:**")[0] + "**Prerequisites:**"
    assert 3 <= len(re.findall(r"(?m)^- ", learn)) <= 5, "'You will learn' needs 3-5 items"
    assert "**Prerequisites:**" in learn
    assert text.index("## You will learn") < text.index("```{code-cell}"), "'You will learn' opens the chapter"
    summary = section(text, "Summary").strip()
    sentences = re.findall(r"[^.!?]+[.!?](?=\s|$)", summary)
    assert 3 <= len(sentences) <= 6, f"the summary has {len(sentences)} sentences, not 3-6"
    exercises = re.split(r"(?m)^### Exercise \d+: ", section(text, "Exercises"))[1:]
    assert 3 <= len(exercises) <= 5, f"{len(exercises)} exercises, not 3-5"
    assert any(QUICK in exercise.splitlines()[0] for exercise in exercises), "no exercise says it is quick"
    assert text.index("## Summary") < text.index("## Exercises") and text.rstrip().endswith("```")
    for exercise in exercises:
        assert "```{dropdown}" in exercise, f"exercise {exercise.splitlines()[0]!r} has no hidden answer"
        assert "```bash\ncifar-lab " in exercise or "```bash\npython " in exercise, exercise.splitlines()[0]


def exercise_commands() -> list[tuple[str, str]]:
    found = []
    for entry in CHAPTERS:
        exercises = section((ROOT / f"{entry}.md").read_text(), "Exercises")
        for block in re.findall(r"(?s)```bash\n(.*?)\n```", exercises):
            found += [(entry, line) for line in block.splitlines() if line.startswith("cifar-lab ")]
    return found


@pytest.mark.parametrize("entry, command", exercise_commands(), ids=lambda v: v.split("/")[-1][:40])
def test_every_exercise_command_names_real_presets_settings_and_parameters(entry, command):
    words = shlex.split(command)
    if words[1] == "train":
        preset = words[words.index("--preset") + 1]
        sets, taking = [], False
        for word in words:  # the KEY=VALUE words after each --set, up to the next option
            taking = word == "--set" or (taking and not word.startswith("--"))
            if taking and word != "--set":
                sets.append(word)
        # distill.teacher names a checkpoint the exercise's first command writes, not there yet: check the
        # other settings with distillation off
        if any(item.startswith("distill.teacher=") for item in sets):
            sets = [item for item in sets if not item.startswith("distill.teacher=")] + ["distill.enabled=false"]
        config = presets.resolve(preset, parse_assignments(sets))   # unknown keys and bad values raise
        validate(config)
    elif words[1] == "run":
        notebook = ROOT / words[2]
        names = declared_parameters(jupytext.read(notebook))
        for i, word in enumerate(words):
            if word == "-p":
                assert words[i + 1] in names, f"{notebook.name} has no parameter {words[i + 1]!r}"
    else:  # another subcommand: its options must exist
        done = subprocess.run([sys.executable, "-m", "cifar_lab", *words[1:3], "--help"] if words[1] == "bench"
                              else [sys.executable, "-m", "cifar_lab", words[1], "--help"],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        for word in words:
            if word.startswith("--"):
                assert word in done.stdout, f"`cifar-lab {words[1]}` has no option {word}"


# The widest code line the book's column shows whole in Chromium at the theme's code font: a 78-character line
# overflowed it by 6 px, so the browser check of the built book (below) would fail on it.
CODE_COLUMN_CHARS = 77


@pytest.mark.parametrize("entry", [e for e in toc_files() if e.startswith("notebooks/")], ids=lambda e: e[10:])
def test_every_code_line_fits_the_column(entry):
    """The source check behind the browser's: every code-cell line of a notebook fits the book's column, so a
    long line fails here in a second instead of after the half-hour build. Mutant caught: a 79-character call
    (what the browser check found in chapters 2-5 and 9)."""
    text = (ROOT / f"{entry}.md").read_text()
    cells = re.findall(r"(?ms)^```\{code-cell\}[^\n]*\n(.*?)^```", text)
    assert cells, "no code cells found"
    wide = [line for cell in cells for line in cell.splitlines() if len(line) > CODE_COLUMN_CHARS]
    assert wide == [], f"code lines wider than {CODE_COLUMN_CHARS} characters: {wide}"


def test_the_glossary_defines_the_terms_and_every_chapter_links_it():
    terms = glossary_terms()
    assert len(terms) >= 25, terms
    assert len(set(terms)) == len(terms), "a term is defined twice"
    missing = [term for term in REQUIRED_TERMS if term not in terms]
    assert not missing, f"the glossary lacks {missing}"
    known = {term.lower() for term in terms}
    for entry in CHAPTERS:
        linked = {term.lower() for term in re.findall(r"\{term\}`([^`<]+?)(?:\s*<[^>]+>)?`",
                                                        (ROOT / f"{entry}.md").read_text())}
        assert linked <= known, f"{entry} links terms the glossary lacks: {linked - known}"
        assert len(linked) >= 2, f"{entry} links {len(linked)} glossary terms; link at least 2"


@pytest.mark.parametrize("entry", CHAPTERS, ids=lambda e: e.split("/")[1])
def test_committed_outputs_are_readable(entry):
    found = problems(cells_of_notebook(ROOT / f"{entry}.ipynb"))
    assert not found, "; ".join(found)


def test_the_output_checks_see_the_problems_they_look_for():
    from book_outputs import Cell

    series = Cell("pd.Series(values)", texts=["final_acc    0.875\nprecision     bf16\ndtype: object"])
    settle = Cell("settle = sweep.pivot_table(...)", tables=[[["-1.0", "58.0"], ["20.0", "20.0"]]])
    twins = Cell("table", tables=[[["0.5", "0.1", "0.5"], ["0.7", "0.2", "0.7"]]])
    fine = Cell("table", tables=[[["0.5", "—", "—"], ["0.7", "—", "—"]]], texts=["dtype of x: float"])
    assert len(problems([series])) == 1 and len(problems([settle])) == 1
    assert problems([twins]) == ["table: table columns 1 and 3 hold the same values in every row"]
    assert problems([fine]) == []


# What the book build does not read: the environment, data, runs, earlier builds, the history.
NOT_BUILT = shutil.ignore_patterns(".venv*", "venv", ".git", "data", "runs", "_build", ".pytest_cache",
                                   "__pycache__", "*.egg-info")


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """The book built once per session from a copy of the repository whose configuration takes the executed
    .ipynb twins instead of the .md sources, with execution off: (the build's result, the HTML folder)."""
    tmp_path = tmp_path_factory.mktemp("book")
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=NOT_BUILT)
    config = yaml.safe_load((source / "_config.yml").read_text())
    config["exclude_patterns"] = [pattern for pattern in config["exclude_patterns"] if pattern != "**/*.ipynb"]
    config["exclude_patterns"].append("notebooks/*.md")
    config["execute"]["execute_notebooks"] = "off"
    (source / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    jupyter_book = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")
    assert jupyter_book, "jupyter-book is not installed: run scripts/setup.sh"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([jupyter_book, "build", str(source), "--path-output", str(tmp_path), "-W", "--keep-going",
                           "--builder", "html"], cwd=source, env=env, capture_output=True, text=True)
    return done, tmp_path / "_build" / "html"


def test_book_builds_with_every_page(built_book):
    done, html = built_book
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    for entry in toc_files():
        page = html / f"{entry}.html"
        assert page.is_file(), f"{page} was not built"
        assert "Traceback" not in page.read_text(encoding="utf-8"), f"{page} shows a traceback"
    assert (html / "index.html").is_file()
    # The chapters carry their figures: executed notebooks, not just text.
    assert list((html / "_images").glob("*.png")), "the built book has no figures"

    # Nothing is cut off: no code cell, printed output or table is wider than the column in a browser.
    layout = measure([html / f"{entry}.html" for entry in toc_files()])
    assert sum(page["blocks"] for page in layout.values()) > 50, layout   # the selectors still find the code
    overflowing = {name: page["overflowing"] for name, page in layout.items() if page["overflowing"]}
    assert not overflowing, "blocks wider than the column: " + "; ".join(
        f"{name}: {block['kind']} +{block['overflow_px']}px {block['line']!r}"
        for name, blocks in overflowing.items() for block in blocks)


def test_built_chapters_are_lessons_with_readable_outputs(built_book):
    done, html = built_book
    assert done.returncode == 0, "the book did not build (see test_book_builds_with_every_page)"
    glossary = (html / "book" / "glossary.html").read_text(encoding="utf-8")
    assert len(re.findall(r'<dt id="term-', glossary)) >= 25
    for entry in CHAPTERS:
        page = (html / f"{entry}.html").read_text(encoding="utf-8")
        for heading in ("You will learn", "Summary", "Exercises"):
            assert re.search(rf"<h2>{heading}<a", page), f"{entry}: no '{heading}' heading in the page"
        assert len(re.findall(r"<h3>Exercise \d+:", page)) >= 3, f"{entry}: fewer than 3 exercises"
        assert len(set(re.findall(r'href="[./]*book/glossary.html#(term-[^"]+)"', page))) >= 2, \
            f"{entry}: fewer than 2 glossary links"
        found = problems(cells_of_html(html / f"{entry}.html"))
        assert not found, f"{entry}: " + "; ".join(found)
    # The four explanatory figures are drawn in their chapters.
    for entry, figure in (("02_cifar10_resnet18", "stems"), ("03_ast_cifar10", "ast_step"),
                          ("08_scaling_out", "ddp_and_local_sgd"), ("09_inference", "export_routes")):
        cells = [cell for cell in re.split(r'<div class="cell docutils container',
                                           (html / "notebooks" / f"{entry}.html").read_text(encoding="utf-8"))
                 if f"diagrams.{figure}" in re.sub(r"<[^>]+>", "", cell)]
        assert cells and "<img" in cells[0], f"{entry}: the figure diagrams.{figure} is not shown"
