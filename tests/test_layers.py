"""The package's layering: the command-line layer sits on top, nothing imports it, and no two modules import
each other in a cycle. Imports are read from the source (every `import` statement, in functions too), and
importing a module counts as importing the packages above it, whose `__init__` runs first (except the
packages the importing module itself lives in: those are already running)."""
import ast
from pathlib import Path

import jupytext
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cifar_lab"
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_names(source: str, module: str, is_package: bool) -> set[str]:
    """Every cifar_lab module `source` imports, resolved to absolute names (`from . import x` included)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names}
    return {name for name in found if name in MODULES}


def with_parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:k]) for k in range(1, len(parts) + 1)} & set(MODULES)


def graph() -> dict[str, set[str]]:
    edges = {}
    for name, path in MODULES.items():
        targets = set()
        for target in imported_names(path.read_text(), name, path.name == "__init__.py"):
            targets |= with_parents(target)
        own_packages = with_parents(name)
        edges[name] = targets - own_packages
    return edges


def test_the_parser_of_this_test_sees_the_imports():
    edges = graph()
    assert "cifar_lab.engine.steps" in edges["cifar_lab.engine.sparse_step"]
    assert "cifar_lab.cli.report" in edges["cifar_lab.cli.bench"]
    assert "cifar_lab.data.registry" in edges["cifar_lab.engine.trainer"]


def test_nothing_outside_the_cli_package_imports_it():
    offenders = {name: sorted(t for t in targets if t == "cifar_lab.cli" or t.startswith("cifar_lab.cli."))
                 for name, targets in graph().items()
                 if name != "cifar_lab.cli" and not name.startswith("cifar_lab.cli.") and name != "cifar_lab.__main__"}
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS.glob("*.md")), ids=lambda p: p.name)
def test_notebooks_do_not_import_the_cli(notebook):
    nb = jupytext.read(notebook)
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    assert not [n for n in names if n == "cifar_lab.cli" or n.startswith("cifar_lab.cli.")]


def test_no_import_cycles():
    edges = graph()
    cycles, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == []


def test_the_library_never_imports_the_book_layer():
    """The library (data, models, engine, sparse, distributed, inference, export, bench, ...) trains and
    measures; `cifar_lab.book` turns runs into pages and sits on top of it. Mutant caught: a benchmark that
    imports `cifar_lab.book.records` to shape its result."""
    def in_book(name):
        return name == "cifar_lab.book" or name.startswith("cifar_lab.book.")

    def in_cli(name):
        return name == "cifar_lab.cli" or name.startswith("cifar_lab.cli.") or name == "cifar_lab.__main__"

    offenders = {name: sorted(t for t in targets if in_book(t))
                 for name, targets in graph().items() if not in_book(name) and not in_cli(name)}
    assert {k: v for k, v in offenders.items() if v} == {}
