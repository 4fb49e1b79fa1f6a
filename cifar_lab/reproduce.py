"""Reproduce the book: execute its chapters at a scale, hold each published claim against the measurement.

`reproduce("smoke", "runs/reproduce")` runs every chapter of `_toc.yml` through `runner.run_notebook` into
`runs/reproduce/<notebook>/`, collects each chapter's `metrics.json` and `environment.json` into
`results.json`, judges every claim of `CLAIMS` (the published figure, its source, the metric that measures
it, the criterion) and renders `results.md`. Scales:

- `smoke`: `smoke=True`, synthetic data and CPU-sized runs: every chapter runs; no accuracy is comparable;
- `cpu`: smoke data, but the longer runs `CPU_PARAMETERS` sets where a chapter has parameters for them (the
  others run as smoke, and the report says so);
- `full`: `smoke=False`, the presets' recipes on the real data: a GPU job.

A chapter that fails is recorded as failed (its executed notebook is kept) and the others go on. Running
again skips the chapters that finished at the same commit and scale.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from . import provenance
from .errors import UsageError
from .io import atomic_write_text

SCALES = ("smoke", "cpu", "full")
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
RECORD_JSON = "record.json"

SCALE_WORDS = {
    "smoke": "synthetic data, CPU-sized runs: shows that every chapter runs, not what the recipes reach",
    "cpu": "synthetic data, longer CPU-sized runs where a chapter offers the parameters for them",
    "full": "the presets' recipes on the real datasets (a GPU job)",
}

# Longer runs on the synthetic data, through parameters the chapters honour in smoke mode. Chapters absent
# here fix their smoke-mode sizes themselves, so at scale `cpu` they run as smoke.
CPU_PARAMETERS = {
    "02": {"epochs": 4, "train_subset": 5000},
    "03": {"epochs": 6},
    "03b": {"epochs": 4},
    "04": {"epochs": 3, "train_subset": 2000},
    "05": {"epochs": 3},
}

HOLDS, FAILS = "holds", "does not hold"
NOT_AT_SCALE, NOT_ON_HARDWARE, NOT_MEASURED = ("not comparable at this scale", "not comparable on this hardware",
                                               "not measured")


# --- the claims ----------------------------------------------------------------------------------------------

Condition = Callable[[dict, dict], Optional[str]]  # (metrics, environment) -> None, or why not comparable


def at_full_scale(metrics: dict, environment: dict) -> Optional[str]:
    """Comparable only on the real data with the chapter's recipe (smoke runs use synthetic data)."""
    return None if metrics.get("smoke") is False else NOT_AT_SCALE


def on_gpu(metrics: dict, environment: dict) -> Optional[str]:
    """Comparable only when measured on a CUDA GPU (the published figure is a GPU figure)."""
    return None if (environment or {}).get("device_count", 0) > 0 else NOT_ON_HARDWARE


def trained_epochs(at_least: int, key: str = "summary.epochs") -> Condition:
    """Comparable only after the published recipe's number of epochs."""
    def condition(metrics: dict, environment: dict) -> Optional[str]:
        epochs = lookup(metrics, key)
        return None if isinstance(epochs, (int, float)) and epochs >= at_least else NOT_AT_SCALE
    return condition


@dataclass(frozen=True)
class Claim:
    claim: str                          # what is claimed, in words
    expected: str                       # the published figure, as published
    source: str                         # who publishes it
    metric: tuple[str, ...]             # dotted keys into the chapter's metrics.json; the first one present counts
    holds: Callable[[float], bool]      # the criterion the measurement is held to
    criterion: str                      # that criterion in words
    needs: tuple[Condition, ...] = (at_full_scale,)
    factor: float = 1.0                 # measured value x factor is shown (fractions as %)
    unit: str = ""


def percent(claim, expected, source, metric, holds, criterion, needs=(at_full_scale,)) -> Claim:
    keys = (metric,) if isinstance(metric, str) else tuple(metric)
    return Claim(claim, expected, source, keys, holds, criterion, needs, 100.0, "%")


def value(claim, expected, source, metric, holds, criterion, needs=(at_full_scale,), factor=1.0, unit="") -> Claim:
    keys = (metric,) if isinstance(metric, str) else tuple(metric)
    return Claim(claim, expected, source, keys, holds, criterion, needs, factor, unit)


