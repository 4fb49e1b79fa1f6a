"""Batch runs of the book's notebooks with papermill: same notebook, new parameters, results kept in one folder.

`run_notebook("notebooks/02_cifar10_resnet18.md", "runs/r18", {"epochs": "30"})` reads the notebook (MyST
`.md` through jupytext, since papermill cannot read it, or `.ipynb`), checks every parameter name against the
notebook's `parameters` cell, injects `out_dir` as the absolute output folder, executes it with the notebook's
folder as working directory, and keeps `OUT/<name>.ipynb` (the executed notebook) beside the
`OUT/metrics.json` the notebook writes itself and `OUT/environment.json` (`provenance`: commit, versions,
device, the parameters).

`sweep` (and `run_sweep`, its form for notebooks) runs one notebook over a grid of parameters: a folder per
point, parallel worker processes pinned to GPUs or submitit jobs, and `OUT/results.csv` with a row per point.

Parameter values are parsed like YAML scalars: `3` is an int, `0.1` a float, `true` a bool, `null` None,
`[1, 2]` a list and anything else a string, which is what a shell user expects from `-p epochs 3`. A parameter
whose default is a bool, int or float literal (or a call of `smoke_default()`, a bool) only takes a value of
that type; an int is also a valid float.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shlex
import sys
import textwrap
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from .. import provenance
from ..errors import UsageError
from ..values import parse_value  # noqa: F401 (the sweep and reproduce commands use it from here)

OUT_DIR_PARAMETER = "out_dir"

# Helpers the parameters cells call for a default, by the type they return.
_HELPER_TYPES = {"smoke_default": bool}
_TYPE_WORDS = {bool: "a bool (true or false)", int: "an int (a whole number)", float: "a number"}

# What the Jupyter kernel writes on its stderr about its own plumbing rather than about the notebook: ipykernel
# warns on every start that its sockets are plain TCP (they listen on localhost only), and logs the interrupt
# that jupyter_client sends on every shutdown whenever it lands while a request is being handled.
_KERNEL_CHATTER = re.compile(rb"Kernel is running over TCP without encryption|KeyboardInterrupt caught in kernel")


class NotebookFailed(UsageError):
    """The notebook ran but one of its cells raised; the executed notebook shows where."""

    exit_code = 1


@dataclass
class NotebookRun:
    notebook: Path          # the executed notebook written into the output folder
    metrics: Optional[Path]  # OUT/metrics.json when the notebook wrote one
    parameters: dict         # what was injected (out_dir included)


def read_notebook(path):
    """A notebook object from `.md` (jupytext) or `.ipynb`; a one-line error when it is not there."""
    import jupytext

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"notebook {path} does not exist; the book's notebooks are notebooks/NN_topic.md")
    if path.suffix not in (".md", ".ipynb"):
        raise UsageError(f"{path} is not a notebook: give a MyST .md notebook or an .ipynb")
    try:
        return jupytext.read(path)
    except Exception as exc:  # malformed JSON or front matter
        raise UsageError(f"{path} cannot be read as a notebook ({type(exc).__name__}: {exc})") from None


def parameter_cell_index(nb) -> int:
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return index
    return -1


def declared_parameters(nb) -> dict[str, str]:
    """Names assigned in the `parameters` cell, each with the source text of its default value."""
    index = parameter_cell_index(nb)
    if index < 0:
        return {}
    source = nb.cells[index].source
    # IPython magics and shell escapes are not Python; they never define parameters.
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse(textwrap.dedent("\n".join(lines)))
    except SyntaxError as exc:
        raise UsageError(f"the parameters cell does not parse as Python ({exc.msg}, line {exc.lineno})") from None
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                found[target.id] = ast.get_source_segment("\n".join(lines), value) or ""
    return found


def default_type(default: str) -> Optional[type]:
    """The type a parameter's default source fixes: bool, int or float for such a literal (signed numbers too)
    or for a call of a helper in `_HELPER_TYPES`; None, meaning any value goes, for everything else (text,
    None, lists, other expressions)."""
    try:
        node = ast.parse(default.strip(), mode="eval").body
    except SyntaxError:
        return None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        node = node.operand
    if isinstance(node, ast.Constant) and type(node.value) in (bool, int, float):
        return type(node.value)
    if isinstance(node, ast.Call) and not node.args and not node.keywords:
        called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        return _HELPER_TYPES.get(called)
    return None


def accepts(expected: Optional[type], value: Any) -> bool:
    """Whether `value` suits a default of type `expected`; bool is kept apart from int although Python makes
    it one, since `-p epochs true` is a mistake, not 1 epoch."""
    if expected is None:
        return True
    if expected is bool or isinstance(value, bool):
        return type(value) is expected
    numbers = (int, float) if expected is float else (int,)
    return isinstance(value, numbers)


def _as_typed(value: Any) -> str:
    """A parsed value spelled as a `-p` value would be, for error messages."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return repr(value)


