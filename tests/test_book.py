"""The book builds offline in smoke mode with warnings as errors, and every page of _toc.yml is in the HTML.

This executes every notebook once more (the execution cache is off: `execute_notebooks: force`), so it is the
slowest test of the suite; keep it to this one build.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from book_toc import ROOT, toc_files  # tests/ is on sys.path under pytest
from html_overflow import measure


def test_book_builds_with_every_page(tmp_path):
    jupyter_book = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or shutil.which("jupyter-book")
    assert jupyter_book, "jupyter-book is not installed: run scripts/setup.sh"
    env = {**os.environ, "CIFAR_LAB_SMOKE": "1",
           # The notebooks' kernel must be this environment's Python, whatever PATH the caller had.
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([jupyter_book, "build", str(ROOT), "--path-output", str(tmp_path), "-W", "--keep-going",
                           "--builder", "html"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    html = tmp_path / "_build" / "html"
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
