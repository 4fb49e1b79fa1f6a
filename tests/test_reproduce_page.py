"""The reproduction page: its measured figures come from the committed records under book/results/, each
stamped with its provenance, and its guide for GPU owners starts with the command that reproduces the book."""
import re
import subprocess
from pathlib import Path

import yaml

from cifar_lab.book import records

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "reproduce.md"
RESULTS = ROOT / "book" / "results"
MEASURED_HEADING = "## Measured by this project"
# A number as a reader sees it: 110,560 / 10.2 / 2026; thousands separators do not make two numbers.
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")


def numbers(text: str) -> set[str]:
    return {match.replace(",", "") for match in NUMBER.findall(text)}


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


def test_every_measured_number_on_the_page_is_held_by_a_committed_record():
    held = set()
    for _, record in records.load(RESULTS):
        for text in strings(record):
            held |= numbers(text)
    section = measured_sections(PAGE.read_text())
    stray = sorted(numbers(section) - held)
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


def test_the_claims_and_the_not_judged_figures_are_generated_into_the_page():
    from cifar_lab.book import reproduce

    page = PAGE.read_text()
    assert sum(line.strip() == reproduce.CLAIMS_MARKER for line in page.splitlines()) == 1
    assert page.index(reproduce.CLAIMS_MARKER) < page.index(MEASURED_HEADING)
    rendered = reproduce.render_claims()
    not_judged = rendered[rendered.index("### Not judged, and why"):]
    rows = [line for line in not_judged.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == len(reproduce.NOT_JUDGED) >= 25
    for _, claims in reproduce.CLAIMS.items():
        for claim in claims:
            assert claim.criterion_text() in rendered.replace("\\|", "|")
    assert "### Sanity checks (not verdicts)" in rendered
    # The book's extension puts them in place of the marker at build time.
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

    source = [page]
    extension.render_records(App, "book/reproduce", source)
    assert reproduce.CLAIMS_MARKER not in source[0] and "### Not judged, and why" in source[0]