def check_parameters(path, nb, given: dict[str, Any]) -> dict[str, str]:
    declared = declared_parameters(nb)
    if not declared:
        raise UsageError(f"{path} has no cell tagged 'parameters', so it cannot be run with parameters")
    if OUT_DIR_PARAMETER not in declared:
        raise UsageError(f"{path} has no '{OUT_DIR_PARAMETER}' parameter, so --out cannot be passed to it")
    if OUT_DIR_PARAMETER in given:
        raise UsageError(f"set the output folder with --out, not -p {OUT_DIR_PARAMETER}")
    unknown = [name for name in given if name not in declared]
    if unknown:
        valid = ", ".join(name for name in declared if name != OUT_DIR_PARAMETER)
        raise UsageError(f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for {path}; "
                         f"valid parameters: {valid}")
    for name, value in given.items():
        expected = default_type(declared[name])
        if not accepts(expected, value):
            raise UsageError(f"parameter {name} of {path} takes {_TYPE_WORDS[expected]}, as its default "
                             f"{declared[name]} does; got {_as_typed(value)}")
    return declared


def prepare_out_dir(out_dir) -> Path:
    """The absolute output folder, created; a one-line error when it cannot be (a file in the way, no
    permission). Called only once the parameters are known to be valid, so that a bad run writes nothing."""
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    in_the_way = next((parent for parent in out.parents if parent.exists() and not parent.is_dir()), None)
    if in_the_way is not None:
        raise UsageError(f"--out {out} cannot be created: {in_the_way} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out} cannot be created ({exc.strerror or exc})") from None
    return out


def source_code_cell(nb, executed_index: int) -> Optional[int]:
    """The 1-based number, among the code cells of the notebook as written, of the cell at `executed_index`
    in papermill's copy; None for the cell papermill injected.

    papermill puts its injected-parameters cell right after the `parameters` cell, or in place of an
    injected-parameters cell the notebook already has (an earlier papermill output), which keeps positions.
    """
    already_injected = any("injected-parameters" in cell.get("metadata", {}).get("tags", []) for cell in nb.cells)
    index = executed_index
    if not already_injected:
        inserted_at = parameter_cell_index(nb) + 1
        if index == inserted_at:
            return None
        if index > inserted_at:
            index -= 1
    return sum(cell.cell_type == "code" for cell in nb.cells[:index + 1])


def failure_message(path: Path, nb, executed: Path, exc) -> str:
    """One line naming the failing cell once, as the reader of `path` counts it (its code cells only), with its
    first line. The executed notebook numbers its cells otherwise (the injected-parameters cell counts there
    too), so a second number would name the same cell twice, differently; the first line finds it in both."""
    number = source_code_cell(nb, exc.cell_index)
    if number is None:
        where = "the injected parameters"
    else:
        code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
        where = f"code cell {number}{_first_line(code_cells[number - 1].source)}"
    return (f"{path} failed in {where} with {exc.ename}: {exc.evalue}; the traceback is in the executed "
            f"notebook {executed}")


def _first_line(source: str, width: int = 60) -> str:
    """` ("first line")`, cut to `width` characters; empty for an empty cell."""
    line = next((text.strip() for text in source.splitlines() if text.strip()), "")
    if not line:
        return ""
    return f' ("{line if len(line) <= width else line[:width - 3] + "..."}")'


