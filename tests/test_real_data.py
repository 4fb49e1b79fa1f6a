"""The real-data records the chapters render: named variants of one preset as typed records, comparisons in
words through `stats.compare`, and a page that shows a committed record without passing it off as measured."""
import json
import statistics

import pytest

from cifar_lab.book import real_data, record
from cifar_lab.data import fashion_mnist

BASE = dict(unit="fraction", dataset="fashion_mnist", data_source="/x", train_images=60000, test_images=10000,
            recipe_epochs=15, device="cpu", dirty=False, command="cifar-lab run", run_folder=None,
            optimizer_steps=[], date="2026-12-02T11:00:00+00:00")


def entry(label, finals, superclass=None, commit="ed22271aaaa"):
    n = len(finals)
    found = [record.Record(label=label, measured=record.FINAL_ACCURACY, seeds=list(range(n)), values=finals,
                           epochs=[3] * n, commit=commit, **BASE),
             record.Record(label=label, measured=record.BEST_ACCURACY, seeds=list(range(n)),
                           values=[f + 0.001 for f in finals], epochs=[3] * n, commit=commit, **BASE)]
    if superclass:
        found.append(record.Record(label=label, measured=record.FINAL_SUPERCLASS_ACCURACY, seeds=list(range(n)),
                                   values=superclass, epochs=[3] * n, commit=commit, **BASE))
    return found


def shown(*entries, source="run"):
    return record.RecordSet([r for e in entries for r in e], {}, source, "records.json")


def test_versus_says_better_only_when_the_interval_excludes_zero():
    """Mutant caught: a verdict from the difference of the means alone (the old `compare_means` spread rule
    called 0.005 against a spread of 0.01 no difference, but a rule that ignores the interval calls any gap
    better)."""
    records = shown(entry("a", [0.90, 0.91, 0.92], [0.99, 0.99, 0.99]),
                    entry("b", [0.85, 0.86, 0.87], [0.99, 0.98, 0.99]),
                    entry("c", [0.905, 0.915, 0.925], [0.97, 0.98, 0.99]))
    assert real_data.versus(records, "a", "b").verdict == "better"
    assert real_data.versus(records, "b", "a").verdict == "worse"
    close = real_data.versus(records, "c", "a")
    assert close.verdict == "no clear difference"
    assert close.difference == pytest.approx(0.005)
    assert close.low < 0 < close.high
    sentence = real_data.versus_sentence(records, "c", "a")
    assert "n=3 and 3" in sentence and "95% CI" in sentence and "no clear difference" in sentence
    superclass = real_data.versus(records, "a", "c", record.FINAL_SUPERCLASS_ACCURACY)
    assert superclass.difference == pytest.approx(0.01)


def test_one_seed_gives_no_interval_and_no_verdict():
    records = shown(entry("a", [0.9]), entry("b", [0.8]))
    assert real_data.versus(records, "a", "b").verdict == "no clear difference"
    assert "one seed: no interval" in real_data.versus_sentence(records, "a", "b")


def test_the_summary_table_reads_every_number_from_the_records():
    """Mutant caught: a table whose spread is the population deviation (ddof 0) or whose epochs are the mean
    over seeds rather than the fewest any seed trained."""
    records = shown(entry("a", [0.80, 0.82, 0.84]))
    records.records[0] = record.Record(**{**records.records[0].to_dict(), "epochs": [3, 2, 3]})
    table = real_data.summary_table(records)
    assert table.loc["a", "final test accuracy"] == f"0.8200 ± {statistics.stdev([0.80, 0.82, 0.84]):.4f}"
    assert table.loc["a", "epochs (of the recipe's)"] == "2 of 15"
    assert table.loc["a", "seeds"] == 3


def test_a_committed_record_reports_no_measurement_of_this_run():
    """A chapter that shows the committed record reports nothing as measured in its metrics. Mutant caught:
    `runs_metrics` marking the committed Fashion-MNIST record as this run's real data (a smoke run that
    'measured' it)."""
    committed = shown(entry("fmnist-mlp", [0.89, 0.88, 0.90]), source="committed")
    assert real_data.runs_metrics(committed) is None
    measured = real_data.runs_metrics(shown(entry("fmnist-mlp", [0.89, 0.88, 0.90])))
    assert measured["real_data"] is True
    assert measured["runs"]["fmnist-mlp"]["final_acc"] == pytest.approx(0.89)
    assert measured["runs"]["fmnist-mlp"]["recipe_epochs"] == 15


def test_the_origin_names_the_commit_and_date_of_a_committed_record(tmp_path):
    path = record.save(tmp_path / "02.json", entry("fmnist-mlp", [0.89, 0.88, 0.90], commit="ed22271bbbb"))
    committed = record.committed(path)
    assert committed.origin() == "the committed record of commit ed22271 (2026-12-02)"
    assert str(path) in committed.caption() and committed.digest in committed.caption()
    assert shown(entry("x", [0.5])).origin().startswith("measured by this run")


def test_a_collector_starts_afresh_and_keeps_what_each_step_measured(tmp_path):
    """Mutant caught: a records.json that keeps an earlier run's records (appended to, never started
    afresh)."""
    record.save(tmp_path / "records.json", entry("stale", [0.1]))
    collector = record.Collector(tmp_path)
    assert record.load(tmp_path / "records.json")[0] == []
    collector.add(entry("a", [0.8]), {"a": {"runs": []}})
    collector.add(entry("b", [0.7]))
    records, extras = record.load(tmp_path / "records.json")
    assert record.labels(records) == ["a", "b"] and list(extras) == ["a"]
    with pytest.raises(Exception, match="measured twice"):
        collector.add(entry("a", [0.9]))


@pytest.mark.skipif(not fashion_mnist.has_files(fashion_mnist.debian_dir()),
                    reason="needs the Fashion-MNIST files (Debian package dataset-fashion-mnist)")
def test_variants_of_one_preset_train_under_their_own_names(tmp_path):
    """Mutant caught: records labelled by the preset rather than the variant (the two entries would collide)."""
    plan = {"baseline": {"preset": "fmnist-simplecnn", "seeds": [0]},
            "label smoothing 0.1": {"preset": "fmnist-simplecnn", "seeds": [0],
                                    "overrides": {"label_smoothing": 0.1}}}
    tiny = {"train_subset": 256, "test_subset": 256, "epochs": 1, "device": "cpu"}
    for step in plan.values():
        step["overrides"] = {**tiny, **step.get("overrides", {})}
    records, extras = real_data.train_presets(plan, tmp_path, command="cifar-lab run x")
    found = record.RecordSet(records, extras, "run")
    assert found.labels == ["baseline", "label smoothing 0.1"]
    smoothing = found.get("label smoothing 0.1")
    assert smoothing.details["overrides"]["label_smoothing"] == 0.1
    assert smoothing.dataset == fashion_mnist.NAME and smoothing.train_images == 256 and smoothing.test_images == 256
    assert smoothing.recipe_epochs == 15 and smoothing.epochs == (1,) and smoothing.command == "cifar-lab run x"
    assert smoothing.optimizer_steps == (2,)   # 256 images in batches of 128
    summary = json.loads((tmp_path / "label_smoothing_0.1" / "summary.json").read_text())
    assert smoothing.values == (summary["final_acc"],)
    # the same seed, data and model: only label smoothing differs, so the runs differ
    assert extras["baseline"]["runs"][0]["history"] != extras["label smoothing 0.1"]["runs"][0]["history"]
    assert extras["baseline"]["class_names"][0] == "T-shirt/top" and extras["baseline"]["mistakes"]
