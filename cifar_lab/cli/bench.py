"""`cifar-lab bench KIND`: the project's path against the reference path, measured in the same run.

Each KIND parses its options here and calls `cifar_lab.bench.<module>.run`, which returns a plain dict; this
module prints it and writes the JSON report.
"""
from __future__ import annotations

from .. import models
from ..bench import PRECISIONS
from .report import write_json


def register(sub) -> None:
    parser = sub.add_parser("bench", help="benchmark our path against the plain reference path",
                            description="Each benchmark times the project's path and the reference path in the "
                                        "same run (alternating, median of repeats) and reports the ratio.")
    kinds = parser.add_subparsers(dest="bench_command", metavar="KIND", parser_class=type(parser))
    kinds.required = True

    p = kinds.add_parser("data", help="device-resident loader vs torchvision DataLoader (images/s)")
    p.add_argument("--dataset", default="synthetic", help="synthetic (default), cifar10 or cifar100")
    p.add_argument("--data-root", default="data")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--images", type=int, default=10000, help="images per timed run (default 10000)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the reference (default 2)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", help="write the result as JSON")
    p.set_defaults(func=bench_data)

    p = kinds.add_parser("train", help="training images/s: engine step vs plain fp32 loop")
    _model_arguments(p, "our precision")
    p.add_argument("--size", type=int, default=32, help="input size in pixels (images are resized to it)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=6, help="timed training steps per run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the reference")
    p.add_argument("--no-channels-last", action="store_true", help="switch channels_last off on our path")
    p.add_argument("--compile", action="store_true", help="torch.compile our model")
    p.set_defaults(func=bench_train)

    p = kinds.add_parser("ast", help="seconds per epoch: dense vs AST packed, AST unpacked and a random subset",
                         description="Times dense training, AST with packing (the presets' mode), AST unpacked "
                                     "and a random subset at the target rate in one run, alternating, and "
                                     "reports each one's ratio to dense (median, min and max over the repeats).")
    _model_arguments(p, "precision of both paths")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--batches", type=int, default=10, help="batches per timed epoch (at least 1/target with packing)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--target", type=float, default=0.10, help="AST target activation rate")
    p.add_argument("--gains", default="tuned", choices=("seed", "tuned"))
    p.set_defaults(func=bench_ast)

    p = kinds.add_parser("imagenet-data", help="JPEG input pipeline images/s: CPU workers vs GPU decoding",
                         description="Training-pipeline images/s of each JPEG input route (CPU workers with PIL "
                                     "and torchvision transforms; batched decode_jpeg and augmentation on a CUDA "
                                     "GPU), on the same files in the same run.")
    p.add_argument("--root", help="an ImageFolder tree ROOT/train/<wnid>/*.JPEG (default: a generated one)")
    p.add_argument("--data-root", default="data", help="where the generated tree is written (default: data)")
    p.add_argument("--images", type=int, default=256, help="generated training images (default: 256)")
    p.add_argument("--px", type=int, default=320, help="side of the generated JPEGs (default: 320, ImageNet-like)")
    p.add_argument("--size", type=int, default=224, help="training crop (default: 224)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=4, help="timed batches per run (default: 4)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of both routes (default: 2)")
    p.add_argument("--json", help="write the result as JSON")
    p.set_defaults(func=bench_imagenet_data)


def _model_arguments(parser, precision_help: str) -> None:
    """The options every model benchmark takes."""
    parser.add_argument("--model", default="resnet18_cifar", help=f"one of: {', '.join(models.names())}")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--precision", default="auto", help=f"{precision_help}: {', '.join(PRECISIONS)}")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--json", help="write the result as JSON")


def _report_ratio(title: str, result: dict, json_path) -> int:
    spread = result["ratio_spread"]
    print(f"{title}: ours {result['ours_img_s']:,.0f} img/s, reference {result['reference_img_s']:,.0f} img/s, "
          f"ratio {result['ratio']:.2f}x (runs {spread['min']:.2f}-{spread['max']:.2f}x, {result['repeats']} "
          f"repeats)")
    write_json(json_path, result)
    return 0


def bench_data(args) -> int:
    from ..bench import data

    result = data.run(args.dataset, args.data_root, args.batch_size, args.images, args.workers, args.repeats,
                      args.device)
    title = f"data pipeline on {result['device']} (batch {args.batch_size}, {args.workers} reference workers)"
    return _report_ratio(title, result, args.json)


def bench_train(args) -> int:
    from ..bench import train

    result = train.run(args.model, args.classes, args.size, args.batch_size, args.steps, args.repeats, args.workers,
                       not args.no_channels_last, args.compile, args.precision, args.device, args.data_root)
    layout = ", channels_last" if result["channels_last"] else ""
    title = f"training {args.model} at {args.size}px on {result['device']} (batch {args.batch_size}; ours " \
            f"{result['precision']}{layout})"
    return _report_ratio(title, result, args.json)


def bench_ast(args) -> int:
    from ..bench import ast

    r = ast.run(args.model, args.classes, args.batch_size, args.batches, args.repeats, args.target, args.gains,
                args.precision, args.device, args.data_root)
    print(f"AST vs dense, {args.model} on {r['device']} ({r['precision']}, {r['batches_per_epoch']} batches of "
          f"{args.batch_size} per epoch, {r['repeats']} repeats, target {r['target']:g}):")
    for name, path in r["paths"].items():
        ratio = r.get(f"ratio_{name}")
        versus = (f"{ratio['median']:.2f} of dense (runs {ratio['min']:.2f}-{ratio['max']:.2f})" if ratio
                  else "the reference")
        print(f"  {name:<9} {path['epoch_s']:6.2f} s/epoch  {versus:<34} {path['optimizer_steps']:>3} optimizer "
              f"steps, {path['samples_trained']:>5} samples trained, compute {path['compute_vs_dense_flops']:.2f} "
              f"(FLOPs) / {path['compute_vs_dense_model']:.2f} (1:3 model)")
    write_json(args.json, r)
    return 0


def bench_imagenet_data(args) -> int:
    from ..bench import imagenet

    r = imagenet.run(args.root, args.data_root, args.images, args.px, args.size, args.batch_size, args.batches,
                     args.repeats, args.workers)
    print(f"JPEG training pipeline on {r['files']} files ({r['root']}), {r['size']}px crops, batch "
          f"{r['batch_size']}, {r['workers']} workers:")
    print(f"  cpu route (DataLoader workers, PIL decode + torchvision transforms): "
          f"{r['routes']['cpu']['img_s']:,.0f} img/s")
    if "gpu" in r["routes"]:
        print(f"  gpu route (decode_jpeg on {r['gpu_name']}, augmentation on the GPU): "
              f"{r['routes']['gpu']['img_s']:,.0f} img/s, {r['ratio_gpu_over_cpu']:.2f}x the cpu route")
    else:
        print("  gpu route: not measured - it decodes JPEG batches on a CUDA GPU "
              "(torchvision.io.decode_jpeg(device='cuda')) and this machine has no CUDA device")
    write_json(args.json, r)
    return 0