def _forward_kernel_stderr(read_end: int) -> None:
    """Copy the kernel's stderr to ours line by line, without `_KERNEL_CHATTER`."""
    with open(read_end, "rb") as pipe:
        for line in pipe:
            if not _KERNEL_CHATTER.search(line):
                sys.stderr.write(line.decode(errors="replace"))
                sys.stderr.flush()


@contextmanager
def kernel_stderr_filtered():
    """Yield a kernel manager class for papermill whose kernels write their stderr into a pipe that
    `_forward_kernel_stderr` copies to ours.

    The kernel is another process and logs straight to the stderr it inherits, so neither warning filters
    nor logging settings of this process reach its messages; filtering its output is what is left.
    """
    from jupyter_client.manager import AsyncKernelManager

    read_end, write_end = os.pipe()
    forwarder = threading.Thread(target=_forward_kernel_stderr, args=(read_end,), name="kernel-stderr", daemon=True)
    forwarder.start()

    class FilteredStderrKernelManager(AsyncKernelManager):  # nbclient's default manager, stderr redirected
        async def start_kernel(self, **kw):
            kw.setdefault("stderr", write_end)
            await super().start_kernel(**kw)

    try:
        yield FilteredStderrKernelManager
    finally:
        os.close(write_end)
        # End of file comes once the kernel (and whatever it started) has exited; do not wait on a straggler.
        forwarder.join(timeout=5)


def run_notebook(path, out_dir, parameters: dict[str, Any] | Iterable[tuple[str, Any]] = (),
                 progress_bar: bool = False, log_output: bool = False, kernel_name: Optional[str] = None,
                 timeout: Optional[int] = None) -> NotebookRun:
    """Execute `path` with `parameters` (strings are parsed as YAML scalars) into `out_dir`.

    Everything is checked before anything is written: a missing notebook, a notebook without a parameters
    cell, an unknown parameter name or a value of the wrong type raises `UsageError` and leaves `out_dir`
    untouched. The run holds `out_dir`'s lock (`out_dir_lock`) from its first write to its last: a second run
    into the same folder stops with one line naming this one's PID, having written nothing.
    """
    import papermill

    path = Path(path)
    nb = read_notebook(path)
    given = {name: parse_value(value) for name, value in dict(parameters).items()}
    check_parameters(path, nb, given)

    out = prepare_out_dir(out_dir)
    with out_dir_lock(out):
        injected = {**given, OUT_DIR_PARAMETER: str(out)}
        executed = out / (path.stem + ".ipynb")
        environment = provenance.collect(parameters=injected)
        environment[CODE_VERSION] = code_version()  # what `same_code` compares when a later run would reuse this
        environment = provenance.write(environment, out)
        try:
            with kernel_stderr_filtered() as kernel_manager_class:
                papermill.execute_notebook(
                    nb, str(executed), parameters=injected, cwd=str(path.resolve().parent),
                    progress_bar=progress_bar, log_output=log_output, kernel_name=kernel_name,
                    execution_timeout=timeout, kernel_manager_class=kernel_manager_class,
                )
        except papermill.PapermillExecutionError as exc:
            # papermill has already saved the executed notebook with the failing cell's traceback in it.
            raise NotebookFailed(failure_message(path, nb, executed, exc)) from None
        finally:
            # Written last, so that it describes this notebook run even where the notebook trains into out_dir
            # itself (a training run writes its own environment.json there).
            provenance.write(provenance.finish(environment), out)
    metrics = out / "metrics.json"
    return NotebookRun(executed, metrics if metrics.is_file() else None, injected)


# One writer at a time per output folder among notebook runs, sweeps and reproductions. The lock file is not
# the training run's (`io.LOCK_NAME`, held by `engine.trainer.run_folder`): a notebook may train into its own
# out_dir, from its kernel, another process, which would otherwise find the folder locked by its own runner.
# Nested runs (a reproduction's chapters, a sweep's points) lock their own sub-folders, never the outer one.
LOCK_NAME = ".notebook-run.lock"
LOCK_HOLDER = "notebook run, sweep or reproduction"


