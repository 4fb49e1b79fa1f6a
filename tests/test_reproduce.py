"""`cifar-lab reproduce`: the book's chapters at a scale, every claim judged, failures recorded, resumable."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cifar_lab.book import records, reproduce
from cifar_lab.cli import main
from cifar_lab.book.runner import declared_parameters, read_notebook

ROOT = Path(__file__).resolve().parents[1]
HEADER = (ROOT / "notebooks" / "01_cifar10_data.md").read_text().split("\n---\n", 1)[0] + "\n---\n"


def is_verdict(text: str) -> bool:
    return text in (reproduce.HOLDS, reproduce.FAILS) or text.startswith(reproduce.NOT_COMPARABLE)


def cifar_lab(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "cifar_lab", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True)


def test_smoke_reproduction_of_two_chapters_judges_every_claim_and_a_second_run_skips_them(tmp_path):
    out = tmp_path / "R"
    done = cifar_lab("reproduce", "--scale", "smoke", "--only", "01", "02", "--out", out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 chapters run, 0 skipped" in done.stdout
    results = json.loads((out / "results.json").read_text())
    assert sorted(results["chapters"]) == ["01", "02"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    report = (out / "results.md").read_text()
    for chapter_id, entry in results["chapters"].items():
        assert entry["status"] == "ok" and entry["scale"] == "smoke" and entry["commit"] == head
        assert entry["metrics"]["smoke"] is True and entry["environment"]["versions"]["torch"]
        assert (out / entry["executed_notebook"]).is_file() and (out / entry["folder"] / "environment.json").is_file()
        assert len(entry["claims"]) == len(reproduce.CLAIMS[chapter_id])
        assert len(entry["checks"]) == len(reproduce.SANITY_CHECKS.get(chapter_id, []))
        for claim in entry["claims"]:
            if claim["metric"].startswith("fmnist."):
                continue  # the Fashion-MNIST section writes these; its own test runs it
            assert is_verdict(claim["verdict"]), claim  # every claim's metric is in the chapter's metrics.json
            assert f"| {claim['verdict']} |" in report and claim["source"] in report
    verdicts = {c["claim"]: c["verdict"] for c in results["chapters"]["02"]["claims"]}
    assert verdicts["ResNet-18 top-1 on CIFAR-10, final epoch of 200"] == reproduce.NOT_AT_SCALE
    assert verdicts["ResNet-18 parameters (CIFAR stem, 10 classes)"] == reproduce.HOLDS
    assert verdicts["batch-1 fp32 latency"] == reproduce.NOT_ON_HARDWARE  # measured on this CPU
    checks = {c["check"]: c["result"] for c in results["chapters"]["01"]["checks"]}
    assert checks["10 classes"] == reproduce.CHECK_OK
    assert report.index("**Sanity checks**") < report.index("## 02") < report.index("**Verdicts**")
    assert report.index("**Verdicts**") < report.rindex("**Sanity checks**")  # chapter 02's apart, after them
    assert report.count("| ") and len(reproduce.NOT_JUDGED) >= 25 and "## Not judged, and why" in report

    again = cifar_lab("reproduce", "--scale", "smoke", "--only", "01", "02", "--out", out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 chapters run, 2 skipped" in again.stdout
    assert json.loads((out / "results.json").read_text())["chapters"]["01"] == results["chapters"]["01"]

    rendered = cifar_lab("reproduce", "--report", "--out", out)
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    record = records.read_record(out / "record.json")
    assert len(record["measurements"][0]["table"]["rows"]) == sum(len(reproduce.CLAIMS[c]) for c in ("01", "02"))
    assert len(record["measurements"][1]["table"]["rows"]) == sum(len(reproduce.SANITY_CHECKS.get(c, []))
                                                                   for c in ("01", "02"))


@pytest.fixture
def two_tiny_chapters(tmp_path, monkeypatch):
    """A book of two chapters, the second of which fails."""
    def chapter(chapter_id, body):
        path = tmp_path / "notebooks" / f"{chapter_id}_tiny.md"
        path.parent.mkdir(exist_ok=True)
        path.write_text(HEADER + "\n```{code-cell} ipython3\n:tags: [parameters]\n\nsmoke = True\nout_dir = 'x'\n"
                        f"```\n\n```{{code-cell}} ipython3\n{body}\n```\n")
        return reproduce.Chapter(chapter_id, path, f"tiny {chapter_id}")

    book = [chapter("91", "import json, pathlib\npathlib.Path(out_dir, 'metrics.json').write_text(json.dumps("
                          "{'smoke': smoke}))"),
            chapter("92", "raise RuntimeError('chapter 92 breaks')")]
    monkeypatch.setattr(reproduce, "chapters", lambda root=None: book)
    return book


def test_a_failed_chapter_is_recorded_and_the_others_run(tmp_path, two_tiny_chapters, capsys):
    out = tmp_path / "R"
    assert main(["reproduce", "--scale", "smoke", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "1 failed" in captured.out and "92" in captured.err.strip().splitlines()[-1]
    chapters = json.loads((out / "results.json").read_text())["chapters"]
    assert chapters["91"]["status"] == "ok"
    assert chapters["92"]["status"] == "failed" and "chapter 92 breaks" in chapters["92"]["error"]
    assert (out / chapters["92"]["executed_notebook"]).is_file()  # kept: it shows the traceback
    assert "**Failed**" in (out / "results.md").read_text()
    # A rerun skips the chapter that finished and tries the failed one again.
    assert main(["reproduce", "--scale", "smoke", "--out", str(out)]) == 1
    assert "1 chapters run, 1 skipped" in capsys.readouterr().out


def test_cpu_scale_runs_chapters_without_cpu_parameters_as_smoke_and_says_so(tmp_path, two_tiny_chapters, capsys):
    assert main(["reproduce", "--scale", "cpu", "--only", "91", "--out", str(tmp_path / "R")]) == 0
    entry = json.loads((tmp_path / "R" / "results.json").read_text())["chapters"]["91"]
    assert entry["scale"] == "cpu" and entry["ran_as"] == "smoke" and "ran as smoke" in entry["note"]
    assert "cpu (ran as smoke)" in (tmp_path / "R" / "results.md").read_text()


def test_the_book_chapters_and_their_cpu_parameters():
    chapters = reproduce.chapters()
    assert sorted(c.id for c in chapters) == ["01", "02", "03", "03b", "04", "05", "06", "07", "08", "09"]
    toc = reproduce.toc_files()
    assert [toc.index(f"notebooks/{c.notebook.stem}") for c in chapters] == sorted(
        toc.index(f"notebooks/{c.notebook.stem}") for c in chapters)  # in the table of contents' order
    assert set(reproduce.CLAIMS) == {c.id for c in chapters}
    by_id = {c.id: c for c in chapters}
    for chapter_id, parameters in {**reproduce.CPU_PARAMETERS, **reproduce.FULL_PARAMETERS}.items():
        declared = declared_parameters(read_notebook(by_id[chapter_id].notebook))
        assert set(parameters) <= set(declared), (chapter_id, set(parameters) - set(declared))


def test_at_full_scale_every_chapter_with_an_accuracy_claim_runs_3_seeds():
    for chapter_id, claims in reproduce.CLAIMS.items():
        if any(isinstance(need, reproduce.Seeds) and reproduce.at_full_scale in claim.needs
               for claim in claims for need in claim.needs):
            parameters, ran_as, _ = reproduce.scale_parameters(chapter_id, "full")
            assert ran_as == "full" and parameters["smoke"] is False
            assert len(parameters["seeds"]) == 3, chapter_id
    assert reproduce.scale_parameters("07", "full")[0]["epochs"] == 90  # torchvision's 90-epoch figure


def claim(needs=(reproduce.at_full_scale,)):
    return reproduce.percent("top-1", "93-95 %", "a paper", "summary.final_acc", reproduce.in_range(0.93, 0.95),
                             needs)


GPU_RUN = {"device": "NVIDIA H100 80GB HBM3"}


@pytest.mark.parametrize("metrics, environment, needs, verdict", [
    ({"smoke": True, "summary": {"final_acc": 0.94}}, {}, (reproduce.at_full_scale,), reproduce.NOT_AT_SCALE),
    ({"smoke": False, "summary": {"final_acc": 0.94}}, {}, (reproduce.at_full_scale,), reproduce.HOLDS),
    ({"smoke": False, "summary": {"final_acc": 0.92}}, {}, (reproduce.at_full_scale,), reproduce.FAILS),
    ({"smoke": False, "summary": {"final_acc": 0.96}}, {}, (reproduce.at_full_scale,), reproduce.FAILS),
    # the device the measurement ran on counts, not the GPUs the machine has
    ({"smoke": False, "summary": {"final_acc": 0.94, "device": "cpu (x86_64, 2 threads)"}}, {"device_count": 1},
     (reproduce.OnGPU("summary.device"),), reproduce.NOT_ON_HARDWARE),
    ({"smoke": False, "summary": {"final_acc": 0.94, **GPU_RUN}}, {"device_count": 0},
     (reproduce.OnGPU("summary.device"),), reproduce.HOLDS),
    ({"smoke": False, "summary": {"final_acc": 0.94, "epochs": 30}}, {},
     (reproduce.TrainedEpochs(90, "summary.epochs"),), "not comparable: 30 of 90 epochs"),
    ({"smoke": False}, {}, (), reproduce.NOT_MEASURED),
    (None, {}, (), reproduce.NOT_MEASURED),
])
def test_verdicts(metrics, environment, needs, verdict):
    assert reproduce.judge(claim(needs), metrics, environment)["verdict"] == verdict


def test_metric_keys_select_rows_average_seeds_and_divide():
    metrics = {"smoke": False, "summary": {"params": 11},
               "comparison": [{"variant": "dense", "seed": 0, "final_acc": 0.6, "train_seconds": 100.0},
                              {"variant": "dense", "seed": 1, "final_acc": 0.62, "train_seconds": 110.0},
                              {"variant": "AST packed", "seed": 0, "final_acc": 0.61, "train_seconds": 50.0}],
               "sweep": [{"target": 0.1, "gains": "tuned", "rate": 0.11}, {"target": 0.1, "gains": "seed", "rate": 0.4}]}
    assert reproduce.lookup(metrics, "summary.params") == 11
    assert reproduce.lookup(metrics, "comparison[variant=dense].final_acc") == pytest.approx(0.61)
    assert reproduce.lookup(metrics, "comparison[variant=dense][seed=1].final_acc") == 0.62
    assert reproduce.lookup(metrics, "sweep[target=0.1][gains=tuned].rate") == 0.11
    assert reproduce.lookup(metrics, "comparison[variant=dense].train_seconds / "
                                     "comparison[variant=AST packed].train_seconds") == pytest.approx(2.1)
    assert reproduce.lookup(metrics, "comparison[variant=AST packed].final_acc - comparison[variant=dense]"
                                     ".final_acc") == pytest.approx(0.0)
    assert reproduce.lookup(metrics, "1 - comparison[variant=dense].final_acc") == pytest.approx(0.39)
    assert reproduce.spread(metrics, "comparison[variant=dense].final_acc") == pytest.approx(0.02 ** 0.5 / 10)
    assert reproduce.spread({"r": {"acc": 0.9, "acc_std": 0.01}}, "r.acc") == 0.01
    assert reproduce.spread(metrics, "summary.params") is None
    assert reproduce.lookup(metrics, "comparison[variant=random].final_acc") is None
    assert reproduce.lookup(metrics, "summary.nothing") is None


@pytest.mark.parametrize("args, words", [
    (["--scale", "smoke", "--only", "99"], ["unknown chapter 99", "03b"]),
    (["--scale", "smoke", "--only", "06", "--param", "06:no_such_knob=1"], ["no_such_knob"]),
    (["--scale", "smoke", "--param", "06-imagenet_root"], ["CHAPTER:NAME=VALUE"]),
    (["--report"], ["results.json", "does not exist"]),
    ([], ["--scale"]),
])
def test_bad_invocations_are_one_line_errors(tmp_path, capsys, args, words):
    out = tmp_path / "R"
    assert main(["reproduce", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(word in err[0] for word in words), err
    assert not out.exists()