AST_SEED = "the AST seed document (SimpleCNN, 40 epochs of CIFAR-10)"
ast_epochs = trained_epochs(40, "comparison[variant=dense].epochs")
CLAIMS: dict[str, list[Claim]] = {
    "01": [
        value("CIFAR-10 training images", "50,000", "Krizhevsky (2009), Learning Multiple Layers of Features from "
              "Tiny Images", "train_samples", lambda v: v == 50_000, "= 50,000"),
        value("CIFAR-10 classes", "10", "Krizhevsky (2009)", "num_classes", lambda v: v == 10, "= 10", needs=()),
        value("device-resident loader vs torchvision DataLoader", "faster (the split stays on the device)",
              "airbench (Keller Jordan) keeps CIFAR-10 on the GPU for this reason", "loader_ratio",
              lambda v: v > 1.0, "> 1x, same run (smoke: a cut-down benchmark, too short to judge)", unit="x"),
    ],
    "02": [
        percent("ResNet-18 top-1 on CIFAR-10", "93-95 %", "the seed document; kuangliu/pytorch-cifar reports "
                "93.02 % for ResNet18", "summary.best_acc", lambda v: v >= 0.85, ">= 85 %",
                needs=(at_full_scale, trained_epochs(200))),
        value("batch-1 fp32 latency", "4-6 ms on a GPU", "the seed document", "latency_ms.p50_ms",
              lambda v: v < 10, "< 10 ms (median)", needs=(on_gpu,), unit="ms"),
        value("ResNet-18 parameters (CIFAR stem, 10 classes)", "11.17 M", "the seed document",
              "summary.params", lambda v: abs(v - 11.17e6) < 0.5e6, "11.17 M +- 0.5 M", needs=(), factor=1e-6,
              unit="M"),
        value("weights file", "42-45 MB", "the seed document", "weights_mb", lambda v: v < 100, "< 100 MB",
              needs=(), unit="MB"),
    ],
    "03": [
        percent("SimpleCNN dense top-1", "60 %", AST_SEED, "comparison[variant=dense].final_acc",
                lambda v: v >= 0.58, ">= 58 % (mean over seeds)", needs=(at_full_scale, ast_epochs)),
        percent("AST top-1 (packed, the book's AST)", "61.2 %", AST_SEED, "comparison[variant=AST packed].final_acc",
                lambda v: v >= 0.592, ">= 59.2 % (2 points; mean over seeds)", needs=(at_full_scale, ast_epochs)),
        percent("AST activation rate", "10.4 %", AST_SEED, "comparison[variant=AST packed].activation_rate",
                lambda v: abs(v - 0.104) <= 0.02, "10.4 % +- 2 points", needs=(at_full_scale, ast_epochs)),
        value("AST wall-clock speedup over dense", "11.5x", AST_SEED,
              "comparison[variant=dense].train_seconds / comparison[variant=AST packed].train_seconds",
              lambda v: v >= 11.5, ">= 11.5x", needs=(at_full_scale, ast_epochs, on_gpu), unit="x"),
    ],
    "03b": [
        percent("AST activation rate of one run (target 10 %)", "10.4 %", AST_SEED, "activation_rate",
                lambda v: abs(v - 0.104) <= 0.02, "10.4 % +- 2 points"),
        percent("AST energy savings (the seed's formula)", "89.6 %", AST_SEED,
                ("energy_savings_seed_formula", "energy_savings"), lambda v: abs(v - 0.896) <= 0.03,
                "89.6 % +- 3 points"),
    ],
    "04": [
        percent("ResNet-18 top-1 on CIFAR-100", ">= 73 %; published ResNet-18 75.61 %",
                "the seed document; weiaicunzai/pytorch-cifar100 (ResNet18: 75.61 %)", "summary.best_acc",
                lambda v: v >= 0.73, ">= 73 %", needs=(at_full_scale, trained_epochs(100))),
        value("ResNet-18 parameters (100 classes)", "11.22 M", "the seed document", "summary.params",
              lambda v: abs(v - 11.22e6) < 0.5e6, "11.22 M +- 0.5 M", needs=(), factor=1e-6, unit="M"),
    ],
    "05": [
        percent("NaiveNet top-1 on CIFAR-100", "about 70 %", "the seed document (NaiveNet at 128 px)",
                "accuracy.naivenet.top1", lambda v: v >= 0.68, ">= 68 %"),
        percent("ResNet-18 top-1 on CIFAR-100 (zoo)", ">= 73 %", "the seed document", "accuracy.resnet18_cifar.top1",
                lambda v: v >= 0.73, ">= 73 %"),
    ],
    "06": [
        percent("ResNet-50 top-1 on ImageNet-100 (pretrained, dense)", "75-80 % (the seed); about 92 % (the AST "
                "repository)", "the seed document; the AST repository", "runs.imagenet100-resnet50.final_acc",
                lambda v: v >= 0.75, ">= 75 %"),
        percent("ResNet-50 + AST top-1 on ImageNet-100", "as dense, at 10 % activation", "the seed document",
                "runs.imagenet100-resnet50-ast.final_acc", lambda v: v >= 0.75, ">= 75 %"),
    ],
    "07": [
        percent("ResNet-50 top-1 on ImageNet-1k", "76.13 %", "torchvision ResNet50_Weights.IMAGENET1K_V1 (90 epochs)",
                "summary.best_acc", lambda v: v >= 0.75, ">= 75 % after 90 epochs",
                needs=(at_full_scale, trained_epochs(90))),
    ],
    "08": [
        value("bytes all-reduced per step, post-local SGD against DDP", "about 1/H of DDP's (parameters averaged "
              "every H steps instead of gradients every step)", "Lin et al. (2020), Don't Use Large Mini-Batches, "
              "Use Local SGD", "local_sgd_bytes_per_step / ddp_bytes_per_step", lambda v: v < 1.0,
              "< 1 (same run)", needs=()),
        percent("AST activation rate with 2 processes (one global threshold)", "10.4 %", AST_SEED,
                "ast.activation_rate", lambda v: abs(v - 0.10) <= 0.02, "10 % +- 2 points (last epoch)", needs=()),
        value("DDP scaling efficiency (images/s of N GPUs over N x one GPU)", "close to 1 for ResNets",
              "Li et al. (2020), PyTorch Distributed: Experiences on Accelerating Data Parallel Training",
              "efficiency", lambda v: v >= 0.8, ">= 0.8", needs=(at_full_scale, on_gpu)),
    ],
    "09": [
        value("ResNet-18 batch-1 fp32 latency, eager (chapter 9's reference route)", "< 10 ms on a GPU",
              "the inference-acceleration seed document (warm-up, then 1,000 timed runs)",
              "routes.eager.p50_ms", lambda v: v < 10, "< 10 ms (median)", needs=(at_full_scale, on_gpu),
              unit="ms"),
    ],
}