def out_dir_lock(out: Path):
    """The lock of an output folder of `run_notebook`, `sweep` or `reproduce.reproduce` (`io.folder_lock`)."""
    from ..io import folder_lock

    return folder_lock(out, LOCK_HOLDER, LOCK_NAME)


def point_name(point: dict[str, Any]) -> str:
    """A folder name for one sweep point, from its parameters: {"target": 0.05, "gains": "seed"} ->
    "target0.05_gainsseed"."""
    return "_".join(f"{name}{value}" for name, value in point.items())


def command_line(notebook, out_dir, parameters: dict[str, Any]) -> str:
    """The `cifar-lab run` command that executes the same run from a shell."""
    # Quoted for a POSIX shell: a list such as [0, 1, 2] has spaces in it.
    options = " ".join(f"-p {name} {shlex.quote(str(value))}" for name, value in parameters.items())
    return f"cifar-lab run {notebook} --out {out_dir} {options}".rstrip()


# --- sweeps -------------------------------------------------------------------------------------------------------
# A sweep runs one notebook once per point of a grid, each point into its own folder OUT/<point name>, and
# tabulates every point's parameters, status and scalar metrics in OUT/results.csv. Points run in parallel
# worker processes (`jobs`), each pinned to one GPU when `gpus` are given, or as Slurm jobs through submitit.
# A finished point leaves a done marker; a later sweep with `resume` skips it while the code is the same
# (`same_code`).

DONE_MARKER = ".done"
RESULTS_CSV = "results.csv"
LAUNCHERS = ("local", "slurm", "submitit-local")  # submitit-local: the Slurm code path, run on this machine
POINT_LOG = "kernel-stderr.log"
CLUSTER_INSTALL = "pip install 'cifar-lab[cluster]'"


@dataclass
class PointResult:
    name: str                 # the point's folder name (point_name)
    point: dict               # the grid values of this point
    status: str               # "ok" or "failed"
    error: Optional[str]      # one line, for a failed point
    metrics: Optional[dict]   # its metrics.json
    skipped: bool = False     # finished by an earlier sweep and not run again
    seconds: float = 0.0


@dataclass
class SweepResult:
    points: list[PointResult]
    table: Path               # OUT/results.csv

    @property
    def failed(self) -> list[PointResult]:
        return [point for point in self.points if point.status != "ok"]


class SweepFailed(NotebookFailed):
    """Some points of a sweep failed; the others ran and results.csv lists them all."""


