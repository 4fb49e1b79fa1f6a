"""`cifar-lab bench KIND`: the project's path against the reference path, measured in the same run.

Each KIND parses its options here and calls `cifar_lab.bench.<module>.run`, which returns a plain dict; this
module prints it and writes the JSON report.
"""
from __future__ import annotations

from ..bench import PRECISIONS
from .parsers import add_checkpoint_argument, add_json_argument
from .report import write_json

# The datasets `bench data` times; the bench module refuses any other with the list.
DATA_DATASETS = ("synthetic", "cifar10", "cifar100", "fashion_mnist")


def register(sub) -> None:
    parser = sub.add_parser("bench", help="benchmark our path against the plain reference path",
                            description="Each benchmark times the project's path and the reference path in the "
                                        "same run (alternating, median of repeats) and reports the ratio.")
    kinds = parser.add_subparsers(dest="bench_command", metavar="KIND", parser_class=type(parser))
    kinds.required = True

    p = kinds.add_parser("data", help="device-resident loader vs torchvision DataLoader (images/s)",
                         description="Augmented, normalised training batches per second: the device-resident "
                                     "loader against torchvision's DataLoader route, on the same split.")
    p.add_argument("--dataset", default="synthetic", choices=DATA_DATASETS, help="the training split to load")
    p.add_argument("--data-root", default="data", help="folder of the datasets")
    p.add_argument("--batch-size", type=int, default=128, help="images per batch")
    p.add_argument("--images", type=int, default=10000, help="images per timed run")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the reference")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each path, alternating; medians over them")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then the CPU), cpu, cuda or mps")
    add_json_argument(p)
    p.set_defaults(func=bench_data)

    p = kinds.add_parser("train", help="training images/s: engine step vs plain fp32 loop",
                         description="Training images per second of the engine's step (channels_last, autocast, "
                                     "optionally torch.compile) against a plain fp32 PyTorch loop over "
                                     "torchvision's DataLoader, alternating in one run.")
    _model_arguments(p, "our precision")
    p.add_argument("--size", type=int, default=32, help="input size in pixels (images are resized to it)")
    p.add_argument("--batch-size", type=int, default=64, help="images per training step")
    p.add_argument("--steps", type=int, default=6, help="timed training steps per run")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each path, alternating; medians over them")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the reference")
    p.add_argument("--no-channels-last", action="store_true", help="switch channels_last off on our path")
    p.add_argument("--compile", action="store_true", help="torch.compile our model")
    p.set_defaults(func=bench_train)

    p = kinds.add_parser("ast", help="seconds per epoch: dense vs AST packed, AST unpacked and a random subset",
                         description="Times dense training, AST with packing (the presets' mode), AST unpacked "
                                     "and a random subset at the target rate in one run, alternating, and "
                                     "reports each one's ratio to dense (median, min and max over the repeats).")
    _model_arguments(p, "precision of both paths")
    p.add_argument("--batch-size", type=int, default=128, help="images per scoring batch")
    p.add_argument("--batches", type=int, default=10, help="batches per timed epoch (at least 1/target with packing)")
    p.add_argument("--repeats", type=int, default=3, help="timed epochs of each path, alternating; medians over them")
    p.add_argument("--target", type=float, default=0.10, help="AST target activation rate")
    p.add_argument("--gains", default="tuned", choices=("seed", "tuned"),
                   help="the AST controller's gains: the seed code's or the project's tuned ones")
    p.set_defaults(func=bench_ast)

    p = kinds.add_parser("imagenet-data", help="JPEG input pipeline images/s: CPU workers vs GPU decoding",
                         description="Training-pipeline images/s of each JPEG input route (CPU workers with PIL "
                                     "and torchvision transforms; batched decode_jpeg and augmentation on a CUDA "
                                     "GPU), on the same files in the same run.")
    p.add_argument("--root", help="an ImageFolder tree ROOT/train/<wnid>/*.JPEG (default: a generated one)")
    p.add_argument("--data-root", default="data", help="where the generated tree is written")
    p.add_argument("--images", type=int, default=256, help="generated training images")
    p.add_argument("--px", type=int, default=320, help="side of the generated JPEGs (ImageNet-like)")
    p.add_argument("--size", type=int, default=224, help="training crop")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch")
    p.add_argument("--batches", type=int, default=4, help="timed batches per run")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each route, alternating; medians over them")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of both routes")
    add_json_argument(p)
    p.set_defaults(func=bench_imagenet_data)

    p = kinds.add_parser("inference", help="a checkpoint's inference routes: latency, img/s, agreement, size",
                         description="Builds every inference route of a checkpoint's model (eager fp32, "
                                     "channels-last, bf16/fp16 autocast, torch.compile, ONNX Runtime, int8 "
                                     "static quantization), checks each one's top-1 agreement with eager "
                                     "fp32 on the test split, then times them in turn (alternating, median "
                                     "of repeats): batch-1 p50/p95 latency and images/s at --batch-size. "
                                     "best_route is the fastest at batch 1 among routes that agree with "
                                     "eager on at least 0.99 of the test images.")
    add_checkpoint_argument(p)
    p.add_argument("--routes", help="comma-separated subset of: eager, channels_last, autocast, compile, "
                                    "onnxruntime, int8 (default: all; eager is always measured)")
    p.add_argument("--repeats", type=int, default=3, help="rounds over all routes; medians over them")
    p.add_argument("--runs", type=int, default=100, help="timed batch-1 runs per route and round")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs before each timing")
    p.add_argument("--batch-size", type=int, default=64, help="throughput batch size")
    p.add_argument("--batch-runs", type=int, default=5, help="timed batches per route and round")
    p.add_argument("--eval-images", type=int, help="test images for accuracy and agreement (default: all)")
    p.add_argument("--calibration-images", type=int, default=256, help="training images that calibrate int8")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--data-root", help="where the checkpoint's dataset is (default: as in the checkpoint)")
    p.add_argument("--keep", metavar="DIR", help="keep the routes' files (weights, .onnx) in DIR (default: a "
                                                 "temporary folder, removed)")
    p.add_argument("--threads", type=int, help="CPU threads of every route (default: PyTorch's, one per core)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json_argument(p)
    p.set_defaults(func=bench_inference)

    p = kinds.add_parser("ddp", help="training images/s with 1 and N processes; bytes per step of DDP and local SGD",
                         description="Launches `cifar-lab train` through torchrun with 1 and with N processes "
                                     "(alternating, median of repeats), reports the scaling efficiency, and the "
                                     "bytes each rank all-reduces per optimizer step with DDP and post-local SGD.")
    p.add_argument("--nproc-per-node", type=int, default=2, metavar="N", help="processes to compare with one")
    p.add_argument("--preset", default="cifar10-simplecnn", help="the recipe both runs train (on synthetic data)")
    p.add_argument("--train-size", type=int, default=2000, help="synthetic training images")
    p.add_argument("--batch-size", type=int, default=64, help="images per step and process")
    p.add_argument("--epochs", type=int, default=2, help="epochs per run; the last one is timed")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each process count, alternating; medians "
                                                          "over them")
    p.add_argument("--local-sgd-period", type=int, default=4, help="steps between parameter averages")
    p.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (NCCL, one GPU per process)")
    p.add_argument("--data-root", default="data", help="folder of the synthetic dataset")
    add_json_argument(p)
    p.set_defaults(func=bench_ddp)

    p = kinds.add_parser("time-to-accuracy", help="seconds to a test accuracy on Fashion-MNIST: engine vs plain loops",
                         description="Trains a Fashion-MNIST preset until its test accuracy reaches --target, with "
                                     "a plain fp32 PyTorch loop over torchvision's DataLoader, with the same loop "
                                     "informed (bf16 autocast where native, channels_last) and with engine.train, "
                                     "same model and recipe, in turn (plain loop first), --repeats times; reports "
                                     "the seconds, epochs and seconds per epoch each needed, each one's training "
                                     "FLOP/s against the measured peak, the ratios to ours (median, min and max), "
                                     "the CPU's features and the load average before the start. Ctrl-C keeps the "
                                     "completed repeats (marked partial).")
    p.add_argument("--preset", default="fmnist-simplecnn",
                   help="a Fashion-MNIST preset (fmnist-*; `cifar-lab train --list` shows them)")
    p.add_argument("--target", type=float, default=0.90, help="test accuracy to reach")
    p.add_argument("--repeats", type=int, default=3, help="rounds of all paths, at least 3; medians over them")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the plain loops")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="config overrides of both paths, e.g. epochs=10 data_root=DIR")
    add_json_argument(p)
    p.add_argument("--record", metavar="FILE",
                   help="also write the result as a record for the book's reproduction page (stamped with this "
                        "run's commit, date and command); copying it into book/results/ publishes it")
    p.set_defaults(func=bench_time_to_accuracy)


