"""`cifar-lab latency`: inference latency of a registry model or a trained checkpoint, by the book's one
latency definition (`cifar_lab.measure.latency`: warm-up, CUDA events on a GPU, perf_counter on the CPU)."""
from __future__ import annotations

from ..errors import UsageError
from .report import write_json
from .parsers import add_device_argument


def register(sub) -> None:
    parser = sub.add_parser("latency", help="inference latency (mean, std, p50, p90, p95, p99 in ms), batch 1 by default",
                            description="Time single-image forward passes of a registry model (random weights: "
                                        "latency does not depend on them) or of a trained checkpoint.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a registry model, e.g. resnet18_cifar (an unknown name is refused with "
                                        "the list of models)")
    source.add_argument("--checkpoint", help="best.pt or last.pt of a run (model, classes, input size from it)")
    parser.add_argument("--classes", type=int, default=10, help="head size for --model")
    parser.add_argument("--size", type=int, default=None, help="input resolution (default: the model's own)")
    add_device_argument(parser)
    parser.add_argument("--batch-size", type=int, default=1, help="images per forward pass")
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs first")
    parser.add_argument("--runs", type=int, default=100, help="timed runs")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the result as JSON (keys mean_ms, std_ms, p50_ms, p90_ms, p95_ms, p99_ms, img_s)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from .. import models
    from ..engine import checkpoint
    from ..engine.runtime import resolve_device
    from ..measure import latency

    if args.runs < 1 or args.warmup < 0 or args.batch_size < 1:
        raise UsageError(f"--runs and --batch-size must be at least 1 and --warmup 0 or more (got {args.runs}, "
                         f"{args.batch_size}, {args.warmup})")
    device = resolve_device(args.device)
    if args.checkpoint:
        state = checkpoint.load(args.checkpoint)
        model = checkpoint.load_model(state, "cpu")
        name, classes = state["config"]["model"], state["config"]["num_classes"]
        size = args.size or checkpoint.input_record(state)["resolution"]
    else:
        model = models.build(args.model, num_classes=args.classes)
        name, classes = args.model, args.classes
        size = args.size or models.spec(args.model).input_size
    result = {"model": name, "num_classes": classes, "params": models.count_parameters(model),
              **latency(model, size, device, args.warmup, args.runs, args.batch_size, args.channels_last)}
    print(f"{name} batch {args.batch_size} at {size}x{size} on {result['device']}: mean {result['mean_ms']:.2f} ms "
          f"(std {result['std_ms']:.2f}), p50 {result['p50_ms']:.2f}, p90 {result['p90_ms']:.2f}, "
          f"p95 {result['p95_ms']:.2f}, p99 {result['p99_ms']:.2f} ms over {args.runs} runs")
    write_json(args.json, result)
    return 0
