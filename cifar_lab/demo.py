"""A browser demo of a trained checkpoint: upload or paste an image, or click a test-split example, and see the
top-5 classes as a bar chart (and, for CIFAR-100, the superclass).

Built with Gradio (`gr.Blocks`, `gr.Image`, `gr.Label`, `gr.Examples`; see the Gradio documentation,
gradio.app/docs) on top of the package's `inference.Predictor`, so an upload goes through the one input
preparation (`inference.preparation`): prepared to look like the training images as the checkpoint records them
(for Fashion-MNIST: grey, inverted when its background is light, trimmed, scaled with its aspect ratio kept and
padded with black; never stretched), with a line under the answer naming what was done and a warning when the
prepared image is unlike every training image. A test-split example is already one of the training images' kind
and reaches the model as the test loader gave it. The checkpoint may also be a file `cifar-lab export` wrote
(`export.predictor`). Gradio is an optional dependency (`pip install -e .[demo]`): it is imported only when an
app is built, and the rest of the package works without it.

A file that is not a readable image gets a one-line message in the page (`gr.Error`), and the app keeps
serving. Uploads are limited to `MAX_UPLOAD` bytes (Gradio's `max_file_size`, refused by the server before the
file is stored) and to `inference.MAX_PIXELS` pixels, read from the image's header before anything is decoded
or resized, so a small file that declares gigapixels (a decompression bomb) never reaches the decoder.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Optional

import torch

from .errors import DataError, UsageError
from .export import predictor as load_predictor
from .inference import open_checked, read_image

TOP_K = 5
# CIFAR images are 32 px: show the upload enlarged with sharp pixels rather than as a thumbnail.
PAGE_CSS = "#demo-image img { image-rendering: pixelated; min-width: 192px; min-height: 192px; object-fit: contain; }"
CIFAR_LAYOUT = ("cifar10", "cifar100", "synthetic")
FASHION_MNIST = "fashion_mnist"   # read from its IDX files (`data.fashion_mnist`), served as the model saw it
INSTALL = "pip install -e .[demo]"
MAX_UPLOAD = "25mb"  # Gradio's max_file_size syntax; a 40-megapixel JPEG photograph is about 15 MB


def import_gradio():
    """Gradio, imported lazily and without usage analytics (it must not phone home)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio as gr
    except ImportError:
        raise UsageError(f"the demo needs gradio, which is not installed; install it with `{INSTALL}`") from None
    return gr


