"""`cifar-lab train`: run a preset, with typed `--set key=value` overrides, into an output folder."""
from __future__ import annotations

import json
from pathlib import Path

from .. import presets
from ..config import parse_assignments, validate
from ..errors import UsageError


def register(sub) -> None:
    names = ", ".join(presets.names())
    parser = sub.add_parser(
        "train", help="train a preset (writes config.json, metrics.csv, summary.json, best.pt, last.pt)",
        description=f"Train a named recipe. Presets: {names}. Any config field can be changed with "
                    f"--set key=value (for example --set dataset=synthetic epochs=3); `cifar-lab train "
                    f"--list` shows the presets and `--show-config` the resolved config without training.")
    parser.add_argument("--preset", help="recipe name")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override config fields, e.g. epochs=3 dataset=synthetic ast.target=0.1")
    parser.add_argument("--out", help="output folder (created; required unless --show-config/--list)")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in OUT/last.pt")
    parser.add_argument("--resume-from", metavar="FILE",
                        help="continue from this checkpoint of a run (e.g. OUT/epoch_003.pt), into --out "
                             "(default: the checkpoint's folder)")
    parser.add_argument("--list", action="store_true", help="list the presets and exit")
    parser.add_argument("--show-config", action="store_true", help="print the resolved config and exit")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..engine import train

    if args.list:
        for name, text in presets.describe().items():
            print(f"{name:28s} {text}")
        return 0
    if args.resume_from:
        if args.set or args.preset:
            raise UsageError("--resume-from continues a run with its saved config; --preset and --set cannot "
                             "change it")
        args.out = args.out or str(Path(args.resume_from).parent)
        result = train(None, args.out, resume_from=args.resume_from)
    elif args.resume:
        if not args.out:
            raise UsageError("--resume needs --out DIR, the folder of the run to continue")
        if args.set:
            raise UsageError("--resume continues a run with its saved config; --set cannot change it")
        result = train(None, args.out, resume=True)
    else:
        if not args.preset:
            raise UsageError(f"--preset is required; choose one of: {', '.join(presets.names())}")
        config = validate(presets.resolve(args.preset, parse_assignments(args.set)))
        if args.show_config:
            print(json.dumps(config.to_dict(), indent=2))
            return 0
        if not args.out:
            raise UsageError("--out DIR is required: the folder for config.json, metrics.csv, checkpoints")
        if (Path(args.out) / "last.pt").exists():
            raise UsageError(f"{args.out} already holds a run; continue it with --resume or choose another --out")
        result = train(config, args.out)
    s = result.summary
    print(f"done: best test accuracy {s['best_acc']:.4f} (epoch {s['best_epoch']}), final {s['final_acc']:.4f}, "
          f"{s['epochs']} epochs in {s['wall_seconds']:.1f}s on {s['device']}; results in {args.out}")
    return 0
