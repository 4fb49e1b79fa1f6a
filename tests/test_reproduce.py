"""`cifar-lab reproduce`: the book's chapters at a scale, every claim judged on the records the run made (a
committed record only when asked, and then labelled as such), failures recorded, resumable, nothing written
outside --out."""
import json
from pathlib import Path

import pytest

from cifar_lab.book import chapters as book_chapters
from cifar_lab.book import claims, record, records, reproduce
from cifar_lab.book.claims import FAILS, HOLDS
from cifar_lab.book.runner import declared_parameters, read_notebook
from cifar_lab.cli import main

ROOT = Path(__file__).resolve().parents[1]
HEADER = (ROOT / "notebooks" / "01_cifar10_data.md").read_text().split("\n---\n", 1)[0] + "\n---\n"
FASHION_CLAIMS = {"02-fmnist-resnet18", "02-fmnist-tf-convnet", "02-fmnist-mlp"}
OLD_COMMIT = "c0ffee1" + "0" * 33


def fashion_record(label, values, commit=OLD_COMMIT, **changes):
    fields = dict(label=label, measured=record.FINAL_ACCURACY, unit="fraction", seeds=tuple(range(len(values))),
                  values=tuple(values), dataset="fashion_mnist", data_source="/usr/share/datasets/fashion-mnist",
                  train_images=60_000, test_images=10_000, epochs=(30,) * len(values), recipe_epochs=30,
                  optimizer_steps=(), device="cpu (x86_64, 2 threads)", commit=commit, dirty=False,
                  command="cifar-lab reproduce --scale cpu --out runs/cpu", date="2026-11-22T09:00:00+00:00",
                  run_folder=None)
    fields.update(changes)
    return record.Record(**fields)


@pytest.fixture
def steady_code(monkeypatch):
    """One code version for the whole test: a rerun skips what finished with the same code, and the tree's
    uncommitted changes (part of the version) may change under a test while it runs."""
    from cifar_lab.book import runner

    monkeypatch.setattr(runner, "code_version", lambda folder=None: "0" * 40 + "+steady")


def committed_files() -> dict:
    """Every file under the repository's book/results with its size and modification time."""
    folder = ROOT / "book" / "results"
    return {str(path): (path.stat().st_size, path.stat().st_mtime_ns) for path in folder.rglob("*") if path.is_file()}


@pytest.fixture
def committed_folder(tmp_path, monkeypatch):
    """A committed edition of chapter 2 in a temporary folder: the MLP at the README's 0.8833 (holds), ResNet-18
    far below its 0.949 (does not hold); measured at commit c0ffee1 on 2026-11-22."""
    folder = tmp_path / "committed"
    record.save(folder / "02_cifar10_resnet18.json",
                [fashion_record("fmnist-mlp", [0.8833] * 4), fashion_record("fmnist-resnet18", [0.900, 0.901, 0.902])])
    monkeypatch.setattr(reproduce, "COMMITTED_FOLDER", folder)
    return folder