@contextmanager
def stderr_into(path: Path):
    """Send what this process writes to sys.stderr, the kernel's forwarded stderr included, into `path`: runs
    side by side (or under a progress bar) keep their messages apart, each in its own folder."""
    from ..io import make_folder

    make_folder(Path(path).parent)
    saved = sys.stderr
    with open(path, "w") as log:
        sys.stderr = log
        try:
            yield path
        finally:
            sys.stderr = saved


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the first key varying slowest: {"a": [1, 2], "b": ["x"]} ->
    [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]."""
    import itertools

    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*(grid[name] for name in names))]


def run_point(notebook, folder, parameters: dict[str, Any], gpu: Optional[str] = None) -> dict:
    """Execute one point of a sweep; what a worker process or a cluster job runs. Returns its status and never
    raises for a failing notebook: one failed point must not stop the others.

    The kernel's stderr goes to OUT/<point>/kernel-stderr.log (`stderr_into`).
    """
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)  # inherited by the kernel this process starts
    folder = Path(folder)
    start = time.perf_counter()
    version = code_version()  # the code this point runs, taken before it starts
    error = None
    try:
        with stderr_into(folder / POINT_LOG):
            result = run_notebook(notebook, folder, parameters)
        if result.metrics is None:
            error = f"{notebook} wrote no metrics.json into {folder}; a sweep needs one per point"
    except UsageError as exc:
        error = str(exc)
    except Exception as exc:  # a kernel that died, a full disk: recorded like a failing cell
        error = " ".join(f"{type(exc).__name__}: {exc}".split())
    if error is None:
        mark_done(folder, notebook, parameters, version)
    return {"status": "failed" if error else "ok", "error": error, "seconds": time.perf_counter() - start}


def mark_done(folder: Path, notebook, parameters: dict[str, Any], version: Optional[str] = None) -> None:
    """The done marker: what ran (notebook, parameters) and when, with which code (`code_version`)."""
    from ..io import atomic_write_text

    commit, dirty = provenance.git_state()
    marker = {"notebook": Path(notebook).name, "parameters": _plain(parameters), "finished_utc": provenance.utc_now(),
              "commit": commit, "dirty": dirty, CODE_VERSION: version or code_version()}
    atomic_write_text(folder / DONE_MARKER, json.dumps(marker, indent=2, default=str) + "\n")


def is_done(folder: Path, notebook, parameters: dict[str, Any], version: Optional[str] = None) -> bool:
    """Whether `folder` holds a finished run of `notebook` with exactly these parameters and the code checked
    out now (`same_code`; `version` is the current `code_version`, computed when not given)."""
    try:
        marker = json.loads((folder / DONE_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return ((folder / "metrics.json").is_file() and marker.get("notebook") == Path(notebook).name
            and marker.get("parameters") == _plain(parameters) and same_code(marker.get(CODE_VERSION), version))


# --- the code a result belongs to ---------------------------------------------------------------------------------
# A result is reused (a sweep point, a reproduced chapter) only when it was produced by the code that would run
# now: the same commit and the same uncommitted changes. A dirty tree is thus "the same" only while its changes
# stay byte for byte what they were; any edit, or a new untracked file, makes every earlier result stale.

CODE_VERSION = "code_version"


def code_version(folder: Path = provenance.PACKAGE_PARENT) -> str:
    """The commit of the checkout, with `+` and a digest of its uncommitted changes when the tree is dirty
    (tracked changes as `git diff HEAD` prints them, untracked files by name and content); `unknown` outside a
    git checkout."""
    import hashlib
    import subprocess

    commit, dirty = provenance.git_state(folder)
    if commit == provenance.UNKNOWN or dirty == provenance.UNKNOWN:
        return provenance.UNKNOWN
    if not dirty:
        return commit

    def git(*args: str, stdin: Optional[bytes] = None) -> Optional[bytes]:
        try:
            done = subprocess.run(["git", *args], cwd=folder, input=stdin, capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    diff = git("diff", "HEAD", "--binary")
    untracked = git("ls-files", "-z", "--others", "--exclude-standard")
    blobs = git("hash-object", "--stdin-paths", stdin=untracked.replace(b"\0", b"\n")) if untracked else b""
    if diff is None or untracked is None or blobs is None:
        return provenance.UNKNOWN
    digest = hashlib.sha256(b"\0".join((diff, untracked, blobs))).hexdigest()[:16]
    return f"{commit}+{digest}"


def same_code(recorded: Optional[str], current: Optional[str] = None) -> bool:
    """Whether a result recorded with code version `recorded` was produced by the code checked out now
    (`current`, computed when not given): equal versions, neither unknown."""
    current = code_version() if current is None else current
    return current != provenance.UNKNOWN and recorded == current


def _plain(parameters: dict[str, Any]) -> dict:
    """Parameters as JSON gives them back (tuples become lists), so that two runs' parameters compare."""
    return json.loads(json.dumps(parameters, default=str))


def _clear_point(folder: Path) -> None:
    """Remove what an earlier, different or failed run of a point left that could be mistaken for its result."""
    for name in (DONE_MARKER, "metrics.json"):
        (folder / name).unlink(missing_ok=True)


def flatten_scalars(metrics: dict, prefix: str = "") -> dict[str, Any]:
    """The scalar values of a nested metrics dict, keyed by dotted path ({"a": {"b": 1}} -> {"a.b": 1}); lists
    (histories, tables) are left out of a one-row-per-point table."""
    flat = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_scalars(value, name + "."))
        elif value is None or isinstance(value, (bool, int, float, str)):
            flat[name] = value
    return flat