class Classifier:
    """A checkpoint's predictions as the page shows them: {class: probability} for the top 5 and, where the
    dataset has superclasses, {superclass: probability} (the sum over its fine classes)."""

    def __init__(self, checkpoint, device: str = "auto", data_root: Optional[str] = None,
                 examples: int = 8, example_dir=None):
        self.predictor = load_predictor(checkpoint, device=device)
        self.config = self.predictor.config
        if data_root is not None:
            self.config.data_root = str(data_root)
        self.coarse_of_fine: Optional[torch.Tensor] = None
        self.coarse_names: Optional[list[str]] = None
        self.examples: list[tuple[Path, str]] = []   # (PNG, true class name)
        self.note = ""
        self.temporary: Optional[Path] = None         # the examples' folder, when this object made it
        self._load_test_split(examples, example_dir)

    def cleanup(self) -> None:
        """Remove the temporary folder of the example PNGs."""
        if self.temporary is not None:
            shutil.rmtree(self.temporary, ignore_errors=True)
            self.temporary = None

    def _load_test_split(self, count: int, example_dir) -> None:
        """Superclasses and a few test images (saved as PNGs for `gr.Examples`), from the run's dataset when it
        is on disk (the CIFAR layout, or Fashion-MNIST's IDX files); without it the demo still classifies
        uploads."""
        if self.config.dataset not in CIFAR_LAYOUT + (FASHION_MNIST,):
            self.note = f"no examples: dataset {self.config.dataset} is not in the CIFAR layout"
            return
        from .data import fashion_mnist
        from .data.cifar_bundle import load_cifar_splits
        from PIL import Image

        quiet = dataclasses.replace(self.config, download=False, progress=False)
        load_splits = fashion_mnist.load_splits if self.config.dataset == FASHION_MNIST else load_cifar_splits
        try:
            _, test = load_splits(quiet)
        except (UsageError, OSError) as exc:
            self.note = f"no examples and no superclasses: the test split cannot be read ({exc})"
            return
        if test.coarse_names and len(test.class_names) == len(self.predictor.class_names):
            self.coarse_of_fine, self.coarse_names = test.coarse_of_fine, list(test.coarse_names)
        if count <= 0:
            return
        if example_dir is None:
            folder = self.temporary = Path(tempfile.mkdtemp(prefix="cifar-lab-demo-"))
        else:
            folder = Path(example_dir)
        folder.mkdir(parents=True, exist_ok=True)
        # The first image of each class in turn, so the examples show different classes.
        picked: list[int] = []
        labels = test.labels.tolist()
        for wanted in range(len(test.class_names)):
            if wanted in labels:
                picked.append(labels.index(wanted))
            if len(picked) == count:
                break
        for index in picked:
            name = test.class_names[labels[index]]
            # A class name may hold a path separator ("T-shirt/top"): the file name keeps letters and digits.
            path = folder / f"test_{index:05d}_{re.sub(r'[^A-Za-z0-9]+', '-', name)}.png"
            pixels = test.images[index]
            # One grey plane (Fashion-MNIST: its channels are one plane repeated) is saved as a grey PNG.
            grey = pixels.shape[0] == 1 or bool((pixels == pixels[:1]).all())
            array = pixels[0].numpy() if grey else pixels.permute(1, 2, 0).contiguous().numpy()
            Image.fromarray(array).save(path)
            self.examples.append((path, name))

    def classify(self, image) -> tuple[dict, Optional[dict]]:
        """({class: probability} of all classes, {superclass: probability} or None) for an image (a path, PIL
        image, array or uint8 tensor); a path that is not a readable image raises DataError."""
        fine, coarse, _ = self.answer(image)
        return fine, coarse

    def answer(self, image) -> tuple[dict, Optional[dict], str]:
        """`classify`'s two answers and the text the page shows under them: the preparation line
        (`inference.Preparation.line`) and, when the prepared image is unlike the training images, the warning."""
        if isinstance(image, (str, Path)):
            image = read_image(image)
        answer = self.predictor.answer(image, top_k=len(self.predictor.class_names))
        ranked = answer.top
        notes = answer.preparation.line + (f"  \n**warning: {answer.warning}**" if answer.warning else "")
        fine = {name: float(p) for name, _, p in ranked}
        if self.coarse_of_fine is None:
            return fine, None, notes
        coarse = torch.zeros(len(self.coarse_names))
        for _, index, p in ranked:
            coarse[int(self.coarse_of_fine[index])] += p
        return fine, {name: float(p) for name, p in zip(self.coarse_names, coarse.tolist())}, notes


