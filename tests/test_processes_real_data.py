"""One process against two on the same global batch, on the real Fashion-MNIST files (`bench.ddp.same_global_batch`):
both process counts really train (two processes through torchrun and gloo), and the result holds every seed's
learning curve and final accuracy in the shape the chapters render."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import matplotlib
import pytest

from cifar_lab import plots
from cifar_lab.book import real_data
from cifar_lab.bench import ddp
from cifar_lab.data import fashion_mnist
from cifar_lab.errors import UsageError

matplotlib.use("Agg")

SEEDS = [0, 1]
EPOCHS = 2
TINY = {"train_subset": 1000, "test_subset": 500, "epochs": EPOCHS, "device": "cpu"}


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    if not fashion_mnist.has_files(Path(fashion_mnist.DEBIAN_DIR)):
        pytest.skip(f"the package {fashion_mnist.APT_PACKAGE} is not installed")
    root = tmp_path_factory.mktemp("same-batch")
    return root, ddp.same_global_batch(SEEDS, nproc=2, preset="fmnist-simplecnn", global_batch=64,
                                       overrides=TINY, out_root=root, timeout_s=600)


def test_both_process_counts_train_on_the_same_global_batch(compared):
    root, result = compared
    one, two = ddp.processes_label(1), ddp.processes_label(2)
    assert list(result["records"]) == [one, two]
    assert result["records"][one]["batch_per_process"] == 64 and result["records"][two]["batch_per_process"] == 32
    for world in (1, 2):
        for seed in SEEDS:
            # what the engine itself resolved for the run: its process count and its global batch
            config = json.loads((root / f"nproc{world}_seed{seed}" / "config.json").read_text())
            assert config["dist"]["world_size"] == world
            assert config["dist"]["global_batch"] == 64
            assert config["seed"] == seed and config["dataset"] == fashion_mnist.NAME


def test_every_seed_has_its_curve_and_final_accuracy(compared):
    _, result = compared
    for record in result["records"].values():
        assert record["seeds"] == SEEDS and record["epochs"] == EPOCHS
        assert record["dataset"] == fashion_mnist.NAME and record["data_source"] == fashion_mnist.DEBIAN_DIR
        assert record["train_images"] == TINY["train_subset"]
        finals = []
        for seed, run in zip(SEEDS, record["runs"]):
            assert run["seed"] == seed
            assert [row["epoch"] for row in run["history"]] == list(range(1, EPOCHS + 1))
            assert run["final_acc"] == run["history"][-1]["test_acc"]
            assert run["final_acc"] > 0.3  # chance is 0.1: it learned from the real images
            finals.append(run["final_acc"])
        assert record["final_acc_mean"] == pytest.approx(statistics.fmean(finals))
        assert record["final_acc_std"] == pytest.approx(statistics.stdev(finals))
        assert record["train_seconds_mean"] > 0


def test_the_records_render_as_a_chapter_shows_them(compared):
    _, result = compared
    records = result["records"]
    found = real_data.versus(records, ddp.processes_label(2), ddp.processes_label(1))
    assert found["verdict"] in ("better", "worse", "no clear difference")
    assert ddp.processes_label(2) in found["sentence"] and "mean over 2 seeds" in found["sentence"]
    assert list(real_data.summary_table(records).index) == list(records)
    fig = plots.curves_by_entry(records)
    lines = fig.axes[1].get_lines()
    assert len(lines) == 2 * (len(SEEDS) + 1)  # per entry: one line per seed and the mean


@pytest.mark.parametrize("arguments, named", [
    ({"seeds": [0], "global_batch": 63}, "global_batch 63"),
    ({"seeds": [0], "nproc": 1}, "nproc"),
    ({"seeds": [0, 0]}, "seeds"),
    ({"seeds": [0], "overrides": {"batch_size": 32}}, "batch_size"),
])
def test_bad_arguments_are_one_line_errors(arguments, named, tmp_path):
    with pytest.raises(UsageError, match=named):
        ddp.same_global_batch(out_root=tmp_path, **arguments)
    assert not any(tmp_path.iterdir())  # refused before anything ran
