"""`cifar-lab train`: run a preset, with typed `--set key=value` overrides, into an output folder."""
from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from ..config import parse_assignments, validate
from ..errors import UsageError
from ..io import check_unlocked
from .parsers import DocumentedHelpFormatter

DESCRIPTION = """\
Train a named recipe (a preset) into an output folder. Any config field can be changed with
--set key=value (for example --set dataset=synthetic epochs=3); `cifar-lab train --list` shows the
presets and `--show-config` the resolved config without training. An unknown preset is refused with
the list of presets.
"""

# The exit statuses `main` and `run` return; errors.TrainingDiverged carries the 1.
EPILOG = """\
exit status:
  0    the run finished (all epochs, or stopped early by time_budget_s, target_acc or patience)
  1    the training diverged: the run stopped, summary.json says where, last.pt keeps the last good epoch
  2    bad input (an unknown preset or config key, a wrong value, a missing dataset or checkpoint);
       nothing was trained
  130  interrupted (Ctrl-C); the line printed says how to continue the run
  With --nproc-per-node, the status of the failing rank (2 when any rank refused its input).

examples:
  cifar-lab train --preset fmnist-simplecnn --out runs/fmnist
  cifar-lab train --preset cifar10-simplecnn --set dataset=synthetic epochs=3 --out runs/smoke
  cifar-lab train --out runs/fmnist --resume
"""


def register(sub) -> None:
    parser = sub.add_parser(
        "train", help="train a preset (writes config.json, metrics.csv, summary.json, best.pt, last.pt)",
        formatter_class=DocumentedHelpFormatter, description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--preset", help="recipe name (`cifar-lab train --list` shows them); required for a new run")
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override config fields, e.g. epochs=3 dataset=synthetic ast.target=0.1")
    parser.add_argument("--out", metavar="DIR", help="output folder (created; required unless --show-config/--list)")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in DIR/last.pt (--out DIR)")
    parser.add_argument("--resume-from", metavar="FILE",
                        help="continue from this checkpoint of a run (e.g. DIR/epoch_003.pt), into --out "
                             "(default: the checkpoint's folder)")
    parser.add_argument("--list", action="store_true", help="list the presets and exit")
    parser.add_argument("--show-config", action="store_true", help="print the resolved config and exit")
    launch = parser.add_argument_group(
        "several processes", "launch this command through torchrun (torch.distributed.run): DDP on gloo (CPU)\n"
                             "or NCCL (one GPU per process); --set batch_size is per process")
    launch.add_argument("--nproc-per-node", type=int, metavar="N",
                        help="processes on this machine (default: one process, no torchrun)")
    launch.add_argument("--nnodes", default="1", metavar="N", help="machines (or MIN:MAX)")
    launch.add_argument("--node-rank", type=int, metavar="R", help="this machine's rank (multi-node)")
    launch.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="c10d rendezvous address (multi-node)")
    launch.add_argument("--max-restarts", type=int, default=0, metavar="K",
                        help="restart the group up to K times after a failure; it resumes from DIR/last.pt")
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
    from .. import presets

    if args.list:
        for name, text in presets.describe().items():
            print(f"{name:28s} {text}")
        return 0
    refuse_flags_resume_ignores(args)
    if args.nproc_per_node is not None:
        return launch_processes(args)
    return train_in_this_process(args)


def launch_processes(args) -> int:
    """`--nproc-per-node N`: check what can be checked here, then start N copies of this command."""
    from .. import distributed, presets
    from ..engine.runtime import resolve_device

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
    distributed.check_process_count(args.nproc_per_node, resolve_device(device).type, args.force)
    # torchrun turns Ctrl-C (and SIGTERM) into its own SignalException after stopping the ranks.
    from torch.distributed.elastic.multiprocessing.api import SignalException

    try:
        status = distributed.launch(own_command(args), **options)
    except (KeyboardInterrupt, SignalException) as exc:
        print(interrupted_line(args.out or (args.resume_from and str(Path(args.resume_from).parent)),
                               launch_flags(args)), file=sys.stderr)
        return 128 + int(getattr(exc, "sigval", 2))
    if status and status != 2:  # 2: a rank already printed the one-line usage error
        print(f"cifar-lab train: error: the {args.nproc_per_node}-process run failed (exit status {status}); "
              f"rank 0's message is above", file=sys.stderr)
    return status


def train_in_this_process(args) -> int:
    """Train (a new run, or a resumed one) here; under torchrun this is what each rank runs."""
    from .. import distributed, presets
    from ..engine import train

    if distributed.restart_count() and args.out and (Path(args.out) / "last.pt").exists() and not args.resume_from:
        args.resume, args.set, args.preset = True, [], None  # torchrun restarted the group: continue the run
    if args.resume_from:
        args.out = args.out or str(Path(args.resume_from).parent)
        start = lambda: train(None, args.out, resume_from=args.resume_from)  # noqa: E731
    elif args.resume:
        if not args.out:
            raise UsageError("--resume needs --out DIR, the folder of the run to continue")
        start = lambda: train(None, args.out, resume=True)  # noqa: E731
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
        start = lambda: train(config, args.out)  # noqa: E731
    try:
        result = start()
    except KeyboardInterrupt:
        if not distributed.launched():  # under torchrun the launcher says it, once
            print(interrupted_line(args.out), file=sys.stderr)
        return 130
    s = result.summary
    if not distributed.is_main():
        return 0  # rank 0 reports the run
    print(f"done: best test accuracy {s['best_acc']:.4f} (epoch {s['best_epoch']}), final {s['final_acc']:.4f}, "
          f"{s['epochs']} epochs in {s['wall_seconds']:.1f}s on {s['device']}; results in {args.out}")
    return 0


def launch_flags(args) -> list[str]:
    """The launch options given on this command line, as flags: a resumed run starts the same processes."""
    flags = []
    for name in LAUNCH_OPTIONS:
        value = getattr(args, name)
        if value is not None and not (name == "nnodes" and value == "1") and not (name == "max_restarts" and not value):
            flags += [f"--{name.replace('_', '-')}", str(value)]
    return flags + (["--force"] if args.force else [])


def interrupted_line(out, flags: list[str] = ()) -> str:
    """What Ctrl-C prints: the exact command that continues the run from its last checkpoint, or, when the run
    kept none, that it has to start again."""
    if out and (Path(out) / "last.pt").is_file():
        command = shlex.join(["cifar-lab", "train", "--out", str(out), "--resume", *flags])
        return (f"cifar-lab train: interrupted; the checkpoints in {out} are complete (written atomically); "
                f"continue the run with: {command}")
    return (f"cifar-lab train: interrupted before a checkpoint was kept (the first epoch had not ended, or "
            f"save_checkpoints=false): nothing to continue in {out}; start the run again")