def build_app(classifier: Classifier):
    """The Gradio page (`gr.Blocks`) for `classifier`."""
    gr = import_gradio()
    predictor = classifier.predictor
    config = classifier.config
    superclasses = classifier.coarse_names is not None

    def predict(path):
        if path is None:
            return None, None, ""
        try:
            return classifier.answer(path)
        except DataError as exc:  # named by its upload name, not Gradio's cache path
            message = str(exc).replace(str(path), Path(path).name)
            raise gr.Error(f"This file cannot be classified: {message}", print_exception=False) from None

    with gr.Blocks(title=f"cifar-lab demo: {config.model}") as app:
        gr.Markdown(f"## {config.model} trained on {config.dataset}\n"
                    f"{len(predictor.class_names)} classes, {predictor.input_size} px input. Upload or paste an "
                    f"image, or click a test image below. An upload is prepared to look like the training images "
                    f"(never stretched); the line under the answer says how.")
        with gr.Row():
            with gr.Column():
                # type="filepath" with image_mode=None: the file reaches `predict` as it was uploaded and is
                # decoded by the package's `read_image`, which names what is wrong with a bad file.
                image = gr.Image(type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                 label="image", height=260, elem_id="demo-image")
            with gr.Column():
                top = gr.Label(num_top_classes=TOP_K, label="top-5 classes", elem_id="demo-top5")
                coarse = gr.Label(num_top_classes=3, label="superclass", elem_id="demo-superclass",
                                  visible=superclasses)
                notes = gr.Markdown(elem_id="demo-prepared")
        _guard_preprocess(gr, image)
        image.change(predict, inputs=image, outputs=[top, coarse, notes], show_progress="minimal")
        if classifier.examples:
            gr.Examples(examples=[[str(path)] for path, _ in classifier.examples], inputs=image,
                        label="test-split examples (click one)")
        elif classifier.note:
            gr.Markdown(f"*{classifier.note}*")
    return app


def _guard_preprocess(gr, image) -> None:
    """Gradio opens an upload with PIL before the handler runs; a file PIL cannot identify would fail there
    with a generic error. Turn that into the same readable message as the handler's. An upload that declares
    more than `inference.MAX_PIXELS` pixels is refused here, from its header, before Gradio or the handler
    decodes it."""
    original = image.preprocess

    def preprocess(payload):
        name = getattr(payload, "orig_name", None) or "the upload"
        path = getattr(payload, "path", None)
        if path:
            try:
                open_checked(path).close()
            except DataError as exc:
                message = str(exc).replace(str(path), name)
                raise gr.Error(f"This file cannot be classified: {message}", print_exception=False) from None
            except Exception:  # noqa: BLE001 (not an image: the message below says so)
                pass
        try:
            return original(payload)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 (anything PIL raises on a non-image)
            raise gr.Error(f"This file cannot be classified: {name}: not an image file "
                           f"({type(exc).__name__})", print_exception=False) from None

    image.preprocess = preprocess


def serve(classifier: Classifier, *, host: str = "127.0.0.1", port: Optional[int] = None):
    """Serve the demo of `classifier` on http://host:port in a background thread (no share link); returns
    (app, url). `app.close()` stops it."""
    app = build_app(classifier)
    folders = sorted({str(path.parent) for path, _ in classifier.examples})
    app.queue()
    _, url, _ = app.launch(server_name=host, server_port=port, share=False, show_error=True, quiet=True,
                           prevent_thread_lock=True, allowed_paths=folders, ssr_mode=False, css=PAGE_CSS,
                           max_file_size=MAX_UPLOAD)
    return app, url


def launch(checkpoint, *, host: str = "127.0.0.1", port: Optional[int] = None, device: str = "auto",
           data_root: Optional[str] = None, examples: int = 8) -> None:
    """Build the demo of `checkpoint` and serve it until interrupted."""
    classifier = Classifier(checkpoint, device=device, data_root=data_root, examples=examples)
    app, url = serve(classifier, host=host, port=port)
    if classifier.note:
        print(f"note: {classifier.note}", flush=True)
    print(f"cifar-lab demo: serving {checkpoint} on {url} (Ctrl-C stops it)", flush=True)
    if threading.current_thread() is threading.main_thread():  # a terminated server removes its examples too
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        threading.Event().wait()
    finally:
        _close(app)
        classifier.cleanup()


# ---- a screenshot of the page, and the browser steps the tests share ---------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BROWSER_INSTALL = ("install Playwright with `pip install playwright` (never `playwright install`) and Chromium "
                   "from the system's packages: `apt-get install chromium`")


