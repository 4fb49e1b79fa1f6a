"""The chapters' prose states no measured number of its own: a measurement in the text is glued from a cell
(MyST `glue`, which the -W book build checks) and so comes from the run's records, a figure quoted in the text
is one the published sources state (the claims, the not-judged figures, the Fashion-MNIST table), and the
criteria live in `claims.CLAIMS`, not in the notebooks."""
import re
from decimal import Decimal
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.md"))

# A result as prose would state it: a number with a decimal point and a unit of a measurement, or a number given
# with a spread ("0.8904 ± 0.0030").
RESULT = re.compile(r"(?<![\w.])(\d+\.\d+)\s*(?:%|ms\b|MB\b|GB\b|×|x\b|img/s|images per second|s\b|seconds|"
                    r"minutes|hours|points|M\b|k\b|±)")
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?")
# Numbers the text works out from a published figure, each with the arithmetic that gives it.
DERIVED = {
    "44.7": ("11.17 M float32 parameters, 4 bytes each, in MB", round(Decimal("11.17") * 4, 1)),
    "11.4": ("the AST note's 120-minute baseline over its 10.5-minute run", round(Decimal(120) / Decimal("10.5"), 1)),
}


def prose(path: Path) -> str:
    """The Markdown text of a notebook (code cells left out) or of a book page."""
    if path.parent.name != "notebooks":
        return path.read_text()
    notebook = jupytext.read(path)
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


def code(path: Path) -> str:
    return "\n".join(cell.source for cell in jupytext.read(path).cells if cell.cell_type == "code")


def published_numbers() -> set[str]:
    """Every number the published sources state, as the claims and the not-judged list quote them."""
    from cifar_lab.book import claims
    from cifar_lab.presets import fmnist

    texts = [text for items in claims.CLAIMS.values() for claim in items
             for text in (claim.claim, claim.expected, claim.source, claim.notes, *(b.text for b in claim.beside))]
    texts += [text for item in claims.NOT_JUDGED for text in (item.quote, item.reason)]
    texts += [str(value) for entry in fmnist.PUBLISHED.values() for value in entry.values()]
    return {number for text in texts for number in NUMBER.findall(text.replace(",", ""))}


def typed_results(text: str) -> list[str]:
    """The results stated in `text` outside code spans, glue roles and math."""
    text = re.sub(r"`[^`]*`", "", text)
    text = re.sub(r"\$[^$]*\$", "", text)
    return RESULT.findall(text)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_result_in_the_prose_is_glued_or_a_published_figure(path):
    """Mutant: a measured number typed into a chapter's text ("SimpleCNN reaches 89.04 %"), which no run
    updates and no record holds."""
    allowed = published_numbers() | set(DERIVED)
    stray = sorted(set(typed_results(prose(path))) - allowed)
    assert stray == [], (f"{path.name} states results that are neither glued from a cell nor a published figure: "
                         f"{stray}; glue them from the run's records")


def test_the_check_finds_typed_results_and_passes_glued_and_published_ones():
    """Mutant: a pattern that misses a typed result (a check that passes everything)."""
    typed = ("SimpleCNN reaches 89.04 % after 4 epochs", "batch-1 latency 5.71 ms", "0.8904 ± 0.0030",
             "it trains at 166.2 img/s", "the recipe takes 17.3 hours")
    for sample in typed:
        assert set(typed_results(sample)) - published_numbers() - set(DERIVED), sample
    fine = ("reaches {glue:text}`acc:.1f` %", "the README's 0.8833", "61.2 % against 60 %", "lr 0.1 and momentum 0.9")
    for sample in fine:
        assert not set(typed_results(sample)) - published_numbers() - set(DERIVED), sample
    for number, (why, value) in DERIVED.items():
        assert Decimal(number) == value, why


GLUED = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)")


def stored_glue(path: Path) -> dict[str, str]:
    """What the executed twin (`.ipynb`) of a chapter glued: name -> the stored text/plain value."""
    import json

    stored = {}
    for cell in json.loads(path.with_suffix(".ipynb").read_text())["cells"]:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("application/papermill.record/text/plain")
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if text is not None and name:
                stored[name] = text
    return stored


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_glued_number_in_the_text_is_glued_by_a_cell_of_the_same_chapter(path):
    """Each `{glue}` name in the text is glued by a cell of the chapter: named in its code (`glue("name", ...)`,
    `glue_record("name", ...)`), or found in its executed twin's outputs (names built in a loop). Mutant: a
    number in the text that no cell of the chapter produces (the build shows a broken reference)."""
    wanted = set(GLUED.findall(prose(path)))
    glued = set(re.findall(r"glue(?:_record)?\(\s*\"([^\"]+)\"", code(path))) | set(stored_glue(path))
    assert wanted <= glued, f"{path.name}: the text shows {sorted(wanted - glued)}, which no cell glues"


def test_the_listed_measured_numbers_come_from_cells():
    glued = {path.name: set(GLUED.findall(prose(path))) for path in NOTEBOOKS}
    assert {"loader_ratio", "cpu_train_img_s"} <= glued["01_cifar10_data.md"]
    assert {"cpu_img_s", "cpu_epoch_minutes", "cpu_recipe_hours"} <= glued["02_cifar10_resnet18.md"]
    assert {"resnet18_vs_naivenet_params", "resnet34_vs_naivenet_params"} <= glued["05_model_zoo.md"]


def test_no_notebook_writes_its_own_criteria():
    for path in sorted((ROOT / "notebooks").iterdir()):  # what `grep -rn "Expectation\|lambda v" notebooks/` reads
        text = path.read_text() if path.suffix in (".md", ".ipynb") else ""
        assert "Expectation" not in text and "lambda v" not in text, path.name
    for name in ("02_cifar10_resnet18.md", "04_cifar100_migration.md", "03_ast_cifar10.md"):
        assert "claims_table(" in code(ROOT / "notebooks" / name), name
    assert not (ROOT / "cifar_lab" / "reproduction.py").exists()


def test_the_introduction_walks_through_every_chapter():
    intro = prose(ROOT / "book" / "intro.md")
    path = intro[intro.index("## The path through the book"):intro.index("## Four ways")]
    for topic in ("CIFAR-10", "Adaptive Sparse Training", "CIFAR-100", "ImageNet-100", "ImageNet-1k",
                  "Scaling out", "Inference"):
        assert topic in path, topic


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_number_formatted_in_the_text_is_stored_as_a_plain_number(path):
    """`{glue:text}`key:.1f`` formats the stored text/plain value, which must then read as a number. Mutant: a
    numpy scalar glued as is (stored as "np.float64(...)", which the book build rejects)."""
    formatted = set(re.findall(r"\{glue(?::text)?\}`([^`:]+):", prose(path)))
    stored = stored_glue(path)
    for key in formatted & set(stored):
        float(stored[key])  # raises on "np.float64(...)"