def results_table(results: list[PointResult]):
    """One row per point: its parameters, status, error line, and its flattened scalar metrics."""
    import pandas as pd

    rows = []
    for result in results:
        row = {**result.point, "point": result.name, "status": result.status, "error": result.error,
               "skipped": result.skipped, "seconds": round(result.seconds, 3)}
        for key, value in flatten_scalars(result.metrics or {}).items():
            row.setdefault(key, value)  # a metric that echoes a parameter (target, gains) keeps the grid's value
        rows.append(row)
    return pd.DataFrame.from_records(rows)


def write_results_table(results: list[PointResult], out: Path) -> Path:
    from ..io import atomic_write_text

    path = out / RESULTS_CSV
    atomic_write_text(path, results_table(results).to_csv(index=False))
    return path


def check_sweep(notebook, points: list[dict[str, Any]], fixed: dict[str, Any], jobs: int,
                gpus: Optional[list[str]], launcher: str) -> None:
    """Everything a sweep can get wrong, found before any point runs: one-line errors, nothing written."""
    if not points:
        raise UsageError("the sweep has no points: give at least one --grid name=value[,value...]")
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    if launcher not in LAUNCHERS:
        raise UsageError(f"unknown launcher {launcher!r}; choose one of {', '.join(LAUNCHERS)}")
    if gpus is not None and (not gpus or any(not str(gpu).strip() for gpu in gpus)):
        raise UsageError("--gpus takes a comma-separated list of GPU indices, e.g. --gpus 0,1")
    if launcher != "local":
        if gpus:
            raise UsageError("--gpus pins local workers; under Slurm each job gets its own GPUs "
                             "(--slurm gpus_per_node=N)")
        require_submitit(launcher)
    names = [point_name(point) for point in points]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UsageError(f"the sweep repeats point {', '.join(repeated)}; give each grid value once")
    nb = read_notebook(notebook)
    for point in points:
        overlap = sorted(set(point) & set(fixed))
        if overlap:
            raise UsageError(f"parameter {', '.join(overlap)} is both fixed and swept; give it one way")
        check_parameters(Path(notebook), nb, {name: parse_value(v) for name, v in {**fixed, **point}.items()})


def sweep(notebook, out_dir, points: list[dict[str, Any]], fixed: Optional[dict[str, Any]] = None,
          jobs: int = 1, gpus: Optional[list[str]] = None, launcher: str = "local", resume: bool = True,
          progress: bool = True, launcher_options: Optional[dict[str, Any]] = None,
          on_point: Optional[Callable[[PointResult], None]] = None) -> SweepResult:
    """Run `notebook` once per point into `out_dir/<point name>` and write `out_dir/results.csv`.

    Failed points are recorded (status "failed" and the error line), never raised: the other points go on.
    With `resume`, a point whose folder holds metrics.json and a done marker for the same notebook, parameters
    and code (`same_code`) is not run again. `jobs` worker processes run points side by side, each with its
    share of the CPU cores as thread count; with `gpus`, worker k sees only GPU gpus[k % len(gpus)]
    (CUDA_VISIBLE_DEVICES), so each point trains on one GPU. `on_point(result)` is called as each point
    finishes (or is found done). The sweep holds `out_dir`'s lock (`out_dir_lock`) throughout, each point's run
    its own folder's: a second sweep into `out_dir` stops with one line before it clears or starts any point.
    """
    from tqdm import tqdm  # plain: tqdm.auto wants ipywidgets inside notebooks

    fixed = {name: parse_value(value) for name, value in (fixed or {}).items()}
    points = [{name: parse_value(value) for name, value in point.items()} for point in points]
    check_sweep(notebook, points, fixed, jobs, gpus, launcher)
    out = prepare_out_dir(out_dir)
    with out_dir_lock(out):  # the points' folders are locked by their own runs inside
        notebook = Path(notebook).resolve()

        results: dict[str, PointResult] = {}
        to_run = []
        version = code_version() if resume else None
        for point in points:
            name, parameters = point_name(point), {**fixed, **point}
            folder = out / name
            if resume and is_done(folder, notebook, parameters, version):
                metrics = json.loads((folder / "metrics.json").read_text())
                results[name] = PointResult(name, point, "ok", None, metrics, skipped=True)
                if on_point is not None:
                    on_point(results[name])
            else:
                _clear_point(folder)
                to_run.append((name, point, folder, parameters))

        bar = tqdm(total=len(points), desc=f"sweep over {notebook.name}", disable=not progress, leave=False,
                   file=sys.stderr, initial=len(results))
        outcomes = (_run_with_submitit(notebook, to_run, out, jobs, launcher, launcher_options or {})
                    if launcher != "local" else _run_locally(notebook, to_run, jobs, gpus))
        for (name, point, folder, _), outcome in outcomes:
            metrics = json.loads((folder / "metrics.json").read_text()) if outcome["status"] == "ok" else None
            results[name] = PointResult(name, point, outcome["status"], outcome["error"], metrics,
                                        seconds=outcome["seconds"])
            bar.update(1)
            bar.set_postfix(failed=sum(r.status != "ok" for r in results.values()))
            if on_point is not None:
                on_point(results[name])
            write_results_table([results[point_name(p)] for p in points if point_name(p) in results], out)
        bar.close()
        ordered = [results[point_name(point)] for point in points]
        return SweepResult(ordered, write_results_table(ordered, out))