PART = re.compile(r"([^.\[\]]+)((?:\[[^\]]*\])*)")   # a name and its [field=value] selectors
SELECTOR = re.compile(r"\[([^=\]]+)=([^\]]*)\]")


def lookup(metrics: dict, key: str) -> Any:
    """A value of a chapter's metrics by key; None when any part is missing.

    "a.b" is metrics["a"]["b"]; "rows[variant=dense].acc" takes the "acc" of the rows of the list "rows"
    whose "variant" is "dense" (several rows, one per seed: their mean); "A / B" divides two such values.
    """
    if " / " in key:
        numerator, denominator = (lookup(metrics, part.strip()) for part in key.split(" / ", 1))
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (numerator, denominator))
        return numerator / denominator if numbers and denominator else None
    found: list[Any] = [metrics]
    for name, selectors in PART.findall(key):
        found = [item[name] for item in found if isinstance(item, dict) and name in item]
        for field_name, wanted in SELECTOR.findall(selectors):
            rows = [row for item in found for row in (item if isinstance(item, list) else [item])]
            found = [row for row in rows if isinstance(row, dict) and str(row.get(field_name)) == wanted]
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    numbers = [value for value in found if isinstance(value, (int, float)) and not isinstance(value, bool)]
    return sum(numbers) / len(numbers) if len(numbers) == len(found) else found


def judge(claim: Claim, metrics: Optional[dict], environment: Optional[dict]) -> dict:
    """One claim against one chapter's measurement: the measured value and the verdict."""
    row = {"claim": claim.claim, "expected": claim.expected, "source": claim.source, "criterion": claim.criterion,
           "metric": claim.metric[0], "measured": None, "shown": "-", "verdict": NOT_MEASURED}
    if metrics is None:
        return row
    key = next((key for key in claim.metric if lookup(metrics, key) is not None), claim.metric[0])
    measured = lookup(metrics, key)
    if isinstance(measured, bool) or not isinstance(measured, (int, float)):
        return row
    reason = next((why for why in (need(metrics, environment or {}) for need in claim.needs) if why), None)
    shown = measured * claim.factor
    row.update(metric=key, measured=measured, shown=f"{shown:,.4g} {claim.unit}".strip(),
               verdict=reason or (HOLDS if claim.holds(measured) else FAILS))
    return row


