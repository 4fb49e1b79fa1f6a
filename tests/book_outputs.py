"""What a reader sees in the chapters' outputs, cell by cell, from the executed .ipynb files or from the built
HTML pages, and the output problems a reader would have to decode:

- `dtype: object` (or any `dtype:` line) under a printed pandas Series;
- a settle table that shows -1 (or -1.0) where it means "never";
- a table column whose values all equal another column's (a column that says nothing new, or a mislabelled one).

HTML tables are read with the standard library's `html.parser`; nothing else is needed.
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

MISSING = {"", "—", "-", "nan", "NaN", "None"}


@dataclass
class Cell:
    source: str
    texts: list[str] = field(default_factory=list)        # plain-text outputs (stream, text/plain)
    tables: list[list[list[str]]] = field(default_factory=list)  # HTML tables: rows of data cells (<td>)


class _Tables(HTMLParser):
    """Collects every <table>'s rows of <td> cell texts (header and index cells, <th>, are left out)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.row: list[str] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.row = []
        elif tag == "td" and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None and self.row is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None:
            if self.row:
                self.tables[-1].append(self.row)
            self.row = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def tables_in(markup: str) -> list[list[list[str]]]:
    parser = _Tables()
    parser.feed(markup)
    return [table for table in parser.tables if table]


def cells_of_notebook(path: Path) -> list[Cell]:
    """The code cells of an executed .ipynb with their outputs."""
    notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = []
    for raw in notebook["cells"]:
        if raw["cell_type"] != "code":
            continue
        cell = Cell("".join(raw["source"]))
        for output in raw.get("outputs", []):
            if output.get("output_type") == "stream":
                cell.texts.append("".join(output.get("text", "")))
            data = output.get("data", {})
            if "text/html" in data:
                cell.tables += tables_in("".join(data["text/html"]))
            elif "text/plain" in data:
                cell.texts.append("".join(data["text/plain"]))
        cells.append(cell)
    return cells


def cells_of_html(path: Path) -> list[Cell]:
    """The code cells of a built page: each `cell docutils container` with its input and outputs."""
    page = Path(path).read_text(encoding="utf-8")
    cells = []
    for chunk in re.split(r'<div class="cell docutils container[^"]*"', page)[1:]:
        source_part, _, output_part = chunk.partition('class="cell_output')
        source = html.unescape(re.sub(r"<[^>]+>", "", source_part))
        texts = [html.unescape(re.sub(r"<[^>]+>", "", block))
                 for block in re.findall(r"<pre[^>]*>(.*?)</pre>", output_part, flags=re.S)]
        cells.append(Cell(source, texts, tables_in(output_part)))
    return cells


def _is_minus_one(value: str) -> bool:
    return value.strip() in ("-1", "-1.0", "−1", "−1.0")


def identical_columns(table: list[list[str]]) -> list[tuple[int, int]]:
    """Pairs of data columns whose values are equal in every row (tables of at least 2 rows, columns that are
    not all missing)."""
    width = min(len(row) for row in table)
    if len(table) < 2 or width < 2:
        return []
    columns = [[row[i] for row in table] for i in range(width)]
    return [(i, j) for i in range(width) for j in range(i + 1, width)
            if columns[i] == columns[j] and not all(value in MISSING for value in columns[i])]


def problems(cells: list[Cell]) -> list[str]:
    """Every output problem found, one line each, naming the cell by its first source line."""
    found = []
    for cell in cells:
        name = next((line.strip() for line in cell.source.splitlines() if line.strip()), "?")[:60]
        for text in cell.texts:
            for line in text.splitlines():
                if re.match(r"^\s*(Name: .*, )?dtype: \w+\s*$", line):
                    found.append(f"{name}: a pandas `{line.strip()}` line")
        settle = "settle" in cell.source
        for table in cell.tables:
            if settle and any(_is_minus_one(value) for row in table for value in row):
                found.append(f"{name}: a settle table shows -1 for 'never'")
            for i, j in identical_columns(table):
                found.append(f"{name}: table columns {i + 1} and {j + 1} hold the same values in every row")
        if settle:
            for text in cell.texts:
                if re.search(r"(?m)^\s*\S+(\s+\S+)*\s+-1\.0(\s|$)", text):
                    found.append(f"{name}: a settle table shows -1.0 for 'never'")
    return found