def _run_locally(notebook, tasks: list, jobs: int, gpus: Optional[list[str]]):
    """Yield (task, outcome) as points finish, running at most `jobs` at once; worker slot k keeps GPU
    gpus[k % len(gpus)] for every point it runs.

    Each point runs in a process of its own, started for it: a worker that dies (killed for memory, a crash in
    native code) takes only its own point with it, which is recorded as failed while the others go on. A
    process pool would not do: one dead worker breaks the whole pool and fails every point still in it.
    """
    if not tasks:
        return
    if jobs == 1 and not gpus:  # one point at a time in this process: no worker to start
        for task in tasks:
            yield task, run_point(notebook, task[2], task[3])
        return
    import multiprocessing
    from multiprocessing.connection import wait

    # spawn: a fresh interpreter per worker, safe whatever this process holds (threads, a CUDA context).
    context = multiprocessing.get_context("spawn")
    free_gpus = [gpus[slot % len(gpus)] if gpus else None for slot in range(min(jobs, len(tasks)))]
    threads = threads_per_worker(jobs)
    waiting, running = list(tasks), {}
    try:
        while waiting or running:
            while waiting and free_gpus:
                task, gpu = waiting.pop(0), free_gpus.pop(0)
                receiver, sender = context.Pipe(duplex=False)
                worker = context.Process(target=_point_worker, args=(sender, notebook, task[2], task[3], gpu, threads),
                                         name=f"sweep-point-{task[0]}")
                worker.start()
                sender.close()  # the worker holds the only sending end: its death ends the pipe
                running[receiver] = (worker, task, gpu, time.perf_counter())
            for receiver in wait(list(running)):
                worker, task, gpu, start = running.pop(receiver)
                try:
                    outcome = receiver.recv()
                except (EOFError, OSError):
                    outcome = None
                receiver.close()
                worker.join()
                free_gpus.append(gpu)
                yield task, outcome or _worker_died(worker.exitcode, time.perf_counter() - start)
    finally:  # the sweep itself stopped (Ctrl-C, an error): no worker outlives it
        for worker, *_ in running.values():
            worker.terminate()
            worker.join(timeout=10)


def threads_per_worker(jobs: int) -> int:
    """CPU threads for each of `jobs` workers side by side: this process's cores shared out, at least one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        cores = os.cpu_count() or 1
    return max(1, cores // jobs)


# OpenMP (PyTorch's CPU ops), MKL and OpenBLAS (numpy) each start one thread per core unless told otherwise.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _point_worker(sender, notebook, folder, parameters: dict[str, Any], gpu: Optional[str], threads: int) -> None:
    """A sweep worker's process: cap the threads of the kernel it starts (which inherits this environment;
    settings the user made win), run the point and send its outcome back."""
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, str(threads))
    sender.send(_outcome(lambda: run_point(notebook, folder, parameters, gpu)))
    sender.close()


def _worker_died(exitcode: Optional[int], seconds: float) -> dict:
    """The outcome of a point whose worker process ended without reporting one."""
    import signal

    if exitcode is not None and exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
    else:
        how = f"exited with status {exitcode}"
    return {"status": "failed", "seconds": seconds,
            "error": f"the point's worker process {how} before the point finished (out of memory, or killed); "
                     f"its folder keeps what it wrote"}


def _outcome(get_result) -> dict:
    """A point's outcome, also when its worker process or cluster job itself died."""
    try:
        return get_result()
    except Exception as exc:
        return {"status": "failed", "error": " ".join(f"the point's job failed: {type(exc).__name__}: {exc}".split()),
                "seconds": 0.0}


