"""`cifar-lab train`: run a preset, with typed `--set key=value` overrides, into an output folder."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .. import distributed, presets
from ..config import parse_assignments, validate
from ..errors import UsageError
from ..io import check_unlocked


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
    launch = parser.add_argument_group(
        "several processes", "launch this command through torchrun (torch.distributed.run): DDP on gloo (CPU) or "
                             "NCCL (one GPU per process); --set batch_size is per process")
    launch.add_argument("--nproc-per-node", type=int, metavar="N", help="processes on this machine")
    launch.add_argument("--nnodes", default="1", metavar="N", help="machines (or MIN:MAX); default 1")
    launch.add_argument("--node-rank", type=int, metavar="R", help="this machine's rank (multi-node)")
    launch.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="c10d rendezvous address (multi-node)")
    launch.add_argument("--max-restarts", type=int, default=0, metavar="K",
                        help="restart the group up to K times after a failure; it resumes from OUT/last.pt")
    launch.add_argument("--force", action="store_true",
                        help="start more CPU processes than this machine has cores (refused otherwise)")
    parser.set_defaults(func=run)


LAUNCH_OPTIONS = ("nproc_per_node", "nnodes", "node_rank", "rdzv_endpoint", "max_restarts")


def own_command(args) -> list[str]:
    """This train command without the launch options: what every process runs."""
    command = ["train"]
    for flag, value in (("--preset", args.preset), ("--out", args.out), ("--resume-from", args.resume_from)):
        if value:
            command += [flag, value]
    if args.resume:
        command.append("--resume")
    if args.set:
        command += ["--set", *args.set]
    return command


def refuse_flags_resume_ignores(args) -> None:
    """A resumed run takes everything from its checkpoint: a flag that would change or print the config is
    refused, not silently ignored."""
    if not (args.resume or args.resume_from):
        return
    flag = "--resume-from" if args.resume_from else "--resume"
    if args.preset or args.set:
        raise UsageError(f"{flag} continues a run with its saved config; --preset and --set cannot change it "
                         f"(leave them out, or start a new run with another --out)")
    if args.show_config:
        raise UsageError(f"{flag} continues a run with its saved config; --show-config prints a new run's config "
                         f"(the run's own is in its folder's config.json)")


def run(args) -> int:
    from ..engine import train

    if args.list:
        for name, text in presets.describe().items():
            print(f"{name:28s} {text}")
        return 0
    refuse_flags_resume_ignores(args)
    if args.nproc_per_node is not None:
        if args.show_config:
            raise UsageError("--show-config prints the config without training; leave out --nproc-per-node")
        options = {name: getattr(args, name) for name in LAUNCH_OPTIONS}
        distributed.launch_arguments(own_command(args), **options)  # bad launch options: one line, nothing run
        device = "auto"  # a resumed run's own device setting is read by its ranks
        if not (args.resume or args.resume_from):
            if not args.preset:
                raise UsageError(f"--preset is required; choose one of: {', '.join(presets.names())}")
            device = validate(presets.resolve(args.preset, parse_assignments(args.set))).device
            if not args.out:
                raise UsageError("--out DIR is required: the folder for config.json, metrics.csv, checkpoints")
            if (Path(args.out) / "last.pt").exists():
                check_unlocked(args.out, "cifar-lab run")  # a run still writing there: name it
                raise UsageError(f"{args.out} already holds a run; continue it with --resume or choose another "
                                 f"--out")
        from ..engine.runtime import resolve_device

        distributed.check_process_count(args.nproc_per_node, resolve_device(device).type, args.force)
        status = distributed.launch(own_command(args), **options)
        if status and status != 2:  # 2: a rank already printed the one-line usage error
            print(f"cifar-lab train: error: the {args.nproc_per_node}-process run failed (exit status {status}); "
                  f"rank 0's message is above", file=sys.stderr)
        return status
    if distributed.restart_count() and args.out and (Path(args.out) / "last.pt").exists() and not args.resume_from:
        args.resume, args.set, args.preset = True, [], None  # torchrun restarted the group: continue the run
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
            check_unlocked(args.out, "cifar-lab run")  # a run still writing there: name it
            raise UsageError(f"{args.out} already holds a run; continue it with --resume or choose another --out")
        result = train(config, args.out)
    s = result.summary
    if not distributed.is_main():
        return 0  # rank 0 reports the run
    print(f"done: best test accuracy {s['best_acc']:.4f} (epoch {s['best_epoch']}), final {s['final_acc']:.4f}, "
          f"{s['epochs']} epochs in {s['wall_seconds']:.1f}s on {s['device']}; results in {args.out}")
    return 0
