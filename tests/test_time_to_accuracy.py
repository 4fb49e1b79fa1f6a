"""`bench time-to-accuracy`: both loops train to the target, alternating, and the result says how long each
took, the ratio with its spread, the CPU's features and whether the machine was quiet.

Runs on small IDX files written in the official format (the real files take minutes per epoch on a CPU)."""
import gzip
import json
import math
import struct

import numpy as np
import pytest
import torch

from cifar_lab.book import records
from cifar_lab.bench import time_to_accuracy
from cifar_lab.cli import main
from cifar_lab.data import fashion_mnist
from cifar_lab.engine.optim import lr_factor


def write_idx(path, array: np.ndarray) -> None:
    header = struct.pack(">I", 0x00000800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def write_small_fmnist(folder, monkeypatch, wrong_test_labels: int = 0):
    """80 training and 40 test images whose class is the brightness of the image: learnable in one epoch.
    `wrong_test_labels` test images get the other class's label, which caps the test accuracy below 1."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for train, n in ((True, 80), (False, 40)):
        labels = np.arange(n) % 2
        images = (labels[:, None, None] * 180 + rng.integers(0, 60, (n, 28, 28))).astype(np.uint8)
        if not train:
            labels[:wrong_test_labels] = 1 - labels[:wrong_test_labels]
        image_file, label_file = fashion_mnist.FILES[train]
        write_idx(folder / image_file, images)
        write_idx(folder / label_file, labels)
    monkeypatch.setenv(fashion_mnist.DIR_VARIABLE, str(folder))
    return folder


@pytest.fixture
def small_fmnist(tmp_path, monkeypatch):
    return write_small_fmnist(tmp_path / "fmnist", monkeypatch)


SETS = [("epochs", 2), ("batch_size", 16), ("eval_batch_size", 40), ("lr", 0.003)]


def test_both_loops_reach_the_target_alternating_and_the_ratio_is_theirs(small_fmnist):
    lines = []
    r = time_to_accuracy.run(target=0.05, repeats=2, workers=0, sets=SETS, log=lines.append)
    order = [line.split(": ")[1].split(" ")[0] for line in lines if line.startswith("repeat")]
    assert order == ["reference", "ours", "reference", "ours"]
    for name in ("ours", "reference"):
        assert r[name]["reached"] == "2/2"
        runs = r[name]["runs"]
        assert all(run["epochs"] == 1 and run["final_acc"] >= 0.05 and run["seconds"] > 0 for run in runs)
        assert r[name]["seconds"]["min"] == min(run["seconds"] for run in runs)
    assert r["reference"]["runs"][0]["precision"] == "fp32"
    expected = [ref["seconds"] / ours["seconds"] for ref, ours in zip(r["reference"]["runs"], r["ours"]["runs"])]
    assert r["ratio_runs"] == pytest.approx(expected)
    assert r["ratio"]["min"] <= r["ratio"]["median"] <= r["ratio"]["max"]
    assert r["cpu"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert len(r["load_average_before"]) == 3 and isinstance(r["quiet"], bool)


def test_a_target_never_reached_is_reported_not_timed(tmp_path, monkeypatch):
    write_small_fmnist(tmp_path / "fmnist", monkeypatch, wrong_test_labels=10)  # at most 30 of 40 right
    r = time_to_accuracy.run(target=1.0, repeats=1, workers=0, sets=SETS + [("epochs", 1)], log=lambda _: None)
    for name in ("ours", "reference"):
        assert r[name]["reached"] == "0/1" and r[name]["seconds"] is None
    assert r["ratio"] is None and r["ratio_runs"] == []


def test_reference_schedule_is_the_engines_cosine():
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=20)
    for step in range(1, 21):
        optimizer.step()
        cosine.step()
        assert optimizer.param_groups[0]["lr"] == pytest.approx(lr_factor("cosine", step, 20, 0), abs=1e-9)


def test_quiet_means_no_other_load():
    assert time_to_accuracy.quiet((0.1, 0.2, 0.3), (2.1, 1.0, 0.5), threads=2)
    assert not time_to_accuracy.quiet((1.7, 1.0, 0.5), (2.1, 1.0, 0.5), threads=2)
    assert not time_to_accuracy.quiet((0.1, 0.2, 0.3), (6.0, 3.0, 1.0), threads=2)


def test_cli_writes_the_record_and_rejects_bad_input(small_fmnist, tmp_path, capsys):
    out = tmp_path / "tta.json"
    code = main(["bench", "time-to-accuracy", "--target", "0.05", "--repeats", "1", "--workers", "0",
                 "--set", "epochs=1", "batch_size=16", "eval_batch_size=40", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and "ratio reference / ours" in printed and "load average before" in printed
    record = json.loads(out.read_text())
    assert record["target_acc"] == 0.05 and record["preset"] == "fmnist-simplecnn"
    assert math.isfinite(record["ratio"]["median"])
    page = time_to_accuracy.page_record(record, "cifar-lab bench time-to-accuracy", "abc1234", "2026-12-02 UTC",
                                        "torch", ["a note"])
    (tmp_path / "page.json").write_text(json.dumps(page))
    assert records.read_record(tmp_path / "page.json")["measurements"][0]["table"]["rows"][0][3] == "1/1"

    code = main(["bench", "time-to-accuracy", "--target", "90"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "(0, 1]" in err
    code = main(["bench", "time-to-accuracy", "--preset", "fmnist-tf-convnet", "--target", "0.5"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "3x32x32" in err
