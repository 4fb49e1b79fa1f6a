"""Execute a notebook once per point of a grid (every combination of the --grid values), each point into its own
folder DIR/<point name>, with --jobs points side by side. DIR/results.csv lists every point: its parameters,
status (ok or failed), the error line of a failed point and the scalar values of its metrics.json. A failed
point, even one whose worker process was killed, does not stop the others (exit code 1 at the end). Each of the
--jobs workers gets an equal share of the CPU cores as its thread count (OMP_NUM_THREADS, unless set). Running
the same sweep again skips the points already finished with the same parameters and the same code: the same
commit and the same uncommitted changes.
"""
from __future__ import annotations

import sys

from .parsers import add_notebook_argument, documented_parser
from .run import paths_from_here


EPILOG = """\
Values are read like `cifar-lab run -p` values (0.05 -> number, true -> bool, text otherwise); a value cannot
contain a comma.

examples:
  cifar-lab sweep notebooks/03b_ast_sweep_point.md --grid target=0.05,0.2 --grid gains=seed,tuned --jobs 2 --out runs/sweep
  cifar-lab sweep notebooks/03b_ast_sweep_point.md --grid target=0.05,0.1,0.2 -p smoke false --jobs 4 --gpus 0,1,2,3 --out runs/sweep-gpu
  cifar-lab sweep notebooks/03b_ast_sweep_point.md --grid target=0.05,0.1 -p smoke false --launcher slurm --slurm slurm_partition=gpu --out runs/sweep-slurm
"""


def register(sub) -> None:
    parser = documented_parser(
        sub, "sweep", "run a notebook over a grid of parameters (parallel workers, GPUs, Slurm); results.csv",
        __doc__, EPILOG)
    add_notebook_argument(parser)
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                        help="a parameter and its values; repeat for more (the sweep runs every combination)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        dest="fixed", help="a parameter set the same for every point; repeat for more")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="points run at once (default 1)")
    parser.add_argument("--gpus", metavar="0,1,...", help="pin worker k to GPU k mod len(GPUS) through "
                                                          "CUDA_VISIBLE_DEVICES (local launcher)")
    parser.add_argument("--launcher", choices=["local", "slurm"], default="local",
                        help="local worker processes (default), or Slurm jobs through submitit "
                             "(pip install 'cifar-lab[cluster]')")
    parser.add_argument("--slurm", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="submitit parameters for --launcher slurm, e.g. slurm_partition=gpu timeout_min=600 "
                             "(defaults: one GPU per point, 24 h, --jobs jobs at once)")
    parser.add_argument("--rerun", action="store_true", help="run every point again, finished ones too")
    parser.set_defaults(func=run)


def parse_grid(items: list[str]) -> dict[str, list]:
    """["target=0.05,0.2", "gains=seed,tuned"] -> {"target": [0.05, 0.2], "gains": ["seed", "tuned"]}."""
    from ..errors import UsageError
    from ..book.runner import parse_value

    grid: dict[str, list] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        parts = [value.strip() for value in values.split(",")]
        if not sep or not name or not all(parts):
            raise UsageError(f"--grid {item!r} is not NAME=V1,V2,...: give a parameter name, '=' and "
                             f"comma-separated values without empty ones")
        if name in grid:
            raise UsageError(f"--grid {name} is given twice; list all its values in one --grid {name}=...")
        grid[name] = [parse_value(value) for value in parts]
    return grid


def parse_gpus(text):
    if text is None:
        return None
    return [gpu.strip() for gpu in text.split(",")]


def parse_options(items: list[str]) -> dict:
    """["slurm_partition=gpu", "timeout_min=600"] -> {"slurm_partition": "gpu", "timeout_min": 600}."""
    from ..errors import UsageError
    from ..book.runner import parse_value

    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--slurm expects KEY=VALUE, got {item!r}; for example --slurm slurm_partition=gpu")
        options[key.strip()] = parse_value(value.strip())
    return options


def print_point(point) -> None:
    if point.skipped:
        status = "done earlier (skipped)"
    elif point.status == "ok":
        status = f"ok in {point.seconds:.0f} s"
    else:
        status = f"FAILED in {point.seconds:.0f} s"
    print(f"{point.name}: {status}", flush=True)


def run(args) -> int:
    from ..errors import UsageError
    from ..book.runner import grid_points, raise_if_failed, sweep

    if not args.grid:
        raise UsageError("give at least one --grid NAME=V1,V2 (the parameters to sweep)")
    names = [name for name, _ in args.fixed]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise UsageError(f"parameter {', '.join(duplicated)} given more than once")
    if args.slurm and args.launcher != "slurm":
        raise UsageError("--slurm options apply to --launcher slurm only")
    result = sweep(args.notebook, args.out, grid_points(parse_grid(args.grid)), dict(args.fixed), jobs=args.jobs,
                   gpus=parse_gpus(args.gpus), launcher=args.launcher, resume=not args.rerun,
                   progress=sys.stderr.isatty(), launcher_options=parse_options(args.slurm), on_point=print_point)
    skipped = sum(point.skipped for point in result.points)
    failed = len(result.failed)
    print(f"{len(result.points)} points: {len(result.points) - skipped - failed} ran, {skipped} already done "
          f"(skipped), {failed} failed; table: {result.table}")
    try:
        raise_if_failed(result)
    except UsageError as exc:
        raise type(exc)(paths_from_here(str(exc), args.notebook)) from None
    return 0
