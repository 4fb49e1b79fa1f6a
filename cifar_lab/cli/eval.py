"""`cifar-lab eval`: top-1 and top-5 of a checkpoint on its dataset's test split, and where it came from."""
from __future__ import annotations

from .report import write_json
from .parsers import add_checkpoint_argument, add_json_argument


def register(sub) -> None:
    parser = sub.add_parser("eval", help="evaluate a checkpoint (top-1, top-5) on the test split",
                            description="Rebuild the model and dataset from the config stored in the checkpoint "
                                        "and evaluate it. --set changes data settings (e.g. data_root).")
    add_checkpoint_argument(parser)
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="change settings of the stored config before evaluating, e.g. data_root=DIR "
                             "device=cpu (default: the checkpoint's config as it is)")
    add_json_argument(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from .. import provenance
    from ..config import apply_overrides, from_dict, parse_assignments
    from ..data import registry as data_registry
    from ..engine import checkpoint, evaluate
    from ..engine.runtime import autocast, resolve_device, resolve_precision

    state = checkpoint.load(args.checkpoint)
    config = apply_overrides(from_dict(state["config"]), parse_assignments(args.set))
    config.progress = False
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    data = data_registry.build(config, device)
    model = checkpoint.load_model(state, device)
    result = evaluate(model, data.test_loader, config.num_classes, device, lambda: autocast(device, precision),
                      data.coarse_of_fine)
    report = {"checkpoint": str(args.checkpoint), "model": config.model, "dataset": config.dataset,
              "samples": result["samples"], "top1": result["top1"], "top5": result["top5"]}
    line = f"{config.model} on {config.dataset} test ({result['samples']} images): top-1 {result['top1']:.4f}, " \
           f"top-5 {result['top5']:.4f}"
    if "superclass_top1" in result:
        report["superclass_top1"] = result["superclass_top1"]
        line += f", superclass top-1 {result['superclass_top1']:.4f}"
    print(line)
    # Where the checkpoint came from: the commit, the software and the hardware that trained it.
    environment = state.get("environment")
    report["environment"] = environment
    for detail in provenance.describe(environment):
        print(f"  {detail}")
    write_json(args.json, report)
    return 0
