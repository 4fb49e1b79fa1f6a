"""Typed records as chapters keep and show them: a publish merges a chapter's records by label, a content hash
names exactly what a page shows, another quantity of the same runs keeps their seeds, and every output a page
makes from records carries what is needed to make it again."""
import math

import pytest
from IPython.utils.capture import capture_output

from cifar_lab.book import notebook, record
from cifar_lab.errors import UsageError

BASE = dict(unit="fraction", dataset="fashion_mnist", data_source=None, train_images=1000, test_images=500,
            recipe_epochs=15, device="cpu", dirty=False, command="cifar-lab run x", run_folder=None,
            date="2026-12-02T10:00:00+00:00")


def make(label, values, measured=record.FINAL_ACCURACY, commit="1111111aaaa", epochs=None, steps=None):
    n = len(values)
    return record.Record(label=label, measured=measured, seeds=list(range(n)), values=values,
                         epochs=epochs or [2] * n, optimizer_steps=steps or [], commit=commit, **BASE)


def test_merge_replaces_the_labels_a_run_measured_and_keeps_the_others():
    """Mutant caught: a merge by (label, quantity), which would keep a replaced label's quantity that the new run
    no longer measures, mixing two runs under one label."""
    old = [make("a", [0.1]), make("a", [5.0], measured=record.TRAINING_TIME), make("b", [0.2])]
    new = [make("a", [0.3], commit="2222222bbbb")]
    merged, extras = record.merge(old, {"a": {"old": 1}, "b": {"old": 2}}, new, {"a": {"new": 1}})
    assert [(r.label, r.measured, r.commit) for r in merged] == [("b", record.FINAL_ACCURACY, "1111111aaaa"),
                                                                ("a", record.FINAL_ACCURACY, "2222222bbbb")]
    assert extras == {"b": {"old": 2}, "a": {"new": 1}}


def test_the_digest_names_the_measurements_not_their_order():
    """Mutant caught: a digest of the file's bytes (it would change with the order of the records) or of the
    labels alone (a changed value would keep the digest)."""
    a, b = make("a", [0.1, 0.2]), make("b", [0.3])
    assert record.digest([a, b]) == record.digest([b, a])
    assert record.digest([a, b]) != record.digest([make("a", [0.1, 0.2000001]), b])


def test_a_measurement_of_the_same_runs_keeps_the_seeds_it_was_taken_on():
    """Mutant caught: the latency of the first seed's model recorded with every seed's epochs and steps."""
    runs = make("cifar10-resnet18", [0.5, 0.6, 0.7], epochs=[3, 2, 3], steps=[30, 20, 30])
    latency = record.measurement(runs, record.LATENCY_MEDIAN, record.MILLISECONDS, [4.2], device="cuda")
    assert (latency.seeds, latency.epochs, latency.optimizer_steps) == ((0,), (3,), (30,))
    assert latency.device == "cuda" and latency.dataset == runs.dataset and latency.commit == runs.commit
    second = record.measurement(runs, record.PARAMETERS, record.COUNT, [11], seeds=[1])
    assert (second.seeds, second.epochs) == ((1,), (2,))


def test_a_record_set_refuses_what_it_does_not_hold():
    shown = record.RecordSet([make("a", [0.1])], {}, "committed", "x.json")
    with pytest.raises(UsageError, match="hold no 'b'"):
        shown.only(["b"])
    with pytest.raises(UsageError, match="best-epoch"):
        shown.get("a", record.BEST_ACCURACY)
    with pytest.raises(ValueError):
        record.RecordSet([], {}, "elsewhere")


def test_what_a_page_shows_from_records_can_be_made_again_from_them(tmp_path):
    """`notebook.show` and `notebook.glue_record` tag their outputs with the file, labels, hash, rendering and
    arguments; made again from the same file, the output is the same. Mutants caught: metadata naming other
    labels than those shown, or leaving out the arguments (the consistency test of the committed edition could
    not make the output again); a glued number that is not the statistic named."""
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.instance()   # displays go to a display publisher, as in a kernel
    path = record.save(tmp_path / "02.json", [make("a", [0.80, 0.82, 0.84]), make("b", [0.70, 0.72, 0.74])])
    committed = record.committed(path)
    with capture_output() as captured:
        notebook.show(committed.only(["a", "b"]), "summary")
        notebook.glue_record("acc", committed, label="b", measured=record.FINAL_ACCURACY, statistic="std",
                             scale=100)
    assert captured.stdout.startswith(f"Records {path}, sha256 {committed.digest}: the committed record of "
                                      f"commit 1111111 (2026-12-02)")
    table, glued = captured.outputs
    meta = table.metadata[notebook.RECORD_METADATA]
    assert meta["labels"] == ["a", "b"] and meta["kind"] == "summary" and meta["source"] == "committed"
    again = notebook.rendered(record.committed(meta["file"]).only(meta["labels"]), meta["kind"],
                              **meta["arguments"])
    assert again.to_html() == notebook.rendered(committed, "summary").to_html()
    glue_meta = glued.metadata[notebook.RECORD_METADATA]
    assert glued.metadata["scrapbook"]["name"] == "acc"
    assert glue_meta["arguments"] == {"label": "b", "measured": record.FINAL_ACCURACY, "statistic": "std",
                                      "scale": 100}
    value = float(glued.data["application/papermill.record/text/plain"])
    assert value == pytest.approx(100 * 0.02)
    one_seed = record.RecordSet([make("c", [0.5])], {}, "run")
    assert math.isnan(notebook.value(one_seed, "c", record.FINAL_ACCURACY, "std"))   # no spread, not 0


def test_a_table_of_records_keeps_its_order_through_a_notebooks_json():
    """A notebook stores output metadata as JSON with sorted keys, so what a page renders must come out the
    same from the stored arguments. Mutant caught: rows and columns given as dicts (the stored copy sorts them,
    and the table made again has its columns in another order)."""
    import json

    shown = record.RecordSet([make("z", [0.5]), make("z", [3.0], measured=record.TRAINING_TIME)], {}, "run")
    rows = [["second", [["zeta", ["z", record.FINAL_ACCURACY, "mean", 1.0]],
                        ["alpha", ["z", record.TRAINING_TIME, "mean", 1.0]]]],
            ["first", [["alpha", ["z", record.TRAINING_TIME, "sum", 2.0]]]]]
    stored = json.loads(json.dumps({"rows": rows}, sort_keys=True))
    made, again = notebook.rendered(shown, "table", rows=rows), notebook.rendered(shown, "table", **stored)
    assert list(made.columns) == ["zeta", "alpha"] and list(made.index) == ["second", "first"]
    assert again.to_html() == made.to_html()
    assert made.loc["first", "alpha"] == 6.0 and made.loc["first", "zeta"] == "—"
