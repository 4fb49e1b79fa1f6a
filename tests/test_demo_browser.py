"""`cifar-lab demo` in a real browser: the command serves the page on a free localhost port, headless Chromium
(the system's package, driven by Playwright) uploads a PNG and reads the five classes with their probabilities
from the page; a file that is not an image gets a readable message and the server keeps answering.

Requirements (the test fails, never skips, without them): `pip install -e .[demo] playwright` and Chromium
from the system's packages (`apt-get install chromium`; never `playwright install`).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from cifar_lab.config import TrainConfig, apply_overrides
from cifar_lab.engine.trainer import train
from local_server import free_port, stop  # tests/ is on sys.path under pytest

INSTALL = ("install them with `pip install -e .[demo] playwright` and Chromium with `apt-get install chromium` "
           "(never `playwright install`)")
START_TIMEOUT_S = 120


def tiny_run(root: Path, classes: int = 10) -> Path:
    config = apply_overrides(TrainConfig(), {
        "dataset": "synthetic", "num_classes": classes, "synthetic_train_size": 200, "synthetic_test_size": 100,
        "model": "simple_cnn", "epochs": 1, "batch_size": 50, "optimizer": "adamw", "lr": 2e-3,
        "schedule": "constant", "progress": False, "device": "cpu", "data_root": str(root / "data")})
    train(config, root / "run")
    return root / "run" / "best.pt"


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def browser_tools():
    """Playwright's sync API and the Chromium binary, or a failure that says how to install them."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"the demo's browser test needs Playwright (python); {INSTALL}")
    try:
        import gradio  # noqa: F401
    except ImportError:
        pytest.fail(f"the demo needs gradio; {INSTALL}")
    from cifar_lab import demo

    if not Path(os.environ.get("CIFAR_LAB_CHROMIUM", demo.CHROMIUM)).is_file():
        pytest.fail(f"the demo's browser test needs Chromium at {demo.CHROMIUM} (or CIFAR_LAB_CHROMIUM); {INSTALL}")
    return sync_playwright


@pytest.fixture(scope="module")
def served(tmp_path_factory, browser_tools):
    """`cifar-lab demo` on a free port, answering; always terminated."""
    root = tmp_path_factory.mktemp("demo")
    checkpoint = tiny_run(root)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    log = open(root / "demo.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "cifar_lab", "demo", "--checkpoint", str(checkpoint), "--port", str(port),
         "--data-root", str(root / "data"), "--examples", "4"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not answers(url):
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"cifar-lab demo exited with {process.returncode}: {log.read()[-2000:]}")
            if time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"cifar-lab demo did not answer on {url} within {START_TIMEOUT_S} s: {log.read()[-2000:]}")
            time.sleep(0.5)
        yield {"url": url, "root": root, "checkpoint": checkpoint, "process": process}
    finally:
        stop(process)
        log.close()


@pytest.fixture(scope="module")
def page(served, browser_tools):
    from cifar_lab import demo

    with tempfile.TemporaryDirectory(prefix="cifar-lab-chromium-") as profile, browser_tools() as playwright:
        context = demo.open_browser(playwright, profile)
        try:
            page = context.new_page()
            page.set_default_timeout(30000)
            page.goto(served["url"], wait_until="networkidle")
            yield page
        finally:
            context.close()


def test_uploaded_png_shows_five_classes_with_probabilities(served, page):
    from PIL import Image

    from cifar_lab import demo
    from cifar_lab.data import synthetic

    class_names = synthetic.class_names(10)
    png = served["root"] / "upload.png"
    Image.new("RGB", (48, 40), (30, 160, 200)).save(png)  # any size: the page prepares it like a test image
    demo.upload(page, png)
    top5 = demo.read_top5(page)
    assert len(top5) == 5
    names = [name for name, _ in top5]
    probabilities = [p for _, p in top5]
    assert set(names) <= set(class_names) and len(set(names)) == 5
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0 + 1e-4


def test_bad_file_gets_a_readable_message_and_the_server_keeps_serving(served, page):
    from cifar_lab import demo

    bad = served["root"] / "notes.png"
    bad.write_text("not an image at all\n")
    demo.upload(page, bad)
    message = demo.read_error(page)
    assert "cannot be classified" in message and "notes.png" in message and "not an image" in message
    assert served["process"].poll() is None and answers(served["url"])
    # The same page still classifies: a click on a test-split example gives a top-5 again.
    page.reload(wait_until="networkidle")
    page.locator(".gallery-item, [data-testid='examples'] button, table.examples-table td").first.click()
    assert len(demo.read_top5(page)) == 5


def test_missing_gradio_is_one_line_naming_the_extra(tmp_path):
    code = ("import sys; sys.modules['gradio'] = None; from cifar_lab.cli.main import main; "
            f"sys.exit(main(['demo', '--checkpoint', {str(tmp_path / 'x.pt')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install -e .[demo]" in lines[0]


def test_cifar100_style_checkpoint_also_gives_the_superclass(tmp_path):
    from cifar_lab.demo import Classifier

    checkpoint = tiny_run(tmp_path, classes=100)
    classifier = Classifier(checkpoint, data_root=str(tmp_path / "data"), examples=2, example_dir=tmp_path / "ex")
    assert len(classifier.examples) == 2 and all(path.is_file() for path, _ in classifier.examples)
    fine, coarse = classifier.classify(classifier.examples[0][0])
    assert len(fine) == 100 and len(coarse) == 20
    assert sum(coarse.values()) == pytest.approx(1.0, abs=1e-4)
    # A superclass's probability is the sum over its five fine classes (synthetic: class k in group k // 5).
    names = list(classifier.predictor.class_names)
    assert coarse["group_00"] == pytest.approx(sum(fine[n] for n in names[:5]), abs=1e-5)