def test_smoke_chapter_2_judges_no_fashion_mnist_claim_and_the_committed_record_is_labelled(tmp_path, capsys,
                                                                                            committed_folder,
                                                                                            steady_code):
    """`--scale smoke --only 02`: the run's records are synthetic (or absent), so no Fashion-MNIST claim holds or
    fails on them; with --judge-committed the committed record's verdicts are printed and reported apart, each
    labelled with that record's commit and date, never the run's. A second run skips the chapter and judges its
    records again. Mutants: the chapter's display of a committed record taken as this run's measurement; the
    committed verdicts attributed to the run (or mixed into its table); the committed record judged without
    --judge-committed."""
    out = tmp_path / "R"
    before = committed_files()
    assert main(["reproduce", "--scale", "smoke", "--only", "02", "--judge-committed", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    entry = results["chapters"]["02"]
    assert entry["status"] == "ok" and entry["scale"] == "smoke"
    assert (out / entry["executed_notebook"]).is_file()
    run_verdicts = {row["id"]: row for row in entry["claims"]}
    assert set(run_verdicts) == {claim.id for claim in claims.CLAIMS["02"]}
    for claim_id in FASHION_CLAIMS:
        assert run_verdicts[claim_id]["verdict"] not in (HOLDS, FAILS), run_verdicts[claim_id]
        assert run_verdicts[claim_id]["record_source"] == "run"
    committed = {row["id"]: row for row in entry["committed"]["claims"]}
    assert committed["02-fmnist-mlp"]["verdict"] == HOLDS
    assert committed["02-fmnist-resnet18"]["verdict"] == FAILS
    label = "from the committed record of commit c0ffee1 (2026-11-22)"
    assert committed["02-fmnist-mlp"]["attribution"] == label
    lines = [line for line in printed.splitlines() if label in line]
    assert any(": holds (" in line and "MLP 256-128-100" in line for line in lines), printed
    assert any(": does not hold (" in line and "ResNet18" in line for line in lines), printed
    assert not any(label in line for line in printed.splitlines() if "this run" in line)
    report = (out / "results.md").read_text()
    own, apart = report.index("**Verdicts**"), report.index("**Verdicts from the committed record**")
    assert own < apart and label not in report[:apart] and label in report[apart:]
    assert committed_files() == before   # nothing written into the repository's book/results

    assert main(["reproduce", "--scale", "smoke", "--only", "02", "--out", str(out)]) == 0
    assert "0 chapters run, 1 skipped" in capsys.readouterr().out
    again = json.loads((out / "results.json").read_text())["chapters"]["02"]
    assert "committed" not in again and [row["verdict"] for row in again["claims"]] == \
        [row["verdict"] for row in entry["claims"]]

    assert main(["reproduce", "--report", "--out", str(out)]) == 0
    page = records.read_record(out / "record.json")
    assert len(page["measurements"][0]["table"]["rows"]) == len(claims.CLAIMS["02"])


@pytest.fixture
def two_tiny_chapters(tmp_path, monkeypatch):
    """A book of two chapters: the first measures a claim's quantity on synthetic data and also finds, in its
    records.json, a record of another commit (as a chapter that copied a committed record would); the second
    fails."""
    def chapter(chapter_id, body):
        path = tmp_path / "notebooks" / f"{chapter_id}_tiny.md"
        path.parent.mkdir(exist_ok=True)
        path.write_text(HEADER + "\n```{code-cell} ipython3\n:tags: [parameters]\n\nsmoke = True\nout_dir = 'x'\n"
                        f"```\n\n```{{code-cell}} ipython3\n{body}\n```\n")
        return book_chapters.Chapter(chapter_id, path, f"tiny {chapter_id}")

    measures = "\n".join([
        "import json, pathlib",
        "from cifar_lab import provenance",
        "from cifar_lab.book import record",
        "pathlib.Path(out_dir, 'metrics.json').write_text(json.dumps({'smoke': smoke}))",
        "here = record.provenance_fields(provenance.collect(), 'tiny', out_dir)",
        "def tiny(label, dataset, values, **changes):",
        "    return record.Record(label=label, measured=record.FINAL_ACCURACY, unit='fraction',",
        "        seeds=tuple(range(len(values))), values=tuple(values), dataset=dataset, data_source=None,",
        "        train_images=60000, test_images=10000, epochs=(30,) * len(values), recipe_epochs=30,",
        "        optimizer_steps=(), **{**here, **changes})",
        "record.save(pathlib.Path(out_dir, 'records.json'), [",
        "    tiny('fmnist-mlp', 'synthetic', [0.8833] * 4),",
        f"    tiny('fmnist-resnet18', 'fashion_mnist', [0.949] * 4, commit={OLD_COMMIT!r}),",
        "])"])
    book = [chapter("91", measures), chapter("92", "raise RuntimeError('chapter 92 breaks')")]
    monkeypatch.setattr(reproduce, "chapters", lambda root=None: book)
    monkeypatch.setitem(claims.CLAIMS, "91", [claim for claim in claims.CLAIMS["02"] if claim.id in FASHION_CLAIMS])
    return book


def test_a_failed_chapter_is_recorded_and_records_not_made_by_the_run_are_set_aside(tmp_path, two_tiny_chapters,
                                                                                   capsys, steady_code):
    """Mutants: a record of another commit in records.json judged as this run's ("holds" for ResNet18); a
    synthetic record judged against a real-data figure; a failing chapter that stops the others."""
    out = tmp_path / "R"
    assert main(["reproduce", "--scale", "smoke", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "1 failed" in captured.out and "92" in captured.err.strip().splitlines()[-1]
    chapters = json.loads((out / "results.json").read_text())["chapters"]
    assert chapters["91"]["status"] == "ok" and chapters["91"]["records"] == "91_tiny/records.json"
    verdicts = {row["id"]: row["verdict"] for row in chapters["91"]["claims"]}
    assert verdicts["02-fmnist-mlp"] == "not comparable: dataset synthetic, not fashion_mnist"
    assert verdicts["02-fmnist-resnet18"] == claims.NOT_MEASURED
    assert "fmnist-resnet18: final test accuracy (made at commit c0ffee1" in chapters["91"]["records_note"]
    assert chapters["92"]["status"] == "failed" and "chapter 92 breaks" in chapters["92"]["error"]
    assert (out / chapters["92"]["executed_notebook"]).is_file()  # kept: it shows the traceback
    report = (out / "results.md").read_text()
    assert "**Failed**" in report and "set aside, not made by this run" in report
    # A rerun skips the chapter that finished and tries the failed one again.
    assert main(["reproduce", "--scale", "smoke", "--out", str(out)]) == 1
    assert "1 chapters run, 1 skipped" in capsys.readouterr().out


def test_cpu_scale_runs_chapters_without_cpu_parameters_as_smoke_and_says_so(tmp_path, two_tiny_chapters, capsys):
    """Mutant: a chapter without a Fashion-MNIST experiment reported as a cpu-scale run."""
    assert main(["reproduce", "--scale", "cpu", "--only", "91", "--out", str(tmp_path / "R")]) == 0
    entry = json.loads((tmp_path / "R" / "results.json").read_text())["chapters"]["91"]
    assert entry["scale"] == "cpu" and entry["ran_as"] == "smoke" and "ran as smoke" in entry["note"]
    assert "cpu (ran as smoke)" in (tmp_path / "R" / "results.md").read_text()


def test_the_book_chapters_and_their_parameters_at_each_scale():
    """Mutants: a scale parameter the notebook does not declare; a chapter missing from CLAIMS; a parameter that
    points a chapter's output into book/results (only `edition publish` writes there)."""
    found = book_chapters.chapters()
    assert sorted(c.id for c in found) == ["01", "02", "03", "03b", "04", "05", "06", "07", "08", "09"]
    toc = book_chapters.toc_files()
    assert [toc.index(f"notebooks/{c.notebook.stem}") for c in found] == sorted(
        toc.index(f"notebooks/{c.notebook.stem}") for c in found)  # in the table of contents' order
    assert set(claims.CLAIMS) == {c.id for c in found}
    by_id = {c.id: c for c in found}
    for chapter_id, parameters in {**book_chapters.CPU_PARAMETERS, **book_chapters.FULL_PARAMETERS}.items():
        declared = declared_parameters(read_notebook(by_id[chapter_id].notebook))
        assert set(parameters) <= set(declared), (chapter_id, set(parameters) - set(declared))
    for scale in book_chapters.SCALES:
        for chapter in found:
            parameters, _, _ = book_chapters.scale_parameters(chapter.id, scale)
            assert "book/results" not in json.dumps(parameters), (scale, chapter.id)


def test_at_full_scale_every_chapter_with_an_accuracy_claim_runs_3_seeds():
    """Mutant: a full-scale chapter whose accuracy claim needs 3 seeds but runs one (never comparable)."""
    for chapter_id, items in claims.CLAIMS.items():
        if any(isinstance(need, claims.Seeds) for claim in items for need in claim.needs):
            parameters, ran_as, _ = book_chapters.scale_parameters(chapter_id, "full")
            assert ran_as == "full" and parameters["smoke"] is False
            assert len(parameters["seeds"]) == 3, chapter_id
    assert book_chapters.scale_parameters("07", "full")[0]["epochs"] == 90  # torchvision's 90-epoch figure


@pytest.mark.parametrize("args, words", [
    (["--scale", "smoke", "--only", "99"], ["unknown chapter 99", "03b"]),
    (["--scale", "smoke", "--only", "06", "--param", "06:no_such_knob=1"], ["no_such_knob"]),
    (["--scale", "smoke", "--param", "06-imagenet_root"], ["CHAPTER:NAME=VALUE"]),
    (["--report"], ["results.json", "does not exist"]),
    (["--report", "--judge-committed"], ["--report", "--judge-committed"]),
])
def test_bad_invocations_are_one_line_errors(tmp_path, capsys, args, words):
    """Mutant: an error that leaves a half-made output folder or prints a traceback."""
    out = tmp_path / "R"
    assert main(["reproduce", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(word in err[0] for word in words), err
    assert not out.exists()


def test_a_corrupt_committed_record_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch):
    """Mutant: the committed records read after the chapters ran (a bad file found only at the end, with the
    output folder half written)."""
    folder = tmp_path / "committed"
    folder.mkdir()
    (folder / "01_cifar10_data.json").write_text("{not json")
    monkeypatch.setattr(reproduce, "COMMITTED_FOLDER", folder)
    out = tmp_path / "R"
    assert main(["reproduce", "--scale", "smoke", "--only", "01", "--judge-committed", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "01_cifar10_data.json" in err[0] and "not valid JSON" in err[0]
    assert not out.exists()


def test_scale_is_required_and_the_help_says_so(capsys):
    """`--scale` (or `--report`) is required and shown without brackets; every option states its default.
    Mutants: --scale optional again; an option without its default in the help."""
    assert main(["reproduce", "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--scale" in err[0]
    assert main(["reproduce", "--help"]) == 0
    text = capsys.readouterr().out
    usage = " ".join(text[:text.index("\n\n")].split())
    assert "(--scale {smoke,cpu,full} | --report)" in usage and "[--scale" not in usage
    options = text[text.index("options:"):text.index("scales:")].split("\n  -")   # one item per option
    for option in ("--report", "--only", "--param", "--judge-committed"):
        help_text = " ".join(next(item for item in options if item.startswith(option[1:])).split())
        assert "(default" in help_text, option
