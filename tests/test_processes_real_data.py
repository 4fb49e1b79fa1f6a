"""One process against two on the same global batch, on the real Fashion-MNIST files (`bench.ddp.same_global_batch`):
both process counts really train (through torchrun, two processes with gloo), and the result holds every seed's
summary and learning curve as plain values."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cifar_lab.bench import ddp
from cifar_lab.data import fashion_mnist
from cifar_lab.errors import UsageError

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
    """Mutants: the two entries swapped or given the same batch per process; a run of the wrong process count or
    global batch filed under an entry."""
    root, result = compared
    one, two = ddp.processes_label(1), ddp.processes_label(2)
    assert list(result["entries"]) == [one, two]
    assert result["entries"][one]["batch_per_process"] == 64 and result["entries"][two]["batch_per_process"] == 32
    assert (result["nproc"], result["global_batch"], result["seeds"]) == (2, 64, SEEDS)
    assert result["overrides"] == TINY  # as given, without data_root
    for world in (1, 2):
        assert result["entries"][ddp.processes_label(world)]["processes"] == world
        for seed in SEEDS:
            # what the engine itself resolved for the run: its process count and its global batch
            config = json.loads((root / f"nproc{world}_seed{seed}" / "config.json").read_text())
            assert config["dist"]["world_size"] == world
            assert config["dist"]["global_batch"] == 64
            assert config["seed"] == seed and config["dataset"] == fashion_mnist.NAME


def test_every_seed_has_its_summary_and_learning_curve(compared):
    """Mutants: runs filed under the wrong seed; the curve kept as text or cut short; the summary of another run."""
    root, result = compared
    for label, entry in result["entries"].items():
        assert [run["seed"] for run in entry["runs"]] == SEEDS
        for run in entry["runs"]:
            summary, history = run["summary"], run["history"]
            folder = root / f"nproc{entry['processes']}_seed{run['seed']}"
            assert summary == json.loads((folder / "summary.json").read_text())
            assert summary["dataset"] == fashion_mnist.NAME and summary["data_source"] == fashion_mnist.DEBIAN_DIR
            assert summary["train_samples"] == TINY["train_subset"] and summary["epochs"] == EPOCHS
            assert [row["epoch"] for row in history] == list(range(1, EPOCHS + 1))
            assert summary["final_acc"] == pytest.approx(history[-1]["test_acc"])
            assert summary["final_acc"] > 0.3  # chance is 0.1: it learned from the real images
        json.dumps(entry)  # plain values


@pytest.mark.parametrize("arguments, named", [
    ({"seeds": [0], "global_batch": 63}, "global_batch 63"),
    ({"seeds": [0], "nproc": 1}, "nproc"),
    ({"seeds": [0, 0]}, "seeds"),
    ({"seeds": [0], "overrides": {"batch_size": 32}}, "batch_size"),
])
def test_bad_arguments_are_one_line_errors(arguments, named, tmp_path):
    """Mutants: a global batch that does not split, one process against itself, a repeated seed or a batch size
    that overrides the comparison's own accepted, or refused only after a run started."""
    with pytest.raises(UsageError, match=named):
        ddp.same_global_batch(out_root=tmp_path, **arguments)
    assert not any(tmp_path.iterdir())  # refused before anything ran


def test_the_book_turns_the_runs_into_records_a_chapter_renders(compared):
    """`real_data.processes_records`: one label per process count, each seed's final accuracy and training time
    from its own summary, the curves as extras. Mutants: values of another process count or seed order, the
    images of one rank's shard as the training images, a comparison of the wrong entries."""
    from cifar_lab.book import real_data, record

    _, result = compared
    records, extras = real_data.processes_records(result, command="cifar-lab run notebooks/08_scaling_out.md")
    found = record.RecordSet(records, extras, "run")
    one, two = ddp.processes_label(1), ddp.processes_label(2)
    assert found.labels == [one, two]
    for label, entry in result["entries"].items():
        final = found.get(label)
        assert final.seeds == tuple(SEEDS) and final.epochs == (EPOCHS, EPOCHS)
        assert final.values == tuple(run["summary"]["final_acc"] for run in entry["runs"])
        assert found.get(label, record.TRAINING_TIME).values == \
            tuple(run["summary"]["train_seconds"] for run in entry["runs"])
        assert final.train_images == TINY["train_subset"] and final.dataset == fashion_mnist.NAME
        assert final.details["batch_per_process"] == entry["batch_per_process"]
        assert [run["seed"] for run in extras[label]["runs"]] == SEEDS
    assert real_data.versus_sentence(found, two, one).startswith(f"{two} ")
    assert list(real_data.summary_table(found).index) == [one, two]
