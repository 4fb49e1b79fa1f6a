"""Sphinx extension of the book: the measured results on the reproduction page come from book/results/.

At build time, the page that holds the line `% results-records` gets every record under book/results/ in its
place (rendered by `cifar_lab.book.records`), so the page cannot show a measured number that no committed record
holds, and each record says the commit it was measured at. Registered in _config.yml (sphinx:
local_extensions); it needs no network and runs in every build: scripts/book.sh, the tests, a plain
`jupyter-book build .`.
"""
from pathlib import Path

from cifar_lab.book import records, report

RECORDS = Path("book") / "results"


def render_records(app, docname, source):
    if report.CLAIMS_MARKER in source[0]:  # the claims, sanity checks and not-judged figures
        source[0] = source[0].replace(report.CLAIMS_MARKER, report.render_claims(), 1)
    if records.MARKER not in source[0]:
        return
    folder = Path(app.srcdir) / RECORDS
    for path in sorted(folder.glob("*.json")):
        app.env.note_dependency(str(path))  # a changed record rebuilds the page
    rendered = records.render(records.load(folder), others=records.data_files(folder))
    source[0] = records.replace_marker(source[0], rendered)


def setup(app):
    app.connect("source-read", render_records)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
