"""`cifar-lab summary`: a model's layer table, parameter count, weight size and multiply-accumulates per image
(the numbers come from `cifar_lab.models.describe`)."""
from __future__ import annotations

import re

from ..errors import UsageError
from .report import write_json

# torchinfo (1.8) labels the mult-adds total with the repr of its unit enum under Python 3.11 and later
# ("Total mult-adds (Units.MEGABYTES): 10.91"), and a count of multiply-adds is no number of megabytes: the
# line is written again from the same count, `describe`'s "macs".
MULT_ADDS_LINE = re.compile(r"^Total mult-adds.*$", re.MULTILINE)


def register(sub) -> None:
    parser = sub.add_parser("summary", help="layer table, parameters, size and MACs of a registry model",
                            description="Build a model from the registry (no weights) and describe it: layers, "
                                        "output shapes, parameters, fp32 weight size in MB and "
                                        "multiply-accumulates (MACs) per image.")
    parser.add_argument("--model", required=True,
                        help="a registry model, e.g. resnet18_cifar (an unknown name is refused with the list of "
                             "models)")
    parser.add_argument("--classes", type=int, default=10, help="size of the classifier head")
    parser.add_argument("--size", type=int, default=None,
                        help="input resolution (default: the model's own: 32 for the CIFAR models, 128 for naivenet, 224 for resnet18/resnet50)")
    parser.add_argument("--depth", type=int, default=2, help="nesting depth of the layer table")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the numbers as JSON (key params, macs, size_mb, ...)")
    parser.set_defaults(func=run)


def mult_adds_line(macs: int) -> str:
    return f"Total mult-adds: {macs:,} ({macs / 1e6:,.2f} million per image)"


def run(args) -> int:
    from .. import models

    if args.classes < 1:
        raise UsageError(f"--classes must be at least 1, got {args.classes}")
    if args.size is not None and args.size < 8:
        raise UsageError(f"--size must be at least 8 pixels, got {args.size}")
    info = models.describe(args.model, args.classes, args.size, args.depth)
    print(MULT_ADDS_LINE.sub(mult_adds_line(info["macs"]), info["table"]))
    print(f"{info['model']} ({info['num_classes']} classes, {info['input_size']}x{info['input_size']} input): "
          f"{info['params']:,} parameters, {info['size_mb']:.2f} MB of fp32 weights, "
          f"{info['macs'] / 1e6:,.1f} M MACs per image")
    write_json(args.json, {k: v for k, v in info.items() if k != "table"})
    return 0