def chromium_path() -> str:
    path = os.environ.get("CIFAR_LAB_CHROMIUM", CHROMIUM)
    if not Path(path).is_file():
        raise UsageError(f"Chromium is not at {path}; {BROWSER_INSTALL} (or set CIFAR_LAB_CHROMIUM)")
    return path


def open_browser(playwright, user_data_dir):
    """A headless Chromium from the system's packages with a fresh profile and no background connections."""
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir), executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1000, "height": 700})


def upload(page, image_path) -> None:
    page.locator("#demo-image input[type=file]").set_input_files(str(image_path))


def read_top5(page, timeout_ms: int = 30000) -> list[tuple[str, float]]:
    """The (class, probability) pairs of the page's top-5 bar chart, once it shows five, most probable first.
    The probability is the bar's exact value (its `meter` element); the text beside it is rounded."""
    page.wait_for_function(
        "() => document.querySelectorAll('#demo-top5 .confidence-set').length >= 5", timeout=timeout_ms)
    out = []
    for row in page.locator("#demo-top5 .confidence-set").all():
        name = row.locator("dt.text").first.inner_text().strip()
        value = row.locator("meter").first.get_attribute("value")
        out.append((name, float(value)))
    return out


def read_error(page, timeout_ms: int = 30000) -> str:
    """The text of the error message the page shows (Gradio's toast)."""
    toast = page.locator("[data-testid='toast-text']").last
    toast.wait_for(timeout=timeout_ms)
    return " ".join(toast.inner_text().split())


def screenshot(checkpoint, out_file, *, image=None, device: str = "auto", data_root: Optional[str] = None,
               max_bytes: int = 150_000) -> Path:
    """Serve the demo on a free local port, upload `image` (default: the first test-split example the model
    classifies correctly) in headless Chromium, wait for the top-5, and save a 1000x700 screenshot of the page
    to `out_file` (a PNG with a 256-colour palette, at most `max_bytes`). The server stops afterwards."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise UsageError(f"the screenshot needs Playwright; {BROWSER_INSTALL}") from None
    import io
    from PIL import Image

    out = Path(out_file)
    classifier = Classifier(checkpoint, device=device, data_root=data_root)
    source = Path(image) if image is not None else _example_for_screenshot(classifier)
    if source is None:
        raise UsageError(f"no image to upload ({classifier.note}); pass one with --screenshot-image FILE")
    app, url = serve(classifier, port=_free_port())
    try:
        with tempfile.TemporaryDirectory(prefix="cifar-lab-chromium-") as profile, sync_playwright() as pw:
            context = open_browser(pw, profile)
            try:
                page = context.new_page()
                page.goto(url, wait_until="networkidle")
                upload(page, source)
                read_top5(page)
                page.wait_for_timeout(500)  # let the bars finish their transition
                png = page.screenshot(full_page=False)
            finally:
                context.close()
    finally:
        _close(app)
        classifier.cleanup()
    # A page of flat colours loses nothing visible in a 256-colour palette, and the file shrinks about 3x.
    buffer = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").quantize(256).save(buffer, format="PNG", optimize=True)
    if buffer.tell() > max_bytes:
        raise UsageError(f"the screenshot is {buffer.tell() / 1000:.0f} kB, over the {max_bytes / 1000:.0f} kB "
                         f"limit; upload a smaller image with --screenshot-image")
    from .io import atomic_write

    atomic_write(out, lambda handle: handle.write(buffer.getvalue()))
    return out


def _example_for_screenshot(classifier: Classifier) -> Optional[Path]:
    """The first test-split example the model classifies correctly (else the first one): the figure shows the
    page at work, not a model's mistake."""
    for path, name in classifier.examples:
        fine, _ = classifier.classify(path)
        if max(fine, key=fine.get) == name:
            return path
    return classifier.examples[0][0] if classifier.examples else None


def _close(app) -> None:
    """Stop the server without Gradio's own line on stdout."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        app.close()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
