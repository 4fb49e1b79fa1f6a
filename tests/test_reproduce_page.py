"""The reproduction page: its measured figures come from the committed records under book/results/, each
stamped with its provenance, and its guide for GPU owners starts with the command that reproduces the book."""
import re
import subprocess
from decimal import Decimal
from pathlib import Path

import yaml

from cifar_lab.book import records

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "reproduce.md"
RESULTS = ROOT / "book" / "results"
MEASURED_HEADING = "## Measured by this project"
# A number as a reader sees it: 110,560 / 10.2 / 2026; thousands separators do not make two numbers.
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")


# A commit as the page names it (853a666, ed22271): an identifier, not a measurement, even where it starts
# with digits.
COMMIT = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b")


def numbers(text: str) -> set[str]:
    return {match.replace(",", "") for match in NUMBER.findall(COMMIT.sub(" ", text))}


def measured_sections(page: str) -> str:
    """The text from the measured heading to the next heading of the same level (its subsections included)."""
    start = page.index(MEASURED_HEADING)
    following = re.search(r"^## ", page[start + len(MEASURED_HEADING):], flags=re.MULTILINE)
    return page[start:] if following is None else page[start:start + len(MEASURED_HEADING) + following.start()]


def strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    else:
        yield str(value)


def head() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def test_every_measured_number_on_the_rendered_page_is_held_by_a_committed_record():
    """The measured section as the book build renders it (the records in place of the marker): it shows real
    numbers, and each is held by a committed record. Mutants: a number typed into the section by hand; a
    renderer that rounds or recomputes a measurement (its output no longer matches the record)."""
    held = set()
    loaded = records.load(RESULTS)
    for _, record in loaded:
        for text in strings(record):
            held |= numbers(text)
    page = records.replace_marker(PAGE.read_text(), records.render(loaded, head()))
    shown = numbers(measured_sections(page))
    assert len(shown) > 50, "the rendered measured section shows almost no numbers: is the marker rendered?"
    stray = sorted(shown - held)
    assert stray == [], f"{PAGE.name} shows measured numbers that no record under book/results/ holds: {stray}"


def test_the_measured_section_is_rendered_from_the_records():
    section = measured_sections(PAGE.read_text())
    assert sum(line.strip() == records.MARKER for line in section.splitlines()) == 1
    assert "|" not in section, "a hand-typed table in the measured section; put it into a record"


def test_every_record_is_stamped_and_every_measurement_names_its_command():
    loaded = records.load(RESULTS)
    assert loaded, "no records under book/results/"
    for path, record in loaded:
        assert all(record["provenance"].get(key) for key in ("commit", "date", "device")), path
        assert re.fullmatch(r"[0-9a-f]{7,40}", record["provenance"]["commit"]), path
        for measurement in record["measurements"]:
            assert measurement.get("command"), (path, measurement["title"])


def test_rendering_lists_the_records_and_marks_an_older_commit():
    loaded = records.load(RESULTS)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    rendered = records.render(loaded, head)
    # Long commands are wrapped with shell continuations to fit the column: compare with those joined.
    joined = " ".join(rendered.replace("\\\n", " ").split())
    for path, record in loaded:
        assert f"`{path.name}`" in rendered and record["title"] in rendered
        for text in strings(record["measurements"]):
            assert " ".join(text.split("\n")[0].split()) in joined
    assert "**older commit**" in rendered  # the committed records predate this commit
    page = records.replace_marker(PAGE.read_text(), rendered)
    assert records.MARKER not in page and "110,560" in page
    assert records.commit_relation(head[:7], head) == "this commit"


def test_the_book_build_renders_the_records():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["sphinx"]["local_extensions"] == {"results_records": "book/_ext"}
    assert (ROOT / "book" / "_ext" / "results_records.py").is_file()


def test_the_gpu_guide_starts_with_the_whole_book_command_and_then_the_report():
    page = PAGE.read_text()
    first_block = re.search(r"```bash\n(.*?)```", page, flags=re.DOTALL).group(1)
    assert first_block.strip() == "cifar-lab reproduce --scale full --out runs/reproduce"
    guide = page[page.index("## On a GPU machine"):page.index("## Set-up")]
    assert "estimates, not measurements" in guide and "A100" in guide
    assert "airbench" in guide and "FFCV" in guide
    assert guide.index("cifar-lab reproduce --scale full") < guide.index("cifar-lab reproduce --report")