def _run_with_submitit(notebook, tasks: list, out: Path, jobs: int, launcher: str, options: dict):
    """Yield (task, outcome) as the points' jobs finish: Slurm jobs (an array, at most `jobs` at once), or
    with launcher "submitit-local" the same jobs as local processes."""
    if not tasks:
        return
    executor = make_submitit_executor(out / ".submitit", launcher, jobs, options)
    with executor.batch():
        submitted = [executor.submit(run_point, notebook, task[2], task[3]) for task in tasks]
    submitit = require_submitit(launcher)
    by_job = {id(job): task for job, task in zip(submitted, tasks)}
    poll = 1 if launcher == "submitit-local" else 15
    for job in submitit.helpers.as_completed(submitted, poll_frequency=poll):
        yield by_job[id(job)], _outcome(job.result)


def require_submitit(launcher: str):
    """The submitit module; one-line errors without it, or without Slurm for launcher "slurm"."""
    import shutil

    try:
        import submitit
    except ImportError:
        raise UsageError(f"--launcher {launcher} needs submitit, which is not installed: {CLUSTER_INSTALL}") from None
    if launcher == "slurm" and shutil.which("sbatch") is None:
        raise UsageError("--launcher slurm needs Slurm's sbatch on PATH: run the sweep on a login node of the "
                         "cluster, or use --launcher local")
    return submitit


def make_submitit_executor(folder: Path, launcher: str, jobs: int, options: dict):
    """A submitit executor for the sweep's jobs: Slurm, or for "submitit-local" processes on this machine."""
    submitit = require_submitit(launcher)
    if launcher == "submitit-local":
        executor = submitit.LocalExecutor(folder=folder)
        executor.update_parameters(**{"timeout_min": 24 * 60, **options})
        return executor
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    # One GPU per point unless told otherwise; `jobs` bounds how many of the array's jobs run at once.
    defaults = {"timeout_min": 24 * 60, "gpus_per_node": 1, "tasks_per_node": 1, "slurm_array_parallelism": jobs}
    try:
        executor.update_parameters(**{**defaults, **options})
    except (NameError, ValueError, TypeError) as exc:
        raise UsageError(f"--slurm: {' '.join(str(exc).split())}") from None
    return executor


def run_sweep(notebook, out_dir, points: list[dict[str, Any]], fixed: Optional[dict[str, Any]] = None,
              progress: bool = True, jobs: int = 1, gpus: Optional[list[str]] = None, launcher: str = "local",
              resume: bool = False) -> list[dict]:
    """`sweep` for notebooks: the `metrics.json` of every point, in order, and `out_dir/results.csv`.

    Every point runs (the others too when one fails); then a failed point raises `SweepFailed` naming it and
    its executed notebook. `resume` is off by default here: a notebook that runs a sweep as part of a chapter
    means to measure the code as it is now, not to reuse an earlier build's points.
    """
    result = sweep(notebook, out_dir, points, fixed, jobs=jobs, gpus=gpus, launcher=launcher, resume=resume,
                   progress=progress)
    raise_if_failed(result)
    return [point.metrics for point in result.points]


def raise_if_failed(result: SweepResult) -> None:
    failed = result.failed
    if failed:
        first = failed[0]
        names = ", ".join(point.name for point in failed)
        raise SweepFailed(f"{len(failed)} of {len(result.points)} sweep points failed ({names}); {first.name}: "
                          f"{first.error}; all points are listed in {result.table}")
