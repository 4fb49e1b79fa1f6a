"""`cifar-lab predict`: the top-5 classes of each image according to a trained checkpoint.

A missing, unreadable or oversized image (more than `inference.MAX_PIXELS` pixels, such as a decompression bomb:
refused from its header, before it is decoded) gets a one-line error naming it; the other images, before and
after it, are still answered, and the command exits with status 2 at the end if any image failed.
"""
from __future__ import annotations

import sys

from ..errors import UsageError
from .report import write_json
from .parsers import add_checkpoint_argument, add_device_argument


def register(sub) -> None:
    parser = sub.add_parser("predict", help="top-5 classes of image files according to a checkpoint",
                            description="Classify image files (PNG, JPEG, ... any size) with a checkpoint written by "
                                        "`cifar-lab train`; each image is prepared as the run's test images "
                                        "were (size, crop, normalisation from the checkpoint).")
    add_checkpoint_argument(parser)
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    parser.add_argument("--top-k", type=int, default=5, help="classes per image (default 5)")
    add_device_argument(parser)
    parser.add_argument("--json", help="also write the predictions (and failures) as JSON")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..inference import Predictor, read_image

    if args.top_k < 1:
        raise UsageError(f"--top-k must be at least 1, got {args.top_k}")
    predictor = Predictor(args.checkpoint, device=args.device)
    report = {"checkpoint": str(args.checkpoint), "predictions": {}, "errors": {}}
    for path in args.images:
        try:
            image = read_image(path)
        except UsageError as exc:
            print(f"cifar-lab predict: error: {exc}", file=sys.stderr)
            report["errors"][path] = str(exc)
            continue
        top = predictor.predict(image, top_k=args.top_k)
        report["predictions"][path] = [{"class": name, "id": index, "probability": p} for name, index, p in top]
        print(path)
        for rank, (name, index, p) in enumerate(top, 1):
            print(f"  {rank}. {name:<24} (class {index:>3})  {p:.4f}")
        sys.stdout.flush()
    write_json(args.json, report)
    return 2 if report["errors"] else 0