# --- the chapters --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Chapter:
    id: str          # "01", "03b": the notebook's name up to its first underscore
    notebook: Path   # notebooks/NN_topic.md
    title: str       # the notebook's first heading


def book_root() -> Path:
    """The clone the package lives in: the book's notebooks and _toc.yml are there."""
    root = provenance.PACKAGE_PARENT
    if not (root / "_toc.yml").is_file():
        raise UsageError(f"the book is not next to the package ({root} has no _toc.yml): reproduce runs from a "
                         f"clone of the repository installed with pip install -e")
    return root


def toc_files(root: Optional[Path] = None) -> list[str]:
    """Every `file:` of the book's _toc.yml in its order, the root page first (paths without extension)."""
    import yaml

    toc = yaml.safe_load(((root or book_root()) / "_toc.yml").read_text())
    found = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                found.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return found


def chapters(root: Optional[Path] = None) -> list[Chapter]:
    """The notebooks of _toc.yml, in its order."""
    root = root or book_root()
    found = []
    for name in toc_files(root):
        notebook = root / f"{name}.md"
        if name.startswith("notebooks/") and notebook.is_file():
            found.append(Chapter(notebook.stem.split("_")[0], notebook, first_heading(notebook)))
    return found


def first_heading(notebook: Path) -> str:
    """The notebook's title without its chapter number ("# 3b. One AST run" -> "One AST run")."""
    import re

    for line in notebook.read_text().splitlines():
        if line.startswith("# "):
            return re.sub(r"^\w+\.\s+", "", line[2:].strip())
    return notebook.stem


def select(available: list[Chapter], only: Optional[list[str]]) -> list[Chapter]:
    if not only:
        return available
    known = {chapter.id: chapter for chapter in available}
    unknown = [chapter for chapter in only if chapter not in known]
    if unknown:
        raise UsageError(f"unknown chapter {', '.join(unknown)}; the book's chapters are {', '.join(known)}")
    return [chapter for chapter in available if chapter.id in set(only)]


def scale_parameters(chapter_id: str, scale: str) -> tuple[dict, str, Optional[str]]:
    """(notebook parameters, the scale the chapter actually runs at, a note for the report)."""
    if scale == "full":
        return {"smoke": False}, "full", None
    if scale == "cpu":
        if chapter_id in CPU_PARAMETERS:
            return {"smoke": True, **CPU_PARAMETERS[chapter_id]}, "cpu", None
        return {"smoke": True}, "smoke", "this chapter has no parameters for longer CPU runs: it ran as smoke"
    return {"smoke": True}, "smoke", None


# --- running -------------------------------------------------------------------------------------------------

@dataclass
class ReproduceResult:
    results: dict                                   # what results.json holds
    ran: list[str] = field(default_factory=list)    # chapters run now
    skipped: list[str] = field(default_factory=list)  # done earlier at the same commit and scale
    failed: list[str] = field(default_factory=list)
    json_path: Optional[Path] = None
    markdown_path: Optional[Path] = None


def reproduce(scale: str, out_dir, only: Optional[list[str]] = None, progress: bool = True,
              on_chapter: Optional[Callable[[dict, bool], None]] = None,
              extra: Optional[dict[str, dict]] = None) -> ReproduceResult:
    """Run the selected chapters at `scale` into `out_dir`; write results.json and results.md after each one.

    `extra` adds notebook parameters per chapter id, e.g. {"06": {"imagenet_root": "/data/imagenet100"}}.

    `on_chapter(entry, skipped)` is called after every chapter with its results.json entry.
    """
    from tqdm import tqdm  # plain: tqdm.auto wants ipywidgets inside notebooks

    from .runner import prepare_out_dir

    if scale not in SCALES:
        raise UsageError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    selected = select(chapters(), only)
    extra = extra or {}
    unknown = sorted(set(extra) - {chapter.id for chapter in selected})
    if unknown:
        raise UsageError(f"--param for chapter {', '.join(unknown)}, which this run does not include")
    check_extra_parameters(selected, extra)
    out = prepare_out_dir(out_dir)
    results = load_results(out)
    commit, _ = provenance.git_state()
    outcome = ReproduceResult(results, json_path=out / RESULTS_JSON, markdown_path=out / RESULTS_MD)
    bar = tqdm(selected, desc=f"reproduce ({scale})", unit="chapter", disable=not progress, leave=False)
    for chapter in bar:
        bar.set_postfix(chapter=chapter.id)
        previous = results["chapters"].get(chapter.id)
        parameters, ran_as, note = scale_parameters(chapter.id, scale)
        parameters.update(extra.get(chapter.id, {}))
        skipped = is_done(previous, commit, scale, parameters)
        if skipped:
            outcome.skipped.append(chapter.id)
            entry = previous
        else:
            entry = run_chapter(chapter, out, scale, parameters, ran_as, note)
            results["chapters"][chapter.id] = entry
            outcome.ran.append(chapter.id)
            save(results, out)
        if entry["status"] != "ok":
            outcome.failed.append(chapter.id)
        if on_chapter is not None:
            on_chapter(entry, skipped)
    bar.close()
    save(results, out)
    return outcome


