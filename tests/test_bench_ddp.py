"""`bench ddp` and `bench.ddp.same_global_batch`: one process and two, both launched through torchrun, see the
same samples in the same global batches; seeds are checked in one place."""
import pytest
import torch

from cifar_lab.bench import ddp
from cifar_lab.engine import runtime
from cifar_lab.errors import UsageError


def test_one_process_and_two_take_the_same_first_steps(tmp_path):
    """Mutant: the one-process baseline started without torchrun (`cifar-lab train` without --nproc-per-node), so
    its loader shuffles with its own generator and its global batches differ from the two ranks' union.

    Without augmentation and dropout, in fp32, the same global batches from the same initial weights give the
    same weights after an epoch of four optimizer steps, up to the order in which the gradient sums are added
    (about 1e-5 here); other batches move them apart by about 1e-2."""
    common = ["dataset=synthetic", "synthetic_train_size=256", "synthetic_test_size=64", "epochs=1",
              "augment=none", "dropout=0", "precision=fp32", "save_checkpoints=true", "progress=false",
              "device=cpu", f"data_root={tmp_path / 'data'}", "seed=3"]
    weights, rows = {}, {}
    for world in (1, 2):
        done = ddp.launch_train(tmp_path / f"nproc{world}", world, "cifar10-simplecnn",
                                common + [f"batch_size={64 // world}"])
        rows[world] = done["rows"][0]
        weights[world] = torch.load(tmp_path / f"nproc{world}" / "last.pt", weights_only=True)["model"]
    assert rows[1]["optimizer_steps"] == rows[2]["optimizer_steps"] == "4"
    assert float(rows[1]["train_loss"]) == pytest.approx(float(rows[2]["train_loss"]), rel=1e-5)
    gap = max(float((weights[1][key] - weights[2][key]).abs().max()) for key in weights[1])
    assert gap < 1e-4


def test_seeds_are_checked_in_one_place():
    """Mutants: a repeated seed accepted (it repeats a run and shrinks the spread over seeds); a fractional or
    text seed silently truncated; `same_global_batch` keeping a check of its own that says something else."""
    assert runtime.distinct_seeds([2, 0, 1]) == [2, 0, 1]
    assert runtime.distinct_seeds(("3", 4)) == [3, 4]
    for bad in ([], [0, 0], [1.5], "012", ["x"], None):
        with pytest.raises(UsageError, match="seeds must be distinct integers"):
            runtime.distinct_seeds(bad)
    assert ddp.distinct_seeds is runtime.distinct_seeds
    with pytest.raises(UsageError, match=r"seeds must be distinct integers, at least one \(got \[1, 1\]\)"):
        ddp.same_global_batch([1, 1])


def test_metrics_rows_become_numbers():
    """Mutant: the history of a run kept as the text of metrics.csv (plots and means over seeds need numbers)."""
    rows = [{"epoch": "1", "test_acc": "0.5", "comm_bytes": ""}, {"epoch": "2", "test_acc": "0.75", "comm_bytes": "8"}]
    assert ddp.history(rows) == [{"epoch": 1, "test_acc": 0.5, "comm_bytes": None},
                                 {"epoch": 2, "test_acc": 0.75, "comm_bytes": 8.0}]