def test_data_files_of_the_chapters_are_named_but_not_rendered_as_records(tmp_path):
    (tmp_path / "a-page-record.json").write_text((RESULTS / "2026-11-22-cpu-quiet.json").read_text())
    (tmp_path / "chapter_data.json").write_text('{"command": "cifar-lab run ...", "rows": [{"acc": 0.5}]}')
    loaded = records.load(tmp_path)
    assert [path.name for path, _ in loaded] == ["a-page-record.json"]
    assert records.data_files(tmp_path) == ["chapter_data.json"]
    assert "`chapter_data.json`" in records.render(loaded, "0" * 40, others=records.data_files(tmp_path))


def rendered_page() -> str:
    """The reproduction page as the book's extension leaves it at build time."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("results_records", ROOT / "book" / "_ext" / "results_records.py")
    extension = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extension)

    class App:
        srcdir = str(ROOT)

        class env:
            @staticmethod
            def note_dependency(path):
                pass

    source = [PAGE.read_text()]
    extension.render_records(App, "book/reproduce", source)
    return source[0]


def claim_rows(page: str) -> list[list[str]]:
    """The rows of the rendered claims table: chapter, claim, published, source, criterion, comparable when."""
    table = page[page.index("### Claims and their criteria"):page.index("### Sanity checks (not verdicts)")]
    rows = []
    for line in table.splitlines():
        if line.startswith("| ") and not line.startswith(("| chapter |", "| ---")):
            rows.append([cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def band_from_published(published: str):
    """The band a published figure admits, worked out from its text alone: "a-b" gives a to b; a point gives ±
    half a unit of its last printed digit, of its last non-zero digit after "~" (the source says
    approximately). Only the text before any parenthesis states the figure."""
    text = published.split("(")[0]
    found = re.search(r"(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)", text)
    if found:
        return Decimal(found.group(1)), Decimal(found.group(2))
    found = re.search(r"(~?)(\d+(?:\.\d+)?)", text)
    figure = Decimal(found.group(2))
    exponent = (figure.normalize() if found.group(1) else figure).as_tuple().exponent
    half = Decimal(1).scaleb(exponent) / 2
    return figure - half, figure + half


def test_every_criterion_on_the_page_is_the_published_figure_itself():
    """For each claim the page lists, the ends of its criterion ("A to B") are the band worked out here from its
    published column; comparisons between two variants name Welch's interval instead. Mutants: a criterion
    looser than the published figure (4x the tolerance, a widened range); a tolerance taken from our seeds'
    spread (no fixed ends to show); a page whose claims table is not rendered at all."""
    from cifar_lab.book import claims

    rows = claim_rows(rendered_page())
    assert len(rows) == sum(len(items) for items in claims.CLAIMS.values()) >= 20
    for chapter, claim, published, source, criterion, needs in rows:
        if ">=" in published:
            assert "Welch" in criterion and "interval of the difference" in criterion, claim
            continue
        ends = re.findall(r"(\d+(?:\.\d+)?) to (\d+(?:\.\d+)?)", criterion)
        assert ends, (claim, criterion)
        assert tuple(Decimal(x) for x in ends[-1]) == band_from_published(published), (claim, published, criterion)
        assert "std" not in criterion and "seeds" not in criterion, criterion


def test_the_claims_and_the_not_judged_figures_are_generated_into_the_page():
    """Mutant: the extension no longer replacing the marker (the page would show the bare marker line)."""
    from cifar_lab.book import claims, report

    page = PAGE.read_text()
    assert sum(line.strip() == report.CLAIMS_MARKER for line in page.splitlines()) == 1
    assert page.index(report.CLAIMS_MARKER) < page.index(MEASURED_HEADING)
    rendered = rendered_page()
    assert report.CLAIMS_MARKER not in rendered and records.MARKER not in rendered
    lines = rendered[rendered.index("### Not judged, and why"):].splitlines()
    first = next(k for k, line in enumerate(lines) if line.startswith("| document |"))
    table = [line for line in lines[first + 2:]]
    rows = table[:next(k for k, line in enumerate(table) if not line.startswith("| "))]
    assert len(rows) == len(claims.NOT_JUDGED) >= 25
    assert "### Sanity checks (not verdicts)" in rendered and report.RULE in rendered
