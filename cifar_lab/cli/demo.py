"""`cifar-lab demo`: a checkpoint's classifier in the browser (Gradio, on this machine only).

Upload or paste an image, or click one of the test-split examples, and see the top-5 classes as a bar chart
(for CIFAR-100 and Fashion-MNIST also the superclass), with a line saying how the image was prepared and a
warning when it is unlike the training images. Needs the optional extra: `pip install -e .[demo]`. With `--screenshot
FILE` it instead starts the page, uploads a test image in headless Chromium, saves a screenshot and stops.
"""
from __future__ import annotations

from ..errors import UsageError
from .parsers import add_device_argument


def register(sub) -> None:
    parser = sub.add_parser("demo", help="serve a checkpoint's classifier as a web page on localhost (Gradio)",
                            description="Serve a Gradio page for a checkpoint written by `cifar-lab train` (or a file "
                                        "`cifar-lab export` wrote): upload or paste an image, or click a test "
                                        "image, and see the top-5 classes. An upload is prepared as `cifar-lab "
                                        "predict` prepares it, to look like the training images and never "
                                        "stretched (for Fashion-MNIST: grey, inverted when its background is "
                                        "light, trimmed to the object, scaled with its aspect ratio kept, padded "
                                        "with black); the page says how, and warns when the prepared image's "
                                        "brightness or contrast lies outside the training images'. Needs `pip "
                                        "install -e .[demo]`; no share link is ever created.")
    parser.add_argument("--checkpoint", required=True,
                        help="best.pt or last.pt of a run, or a model file `cifar-lab export` wrote (run on the CPU)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    add_device_argument(parser)
    parser.add_argument("--data-root", help="folder holding the run's dataset, for the test-split examples and "
                                            "CIFAR-100 superclasses (default: the run's data_root)")
    parser.add_argument("--examples", type=int, default=8, help="test images offered as examples (default 8)")
    parser.add_argument("--screenshot", metavar="FILE",
                        help="do not serve: upload a test image in headless Chromium, save a PNG of the page, stop "
                             "(needs playwright and the system's chromium)")
    parser.add_argument("--screenshot-image", metavar="IMAGE", help="with --screenshot: the image to upload "
                                                                    "(default: the first test-split example)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from .. import demo

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be between 1 and 65535, got {args.port}")
    if args.examples < 0:
        raise UsageError(f"--examples must be 0 or more, got {args.examples}")
    demo.import_gradio()  # a missing extra is one line before any work
    if args.screenshot:
        path = demo.screenshot(args.checkpoint, args.screenshot, image=args.screenshot_image, device=args.device,
                               data_root=args.data_root)
        print(f"cifar-lab demo: wrote {path} ({path.stat().st_size / 1000:.0f} kB)")
        return 0
    demo.launch(args.checkpoint, host=args.host, port=args.port, device=args.device, data_root=args.data_root,
                examples=args.examples)
    return 0
