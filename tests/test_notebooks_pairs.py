"""The notebooks follow the book's conventions: every MyST .md has an .ipynb twin with the same cells, one
`parameters` cell with `smoke` and `out_dir`, and a line in the book's table of contents."""
from pathlib import Path

import jupytext
import pytest
from cifar_lab.book.runner import declared_parameters, parameter_cell_index

from book_toc import ROOT, toc_files  # tests/ is on sys.path under pytest
NOTEBOOKS = ROOT / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("*.md"))


def cells(path: Path) -> list[tuple[str, str, list]]:
    nb = jupytext.read(path)
    return [(cell.cell_type, cell.source.strip(), sorted(cell.metadata.get("tags", []))) for cell in nb.cells]


def test_there_are_notebooks():
    assert SOURCES, f"no notebooks found in {NOTEBOOKS}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_md_and_ipynb_hold_the_same_cells(source):
    twin = source.with_suffix(".ipynb")
    assert twin.is_file(), f"{twin.name} is missing: run `jupytext --sync {source.name}` in notebooks/"
    md_cells, ipynb_cells = cells(source), cells(twin)
    for index, (md_cell, ipynb_cell) in enumerate(zip(md_cells, ipynb_cells)):
        assert md_cell == ipynb_cell, (f"{source.name} and {twin.name} differ at cell {index}; edit the .md and "
                                       f"run `jupytext --sync {source.name}`, then execute the .ipynb again")
    assert len(md_cells) == len(ipynb_cells), f"{source.name} and {twin.name} have different numbers of cells"


@pytest.mark.parametrize("twin", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_ipynb_has_a_md_source(twin):
    assert twin.with_suffix(".md").is_file(), f"{twin.name} has no MyST source {twin.with_suffix('.md').name}"


@pytest.mark.parametrize("twin", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_committed_ipynb_holds_outputs_without_errors(twin):
    nb = jupytext.read(twin)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert any(cell.get("outputs") for cell in code), f"{twin.name} has no outputs: execute it in smoke mode"
    errors = [o for cell in code for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{twin.name} was committed with an error output: {errors[0].get('ename')}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_one_parameters_cell_with_smoke_and_out_dir(source):
    nb = jupytext.read(source)
    tagged = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{source.name} needs exactly one cell tagged parameters, found {len(tagged)}"
    assert parameter_cell_index(nb) == tagged[0]
    names = declared_parameters(nb)
    assert "smoke" in names and "out_dir" in names, f"{source.name}: the parameters cell must set smoke and out_dir"
    assert "smoke_default()" in names["smoke"] or "CIFAR_LAB_SMOKE" in names["smoke"], \
        f"{source.name}: smoke must default from the CIFAR_LAB_SMOKE environment variable"


def test_every_notebook_is_in_the_book_and_every_page_exists():
    listed = toc_files()
    for source in SOURCES:
        entry = f"notebooks/{source.stem}"
        assert entry in listed, f"{entry} is not in _toc.yml; add `- file: {entry}` under the chapters"
    for entry in listed:
        assert (ROOT / f"{entry}.md").is_file(), f"_toc.yml lists {entry}, but {entry}.md does not exist"
