"""What a reader of the built book sees overflow: code, printed output and tables wider than the text column.

The pages are laid out by a real browser (headless Chromium from the system's packages, driven by Playwright)
at a common laptop width, and every code block, text output and output table is measured: it overflows if its
content is wider than its box (a horizontal scroll bar) or its box reaches past the article column.
"""
import shutil
from pathlib import Path

VIEWPORT = {"width": 1280, "height": 900}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MEASURE = """() => {
  const column = (document.querySelector('article.bd-article') || document.querySelector('main'))
                 .getBoundingClientRect();
  const found = [];
  for (const block of document.querySelectorAll('article pre, div.cell_output table')) {
    const box = block.getBoundingClientRect();
    if (block.scrollWidth > block.clientWidth + 1 || box.right > column.right + 1) {
      const kind = block.closest('.cell_input') ? 'code' : block.closest('.cell_output') ? 'output' : 'text';
      const lines = block.innerText.split('\\n');
      const widest = lines.reduce((a, b) => (a.length >= b.length ? a : b), '');
      found.push({kind: kind, overflow_px: Math.round(Math.max(block.scrollWidth - block.clientWidth,
                                                                box.right - column.right)),
                  line: widest.slice(0, 100)});
    }
  }
  return {column_px: Math.round(column.width), blocks: document.querySelectorAll('article pre').length,
          overflowing: found};
}"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, ("Chromium is not installed: scripts/test.sh installs it (Debian: apt-get install chromium); "
                   "the book's layout test needs a real browser")
    return found


def measure(pages: list[Path]) -> dict[str, dict]:
    """Page name -> {column_px, blocks, overflowing: [{kind, overflow_px, line}]}."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as missing:
        raise AssertionError("playwright is not installed: run scripts/setup.sh") from missing
    results = {}
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            for path in pages:
                page.goto(path.resolve().as_uri())
                results[path.stem] = page.evaluate(MEASURE)
        finally:
            browser.close()
    return results