def _model_arguments(parser, precision_help: str) -> None:
    """The options every model benchmark takes."""
    parser.add_argument("--model", default="resnet18_cifar",
                        help="a registry model (an unknown name is refused with the list of models)")
    parser.add_argument("--classes", type=int, default=10, help="size of the classifier head")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS, help=precision_help)
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then the CPU), cpu, cuda or mps")
    parser.add_argument("--data-root", default="data", help="folder of the synthetic dataset the batches come from")
    add_json_argument(parser)


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


def bench_inference(args) -> int:
    from ..bench import inference

    r = inference.run(args.checkpoint, routes=args.routes, repeats=args.repeats, runs=args.runs,
                      warmup=args.warmup, batch_size=args.batch_size, batch_runs=args.batch_runs,
                      eval_images=args.eval_images, calibration_images=args.calibration_images,
                      device=args.device, data_root=args.data_root, work_dir=args.keep,
                      threads=args.threads, progress=not args.no_progress)
    print(f"{r['model']} on {r['device']}, {r['repeats']} repeats; batch-1 latency, "
          f"img/s at batch {r['batch_size']}, top-1 and agreement on {r['eval_images']} test images:")
    for line in inference.table_lines(r):
        print(f"  {line}")
    print(inference.verdict_line(r))
    write_json(args.json, r)
    return 0


