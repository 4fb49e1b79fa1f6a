"""`cifar-lab predict`: the top-5 classes of each image according to a trained checkpoint or an exported model.

Each image is prepared to look like the model's training images, as the checkpoint's input record describes
them (`inference.preparation`), and one line under its answer says what was done; a second line warns when the
prepared image is still unlike every training image (`inference.unlike_training`). A file written by `cifar-lab
export` (ONNX, PT2, TorchScript) is answered through the same preparation, on the CPU.

A missing, unreadable or oversized image (more than `inference.MAX_PIXELS` pixels, such as a decompression bomb:
refused from its header, before it is decoded) gets a one-line error naming it; the other images, before and
after it, are still answered, and the command exits with status 2 at the end if any image failed.
"""
from __future__ import annotations

import sys

from ..errors import UsageError
from .report import write_json
from .parsers import add_device_argument

DESCRIPTION = (
    "Classify image files (PNG, JPEG, ... any size) with a checkpoint written by `cifar-lab train` or a file "
    "written by `cifar-lab export`. Each image is prepared to look like the model's training images, as the "
    "checkpoint records them, and is never stretched. Fashion-MNIST: converted to grey, inverted when its border is "
    "light (the dataset shows light garments on black) and that background brought to black, trimmed to the object, "
    "scaled so that its longer side is 28 px with the aspect ratio kept, padded with black to 28x28 (and to 32x32 "
    "where the run padded its images); a 28x28 or 32x32 image is taken as one of the dataset's and only padded as "
    "in training. CIFAR-style runs: scaled so that its longer side is 32 px, aspect ratio kept, padded with its own "
    "border colour. ImageNet-style runs: the shorter side resized to the eval resize, then a centre crop. Then it "
    "is normalised as in training. A line under each answer names the preparation, and a warning follows when the "
    "prepared image's brightness or contrast lies outside the range of the training images': the answer may then "
    "be meaningless.")


def register(sub) -> None:
    parser = sub.add_parser("predict", help="top-5 classes of image files according to a checkpoint",
                            description=DESCRIPTION)
    parser.add_argument("--checkpoint", required=True,
                        help="best.pt or last.pt of a run, or a model file `cifar-lab export` wrote (.onnx, .pt2, "
                             "TorchScript .pt; run on the CPU)")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    parser.add_argument("--top-k", type=int, default=5, help="classes per image (default 5)")
    add_device_argument(parser)
    parser.add_argument("--json", help="also write the predictions, preparations and warnings (and failures) as "
                                       "JSON to this file (default: none)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..export import predictor as load_predictor
    from ..inference import read_image

    if args.top_k < 1:
        raise UsageError(f"--top-k must be at least 1, got {args.top_k}")
    predictor = load_predictor(args.checkpoint, device=args.device)
    report = {"checkpoint": str(args.checkpoint), "predictions": {}, "prepared": {}, "warnings": {}, "errors": {}}
    for path in args.images:
        try:
            image = read_image(path)
        except UsageError as exc:
            print(f"cifar-lab predict: error: {exc}", file=sys.stderr)
            report["errors"][path] = str(exc)
            continue
        answer = predictor.answer(image, top_k=args.top_k)
        report["predictions"][path] = [{"class": name, "id": index, "probability": p}
                                       for name, index, p in answer.top]
        report["prepared"][path] = answer.preparation.line
        print(path)
        for rank, (name, index, p) in enumerate(answer.top, 1):
            print(f"  {rank}. {name:<24} (class {index:>3})  {p:.4f}")
        print(f"  {answer.preparation.line}")
        if answer.warning:
            report["warnings"][path] = answer.warning
            print(f"  warning: {answer.warning}")
        sys.stdout.flush()
    write_json(args.json, report)
    return 2 if report["errors"] else 0