def check_extra_parameters(selected: list[Chapter], extra: dict[str, dict]) -> None:
    """Refuse, before anything runs, a --param that its chapter's parameters cell does not define."""
    from .runner import check_parameters, parse_value, read_notebook

    for chapter in selected:
        if chapter.id in extra:
            given = {name: parse_value(value) for name, value in extra[chapter.id].items()}
            check_parameters(chapter.notebook, read_notebook(chapter.notebook), given)


def is_done(entry: Optional[dict], commit: str, scale: str, parameters: dict) -> bool:
    """A chapter finished at this commit and scale with these parameters (an unknown commit never counts as
    the same)."""
    return bool(entry) and entry.get("status") == "ok" and entry.get("scale") == scale \
        and commit != provenance.UNKNOWN and entry.get("commit") == commit and entry.get("parameters") == parameters


def run_chapter(chapter: Chapter, out: Path, scale: str, parameters: dict, ran_as: str,
                note: Optional[str]) -> dict:
    """Execute one chapter into out/<notebook name>; its results.json entry, also when it fails."""
    from .runner import run_notebook, stderr_into

    folder = out / chapter.notebook.stem
    (folder / "metrics.json").unlink(missing_ok=True)  # an earlier run's metrics must not pass for this one's
    start = time.perf_counter()
    error = None
    try:
        with stderr_into(folder / "kernel-stderr.log"):
            run_notebook(chapter.notebook, folder, parameters)
    except UsageError as exc:  # a failing cell (NotebookFailed) or parameters the notebook lacks
        error = str(exc)
    except Exception as exc:  # a kernel that died: this chapter failed, the next one still runs
        error = " ".join(f"{type(exc).__name__}: {exc}".split())
    metrics = read_json(folder / "metrics.json")
    if error is None and metrics is None:
        error = f"{chapter.notebook.name} wrote no metrics.json into {folder}"
    environment = provenance.read(folder) or provenance.collect(parameters)
    executed = folder / f"{chapter.notebook.stem}.ipynb"
    return {
        "chapter": chapter.id, "title": chapter.title, "notebook": f"notebooks/{chapter.notebook.name}",
        "scale": scale, "ran_as": ran_as, "note": note, "parameters": parameters,
        "status": "failed" if error else "ok", "error": error,
        "commit": environment.get("commit"), "dirty": environment.get("dirty"),
        "seconds": round(time.perf_counter() - start, 1), "finished_utc": provenance.utc_now(),
        "folder": folder.name, "executed_notebook": f"{folder.name}/{executed.name}" if executed.is_file() else None,
        "metrics": metrics, "environment": environment,
        "claims": [judge(claim, metrics if not error else None, environment) for claim in CLAIMS.get(chapter.id, [])],
    }


def read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_results(out: Path) -> dict:
    """results.json of an earlier run into `out`, or an empty one; a one-line error when it is not readable."""
    path = out / RESULTS_JSON
    if not path.exists():
        return {"chapters": {}}
    results = read_json(path)
    if not isinstance(results, dict) or not isinstance(results.get("chapters"), dict):
        raise UsageError(f"{path} is not a results file of cifar-lab reproduce; move it away or choose another --out")
    return results


def save(results: dict, out: Path) -> None:
    results["updated_utc"] = provenance.utc_now()
    ordered = {chapter_id: results["chapters"][chapter_id] for chapter_id in sorted(results["chapters"])}
    results["chapters"] = ordered
    atomic_write_text(out / RESULTS_JSON, json.dumps(results, indent=2, default=str) + "\n")
    atomic_write_text(out / RESULTS_MD, render_markdown(results))


