"""`cifar-lab export`: a checkpoint's model as an ONNX, TorchScript or PT2 file that needs nothing else.

The file carries the class names and the input record (sizes, normalisation, the dataset's conventions), and is
written only after it has been loaded back and checked against the eager model on test images
(`cifar_lab.export`). `cifar-lab predict --checkpoint FILE` answers with it as with the checkpoint.
"""
from __future__ import annotations

from .parsers import add_checkpoint_argument
from .report import write_json

# `export.FORMATS` and `export.TOLERANCE`, written out so that building the parser does not load PyTorch (the
# export tests hold them equal to the library's).
FORMATS = ("onnx", "torchscript", "pt2")
TOLERANCE = 1e-4


def register(sub) -> None:
    parser = sub.add_parser(
        "export", help="export a checkpoint to ONNX, TorchScript or PT2 (validated before it is kept)",
        description="Export the model of a checkpoint with its class names and normalisation inside the file. "
                    "ONNX has a dynamic batch dimension. The file is loaded back and compared with the eager "
                    "fp32 model on test images before it is kept; a failing export writes nothing. Classify images "
                    "with it through `cifar-lab predict --checkpoint FILE`, or load it back with "
                    "cifar_lab.export.load(FILE).")
    add_checkpoint_argument(parser)
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="onnx (ONNX Runtime and others), torchscript (torch.jit) or pt2 (torch.export)")
    parser.add_argument("--out", required=True, help="the file to write, e.g. model.onnx")
    parser.add_argument("--images", type=int, default=64, help="test images to validate on (default 64)")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE,
                        help=f"allowed max abs difference of the logits, relative to their scale "
                             f"max(1, largest |logit|) (default {TOLERANCE:g})")
    parser.add_argument("--data-root", help="where the checkpoint's dataset is (default: as in the checkpoint)")
    parser.add_argument("--json", help="also write the result as JSON")
    parser.set_defaults(func=run)


def run(args) -> int:
    from .. import export

    result = export.export(args.checkpoint, args.format, args.out, images=args.images, tolerance=args.tolerance,
                           data_root=args.data_root)
    print(f"wrote {result['path']} ({result['format']}, {result['size_mb']:.1f} MB, {result['classes']} classes, "
          f"{result['resolution']} px, dynamic batch): max abs difference to eager fp32 "
          f"{result['max_abs_diff']:.2g} on {result['images']} test images (allowed {result['allowed_diff']:.2g}: "
          f"{result['tolerance']:g} x the largest |logit|, {result['logit_scale']:.3g})")
    write_json(args.json, result)
    return 0