def bench_ddp(args) -> int:
    from ..bench import ddp

    r = ddp.run(args.nproc_per_node, args.preset, args.train_size, args.batch_size, args.epochs, args.repeats,
                args.local_sgd_period, args.data_root, device=args.device)
    one, many = r["img_s_1_spread"], r["img_s_n_spread"]
    print(f"{args.preset} on {r['device']} ({r['backend']}), batch {r['batch_size_per_rank']} per process, "
          f"{r['repeats']} repeats:")
    print(f"  1 process:   {one['median']:,.0f} img/s (runs {one['min']:,.0f}-{one['max']:,.0f})")
    print(f"  {r['nproc']} processes: {many['median']:,.0f} img/s (runs {many['min']:,.0f}-{many['max']:,.0f}), "
          f"scaling efficiency {r['efficiency']:.2f}")
    print(f"  bytes all-reduced per step and rank: DDP {r['ddp_bytes_per_step']:,.0f}, local SGD (period "
          f"{r['local_sgd_period']}) {r['local_sgd_bytes_per_step']:,.0f}")
    write_json(args.json, r)
    return 0


def bench_time_to_accuracy(args) -> int:
    from ..bench import time_to_accuracy
    from ..config import parse_assignments

    r = time_to_accuracy.run(args.preset, args.target, args.repeats, args.workers, args.device,
                             parse_assignments(args.set))
    cpu = r["cpu"]
    done = f"{r['repeats']} repeats" if not r["partial"] else \
        f"interrupted: {r['repeats']} of {r['repeats_planned']} repeats completed (partial)"
    print(f"{r['preset']} to test accuracy {r['target_acc']:.2f} on {r['device']} ({cpu['cpu']}, "
          f"{cpu['cpu_capability']}, native bf16 {cpu['cpu_bf16']}), {done}, paths in turn, reference first:")
    for name in time_to_accuracy.PATHS:
        path = r[name]
        words = f"{path['description']} ({path['precision']})"
        per_epoch = path["epoch_seconds"]
        speed = "" if per_epoch is None else (
            f", {per_epoch['median']:.1f} s/epoch (runs {per_epoch['min']:.1f}-{per_epoch['max']:.1f})")
        if path["flop_s"] is not None:
            fraction = f", {path['peak_fraction']['median']:.0%} of peak" if path["peak_fraction"] else ""
            speed += f", {path['flop_s']['median'] / 1e9:.1f} GFLOP/s{fraction}"
        if path["seconds"] is None:
            print(f"  {words:<34} never reached the target in {r['max_epochs']} epochs{speed}")
            continue
        t, e = path["seconds"], path["epochs"]
        print(f"  {words:<34} {t['median']:8.1f} s (runs {t['min']:.1f}-{t['max']:.1f}), {e['median']:g} epochs "
              f"(runs {e['min']}-{e['max']}), reached {path['reached']}{speed}")
    if r["incomparable"]:
        print(f"  no ratio: {r['incomparable']}")
    for key, words in (("ratio", "plain loop / ours"), ("ratio_informed", "informed plain loop / ours"),
                       ("epoch_ratio", "per epoch, plain loop / ours"),
                       ("epoch_ratio_informed", "per epoch, informed plain loop / ours")):
        q = r[key]
        shown = f"{q['median']:.2f}x (runs {q['min']:.2f}-{q['max']:.2f}x)" if q else \
            "none (no repeat in which both paths reached the target)"
        if q or not r["incomparable"]:
            print(f"  {words}: {shown}")
    print(f"  load average before the start {r['load_average_before'][0]:.2f}, {cpu['torch_threads']} torch "
          f"threads: {'quiet' if r['quiet'] else 'not quiet (other work was running)'}")
    write_json(args.json, r)
    if args.record:
        write_json(args.record, time_to_accuracy.stamped_page_record(r))
    return 130 if r["partial"] else 0  # the status of an interrupted command, after its partial result
