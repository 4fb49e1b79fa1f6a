"""`cifar-lab summary`: a model's layer table, parameter count, weight size and multiply-accumulates per image
(the numbers come from `cifar_lab.models.describe`)."""
from __future__ import annotations

from .. import models
from ..errors import UsageError
from .report import write_json


def register(sub) -> None:
    parser = sub.add_parser("summary", help="layer table, parameters, size and MACs of a registry model",
                            description="Build a model from the registry (no weights) and describe it: layers, "
                                        "output shapes, parameters, fp32 weight size in MB and "
                                        "multiply-accumulates (MACs) per image.")
    parser.add_argument("--model", required=True, help=f"one of: {', '.join(models.names())}")
    parser.add_argument("--classes", type=int, default=10, help="size of the classifier head (default 10)")
    parser.add_argument("--size", type=int, default=None,
                        help="input resolution (default: the model's own: 32 for the CIFAR models, 128 for naivenet, 224 for resnet18/resnet50)")
    parser.add_argument("--depth", type=int, default=2, help="nesting depth of the layer table (default 2)")
    parser.add_argument("--json", help="also write the numbers as JSON (key params, macs, size_mb, ...)")
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.classes < 1:
        raise UsageError(f"--classes must be at least 1, got {args.classes}")
    if args.size is not None and args.size < 8:
        raise UsageError(f"--size must be at least 8 pixels, got {args.size}")
    info = models.describe(args.model, args.classes, args.size, args.depth)
    print(info["table"])
    print(f"{info['model']} ({info['num_classes']} classes, {info['input_size']}x{info['input_size']} input): "
          f"{info['params']:,} parameters, {info['size_mb']:.2f} MB of fp32 weights, "
          f"{info['macs'] / 1e6:,.1f} M MACs per image")
    write_json(args.json, {k: v for k, v in info.items() if k != "table"})
    return 0