def write_report(out_dir) -> Path:
    """Render results.md and record.json again from results.json (no chapter runs): the shareable report."""
    out = Path(out_dir)
    if not (out / RESULTS_JSON).is_file():
        raise UsageError(f"{out / RESULTS_JSON} does not exist; run cifar-lab reproduce --out {out} first")
    results = load_results(out)
    atomic_write_text(out / RESULTS_MD, render_markdown(results))
    atomic_write_text(out / RECORD_JSON, json.dumps(book_record(results), indent=2) + "\n")
    return out / RESULTS_MD


# --- the report ----------------------------------------------------------------------------------------------

def verdict_counts(entry: dict) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in entry.get("claims", []):
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    return counts


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(results: dict) -> str:
    """results.md: an overview table, then per chapter its provenance and its claims with their verdicts."""
    entries = list(results["chapters"].values())
    lines = ["# Reproduction report", "",
             f"Written by `cifar-lab reproduce` on {results.get('updated_utc', provenance.utc_now())}. Each claim "
             "is the published figure with its source; the verdict holds the measurement to the criterion, or "
             "says why the two cannot be compared (synthetic data at smoke scale, a CPU where the figure is a GPU "
             "figure, a shorter run than the recipe).", "",
             "| chapter | status | scale | commit | device | minutes | verdicts |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for entry in entries:
        counts = ", ".join(f"{n} {verdict}" for verdict, n in verdict_counts(entry).items()) or "-"
        lines.append(f"| {entry['chapter']} {_cell(entry['title'])} | {entry['status']} | {_scale_text(entry)} | "
                     f"`{provenance.short_commit(entry.get('environment'))}` | "
                     f"{_cell((entry.get('environment') or {}).get('device', '?'))} | {entry['seconds'] / 60:.1f} | "
                     f"{counts} |")
    for entry in entries:
        lines += ["", f"## {entry['chapter']} · {entry['title']}", ""]
        lines.append(f"`{entry['notebook']}` at scale **{_scale_text(entry)}** ({SCALE_WORDS[entry['ran_as']]}); "
                     f"parameters {json.dumps(entry['parameters'])}.")
        if entry.get("note"):
            lines += ["", f"Note: {entry['note']}."]
        if entry["status"] != "ok":
            lines += ["", f"**Failed**: {entry['error']}",
                      "", f"Executed notebook (with the traceback): `{entry.get('executed_notebook') or '-'}`."]
        lines += ["", "Provenance: " + "; ".join(provenance.describe(entry.get("environment"))) + ".", ""]
        if entry.get("claims"):
            lines += ["| claim | expected | source | criterion | measured | verdict |",
                      "| --- | --- | --- | --- | --- | --- |"]
            lines += [f"| {_cell(row['claim'])} | {_cell(row['expected'])} | {_cell(row['source'])} | "
                      f"{_cell(row['criterion'])} | {_cell(row['shown'])} | {row['verdict']} |"
                      for row in entry["claims"]]
        else:
            lines.append("This chapter states no figure to hold a run against.")
    return "\n".join(lines) + "\n"


def _scale_text(entry: dict) -> str:
    return entry["scale"] if entry["ran_as"] == entry["scale"] else f"{entry['scale']} (ran as {entry['ran_as']})"


def book_record(results: dict) -> dict:
    """The report as a record for the book's reproduction page (book/results/NAME.json): one row per claim."""
    entries = list(results["chapters"].values())
    environments = [entry.get("environment") or {} for entry in entries]
    commits = sorted({provenance.short_commit(env) for env in environments})
    devices = sorted({str(env.get("device", "?")) for env in environments})
    scales = sorted({_scale_text(entry) for entry in entries})
    rows = [[entry["chapter"], row["claim"], row["expected"], row["shown"], row["verdict"]]
            for entry in entries for row in entry.get("claims", [])]
    software = sorted({f"torch {env.get('versions', {}).get('torch')}, Python {env.get('versions', {}).get('python')}"
                       for env in environments if env})
    return {
        "title": f"cifar-lab reproduce at scale {', '.join(scales)} on {', '.join(devices)}",
        "provenance": {"commit": ", ".join(commits), "date": results.get("updated_utc"), "device": ", ".join(devices),
                       "software": "; ".join(software)},
        "measurements": [{"title": "Claims and verdicts",
                          "command": f"cifar-lab reproduce --scale {'/'.join(sorted({e['scale'] for e in entries}))} "
                                     f"--out DIR",
                          "table": {"columns": ["chapter", "claim", "expected", "measured", "verdict"],
                                    "rows": rows}}],
    }
