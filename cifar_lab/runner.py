"""Batch runs of the book's notebooks with papermill: same notebook, new parameters, results kept in one folder.

`run_notebook("notebooks/02_cifar10_resnet18.md", "runs/r18", {"epochs": "30"})` reads the notebook (MyST
`.md` through jupytext, since papermill cannot read it, or `.ipynb`), checks every parameter name against the
notebook's `parameters` cell, injects `out_dir` as the absolute output folder, executes it with the notebook's
folder as working directory, and keeps `OUT/<name>.ipynb` (the executed notebook) beside the
`OUT/metrics.json` the notebook writes itself.

Parameter values are parsed like YAML scalars: `3` is an int, `0.1` a float, `true` a bool, `null` None,
`[1, 2]` a list and anything else a string, which is what a shell user expects from `-p epochs 3`. A parameter
whose default is a bool, int or float literal (or a call of `smoke_default()`, a bool) only takes a value of
that type; an int is also a valid float.
"""
from __future__ import annotations

import ast
import os
import re
import sys
import textwrap
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from .errors import UsageError

OUT_DIR_PARAMETER = "out_dir"
_DECIMAL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")

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


def parse_value(text: Any) -> Any:
    """`-p` values as YAML scalars (ints, floats, booleans, null/None, lists); anything else stays a string."""
    import yaml

    if not isinstance(text, str):
        return text
    stripped = text.strip()
    if stripped in ("None", "none"):
        return None  # Python's spelling, which is what the parameters cells themselves use
    if not stripped:
        return text
    try:
        value = yaml.safe_load(stripped)
    except yaml.YAMLError:
        return text
    if isinstance(value, dict) or (value is None and stripped not in ("null", "Null", "NULL", "~")):
        return text  # "a: b" or "# x" were meant as text, not as a mapping or a comment
    if isinstance(value, str) and _DECIMAL.match(stripped):
        return float(stripped)  # YAML 1.1 reads 1e-3 (no dot) as text; a shell user means a number
    return value


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
    """One line naming the failing cell both as the reader of `path` counts it (code cells only) and as the
    executed notebook labels it (its execution count, which also counts the injected-parameters cell)."""
    number = source_code_cell(nb, exc.cell_index)
    where = "the injected parameters" if number is None else f"code cell {number}"
    label = f", cell [{exc.exec_count}]" if exc.exec_count is not None else ""
    return (f"{path} failed in {where} ({exc.ename}: {exc.evalue}); the traceback is in the executed notebook "
            f"{executed}{label}")


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
    untouched.
    """
    import papermill

    path = Path(path)
    nb = read_notebook(path)
    given = {name: parse_value(value) for name, value in dict(parameters).items()}
    check_parameters(path, nb, given)

    out = prepare_out_dir(out_dir)
    injected = {**given, OUT_DIR_PARAMETER: str(out)}
    executed = out / (path.stem + ".ipynb")
    try:
        with kernel_stderr_filtered() as kernel_manager_class:
            papermill.execute_notebook(
                nb, str(executed), parameters=injected, cwd=str(path.resolve().parent), progress_bar=progress_bar,
                log_output=log_output, kernel_name=kernel_name, execution_timeout=timeout,
                kernel_manager_class=kernel_manager_class,
            )
    except papermill.PapermillExecutionError as exc:
        # papermill has already saved the executed notebook with the failing cell's traceback in it.
        raise NotebookFailed(failure_message(path, nb, executed, exc)) from None
    metrics = out / "metrics.json"
    return NotebookRun(executed, metrics if metrics.is_file() else None, injected)


def point_name(point: dict[str, Any]) -> str:
    """A folder name for one sweep point, from its parameters: {"target": 0.05, "gains": "seed"} ->
    "target0.05_gainsseed"."""
    return "_".join(f"{name}{value}" for name, value in point.items())


def command_line(notebook, out_dir, parameters: dict[str, Any]) -> str:
    """The `cifar-lab run` command that executes the same run from a shell."""
    options = " ".join(f"-p {name} {value}" for name, value in parameters.items())
    return f"cifar-lab run {notebook} --out {out_dir} {options}".rstrip()


def run_sweep(notebook, out_dir, points: list[dict[str, Any]], fixed: Optional[dict[str, Any]] = None,
              progress: bool = True) -> list[dict]:
    """Execute `notebook` once per point (papermill, one kernel each), each into `out_dir/<point name>`,
    with `fixed` parameters plus the point's; return the `metrics.json` of every point, in order.

    A point whose notebook fails raises `NotebookFailed` naming the executed notebook with the traceback.
    """
    import json

    from tqdm.auto import tqdm

    rows = []
    for point in tqdm(points, desc=f"sweep over {Path(notebook).name}", disable=not progress, leave=False):
        folder = Path(out_dir) / point_name(point)
        result = run_notebook(notebook, folder, {**(fixed or {}), **point})
        if result.metrics is None:
            raise UsageError(f"{notebook} wrote no metrics.json into {folder}; a sweep needs one per point")
        rows.append(json.loads(result.metrics.read_text()))
    return rows
