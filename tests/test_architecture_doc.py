"""ARCHITECTURE.md says what the code does: every dotted name it mentions in backticks resolves.

A name such as `distributed.wrap` or `export.ExportedModel.preprocess` is looked up as the code would be: its
first part names a module of the package (top level first, else the one submodule of that name anywhere in
`cifar_lab`), the rest are attributes (importlib + getattr). Names of other libraries (`torch.compile`) must
import too. The only dotted names allowed not to resolve are attributes of objects the text names by their role
(`step.train_batch`, `run.environment`), listed in OBJECTS. Each concept also has one home: the checks at the
end find the functions that once had two.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
import types
from pathlib import Path

import pytest

import cifar_lab

DOC = Path(__file__).resolve().parent.parent / "ARCHITECTURE.md"
# Words the text uses for objects of a run, not modules: `step.train_batch` is "the step object's train_batch".
OBJECTS = {"step", "run", "train_loader", "optimizer", "scheduler"}
FILE_SUFFIXES = {"py", "json", "csv", "md", "pt", "pt2", "onnx", "yml", "yaml", "ipynb", "txt", "toml", "sh", "cfg",
                 "html", "png", "gz", "log"}
DOTTED = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")


def dotted_names(text: str) -> list[str]:
    names = []
    for span in re.findall(r"`([^`\n]+)`", text):
        name = span.strip().removesuffix("()")
        if DOTTED.match(name) and name.rsplit(".", 1)[1] not in FILE_SUFFIXES:
            names.append(name)
    return sorted(set(names))


def package_modules() -> dict[str, list[str]]:
    """Last name part -> full module names, for every module and package under cifar_lab."""
    found: dict[str, list[str]] = {}
    for info in pkgutil.walk_packages(cifar_lab.__path__, "cifar_lab."):
        found.setdefault(info.name.rsplit(".", 1)[1], []).append(info.name)
    return found


MODULES = package_modules()


def resolve(name: str):
    """The object `name` stands for; raises LookupError saying why not."""
    first, *rest = name.split(".")
    if first == "cifar_lab":
        base = "cifar_lab"
    elif f"cifar_lab.{first}" in MODULES.get(first, []):
        base = f"cifar_lab.{first}"
    elif len(MODULES.get(first, [])) == 1:
        base = MODULES[first][0]
    elif first in MODULES:
        raise LookupError(f"`{name}`: '{first}' is ambiguous ({', '.join(MODULES[first])}); write the full name")
    else:
        base = first  # another library
    obj = importlib.import_module(base)
    for part in rest:
        if isinstance(obj, types.ModuleType):
            try:  # a submodule (`engine.checkpoint`)
                obj = importlib.import_module(f"{obj.__name__}.{part}")
                continue
            except ModuleNotFoundError:
                pass
        if not hasattr(obj, part):
            raise LookupError(f"`{name}`: {getattr(obj, '__name__', obj)!s} has no attribute '{part}'")
        obj = getattr(obj, part)
    return obj


def test_the_resolver_finds_real_names_and_rejects_wrong_ones():
    assert resolve("distributed.wrap") is importlib.import_module("cifar_lab.distributed").wrap
    assert resolve("checkpoint.load_model").__module__ == "cifar_lab.engine.checkpoint"
    with pytest.raises(LookupError):
        resolve("trainer.device_name")
    with pytest.raises(LookupError, match="ambiguous"):
        resolve("imagenet.PRESETS")
    assert dotted_names("`a.b` `x.py` `summary.json` `step.train_batch()` `one` `a b.c`") == \
        ["a.b", "step.train_batch"]


NAMES = dotted_names(DOC.read_text())


def test_the_document_names_functions_at_all():
    assert len(NAMES) >= 40 and "distributed.wrap" in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_dotted_name_in_architecture_md_resolves(name):
    if name.split(".")[0] in OBJECTS:
        return
    try:
        resolve(name)
    except (LookupError, ImportError) as exc:
        pytest.fail(f"ARCHITECTURE.md mentions {exc}")


# --- one home per concept ---------------------------------------------------------------------------------------

def test_device_names_have_one_home():
    from cifar_lab import measure, provenance
    from cifar_lab.bench import inference as bench_inference
    from cifar_lab.engine import trainer

    assert not hasattr(trainer, "device_name") and not hasattr(measure, "device_label")
    assert measure.device_name is provenance.device_name is bench_inference.device_name
    assert provenance.device_name("cpu").startswith("cpu (")


def test_value_parsing_has_one_home():
    from cifar_lab import config, values
    from cifar_lab.book import runner

    assert not hasattr(config, "_parse_value")
    assert config.parse_value is values.parse_value and runner.parse_value is values.parse_value
    assert values.parse_value("1e-3") == 0.001 and values.parse_value("1e-3", float, "lr") == 0.001


def test_input_preparation_has_one_home():
    import inspect

    from cifar_lab import export, inference

    assert "model_input" in inspect.getsource(export.ExportedModel.preprocess)
    assert "model_input" in inspect.getsource(inference.Predictor.preprocess)
    assert "interpolate" not in inspect.getsource(export)  # no second resize of its own


def test_export_writes_through_the_atomic_helpers():
    import inspect

    from cifar_lab import export

    source = inspect.getsource(export)
    assert "atomic_write(" in source
    assert not any(word in source for word in ("mkstemp", "os.replace", "os.fsync"))
