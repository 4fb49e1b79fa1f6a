"""Batch runs of the book's notebooks with papermill: same notebook, new parameters, results kept in one folder.

`run_notebook("notebooks/02_cifar10_resnet18.md", "runs/r18", {"epochs": "30"})` reads the notebook (MyST
`.md` through jupytext, since papermill cannot read it, or `.ipynb`), checks every parameter name against the
notebook's `parameters` cell, injects `out_dir` as the absolute output folder, executes it with the notebook's
folder as working directory, and keeps `OUT/<name>.ipynb` (the executed notebook) beside the
`OUT/metrics.json` the notebook writes itself.

Parameter values are parsed like YAML scalars: `3` is an int, `0.1` a float, `true` a bool, `null` None,
`[1, 2]` a list and anything else a string, which is what a shell user expects from `-p epochs 3`.
"""
from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from .errors import UsageError

OUT_DIR_PARAMETER = "out_dir"
_DECIMAL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


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
    return declared


def run_notebook(path, out_dir, parameters: dict[str, Any] | Iterable[tuple[str, Any]] = (),
                 progress_bar: bool = False, log_output: bool = False, kernel_name: Optional[str] = None,
                 timeout: Optional[int] = None) -> NotebookRun:
    """Execute `path` with `parameters` (strings are parsed as YAML scalars) into `out_dir`.

    Everything is checked before anything is written: a missing notebook, a notebook without a parameters
    cell or an unknown parameter name raises `UsageError` and leaves `out_dir` untouched.
    """
    import papermill

    path = Path(path)
    nb = read_notebook(path)
    given = {name: parse_value(value) for name, value in dict(parameters).items()}
    check_parameters(path, nb, given)

    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    injected = {**given, OUT_DIR_PARAMETER: str(out)}
    out.mkdir(parents=True, exist_ok=True)
    executed = out / (path.stem + ".ipynb")
    try:
        papermill.execute_notebook(
            nb, str(executed), parameters=injected, cwd=str(path.resolve().parent), progress_bar=progress_bar,
            log_output=log_output, kernel_name=kernel_name, execution_timeout=timeout,
        )
    except papermill.PapermillExecutionError as exc:
        # papermill has already saved the executed notebook with the failing cell's traceback in it.
        raise NotebookFailed(f"{path} failed in cell {exc.cell_index + 1} ({exc.ename}: {exc.evalue}); "
                             f"the executed notebook with the traceback is {executed}") from None
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
