"""The tables chapters 4 and 5 draw from Fashion-MNIST records: fine against superclass accuracy over seeds,
and a zoo's accuracy beside its size and latency."""
import math
import statistics

import pandas as pd
import pytest

from cifar_lab.book import real_data, real_data_tables, record
from cifar_lab.errors import UsageError

BASE = dict(unit="fraction", dataset="fashion_mnist", data_source=None, train_images=2000, test_images=2000,
            recipe_epochs=15, device="cpu", commit="abc", dirty=False, command=None, date=None, run_folder=None,
            optimizer_steps=[])


def entry(fine, coarse=None):
    """The records `real_data.training_records` gives a variant, for the per-seed values given."""
    seeds, epochs = list(range(len(fine))), [2] * len(fine)
    found = [record.Record(label="?", measured=record.FINAL_ACCURACY, seeds=seeds, values=fine, epochs=epochs,
                           **BASE)]
    if coarse:
        found.append(record.Record(label="?", measured=record.FINAL_SUPERCLASS_ACCURACY, seeds=seeds,
                                   values=coarse, epochs=epochs, **BASE))
    return found


def records_of(**entries):
    from dataclasses import replace

    return record.RecordSet([replace(r, label=name) for name, found in entries.items() for r in found], {}, "run")


def test_fine_and_superclass_means_spreads_and_gap():
    """Mutant caught: the gap as the difference of the two means of different seeds' sets, or a population
    standard deviation; the table must agree with `Record.summary` (stats.summarize)."""
    records = records_of(baseline=entry([0.80, 0.82, 0.84], [0.95, 0.96, 0.97]),
                         Cutout=entry([0.79, 0.80, 0.81], [0.94, 0.94, 0.97]))
    table = real_data_tables.fine_and_superclass(records)
    assert list(table.index) == ["baseline", "Cutout"]
    assert table.loc["baseline", "fine accuracy"] == pytest.approx(0.82)
    assert table.loc["baseline", "fine std"] == pytest.approx(0.02)
    assert table.loc["baseline", "superclass accuracy"] == pytest.approx(0.96)
    assert table.loc["Cutout", "superclass std"] == pytest.approx(statistics.stdev([0.94, 0.94, 0.97]))
    # the gap is the mean of each seed's own gap: near misses inside a superclass
    assert table.loc["Cutout", "gap"] == pytest.approx(statistics.fmean([0.15, 0.14, 0.16]))
    assert table.loc["Cutout", "seeds"] == 3
    # the fine columns agree with what the record's own summary says
    assert table.loc["baseline", "fine std"] == pytest.approx(records.get("baseline").summary.std)


def test_one_seed_has_no_spread():
    """Mutant caught: a spread of 0.0 for one seed (as if it were measured)."""
    table = real_data_tables.fine_and_superclass(records_of(baseline=entry([0.8], [0.9])))
    assert math.isnan(table.loc["baseline", "fine std"])
    assert table.loc["baseline", "gap"] == pytest.approx(0.1)


def test_a_record_without_superclasses_is_refused():
    """Mutant caught: a superclass column filled with the fine accuracy when the record has none."""
    with pytest.raises(UsageError, match="superclass"):
        real_data_tables.fine_and_superclass(records_of(cifar10=entry([0.8, 0.9])))


def zoo_inputs():
    sizes = pd.DataFrame({"M params": [0.62, 11.17, 2.24]}, index=["simple_cnn", "resnet18_cifar", "mobilenet_v2"])
    latency = pd.DataFrame({"p50_ms": [0.4, 9.8, 6.1], "mean_ms": [0.5, 10.0, 6.3]}, index=sizes.index)
    return sizes, latency


def test_accuracy_and_latency_joins_and_ranks_the_trained_models():
    """Mutant caught: rows for untrained models, or ranking by latency instead of accuracy."""
    sizes, latency = zoo_inputs()
    records = records_of(simple_cnn=entry([0.80, 0.81, 0.82]), resnet18_cifar=entry([0.85, 0.84, 0.86]))
    table = real_data_tables.accuracy_and_latency(records, sizes, latency)
    # only the trained models, best first, with the columns plots.accuracy_against_latency reads
    assert list(table.index) == ["resnet18_cifar", "simple_cnn"]
    assert table.loc["resnet18_cifar", "p50_ms"] == pytest.approx(9.8)
    assert table.loc["simple_cnn", "M params"] == pytest.approx(0.62)
    assert table.loc["simple_cnn", "top1"] == pytest.approx(0.81)
    assert table.loc["resnet18_cifar", "top1 std"] == pytest.approx(0.01)
    assert table.loc["resnet18_cifar", "seeds"] == 3
    # the ranking's first two are what the chapter compares in words
    answer = real_data.versus(records, table.index[0], table.index[1])
    assert answer.verdict == "better"


def test_accuracy_and_latency_refuses_a_model_without_latency():
    """Mutant caught: an inner join that silently drops a trained model without latency."""
    sizes, latency = zoo_inputs()
    with pytest.raises(UsageError, match="naivenet"):
        real_data_tables.accuracy_and_latency(records_of(naivenet=entry([0.8, 0.8])), sizes, latency)
