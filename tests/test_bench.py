"""Benchmarks run both paths in one run and report the ratio (no assertion on speed: machines differ).

How a ratio is made - which path is timed, in which order, and which way round the ratio is - is checked with a
fake clock that each path advances by a known amount, so the expected figures are exact and nothing depends on
how fast this machine is."""
import json
import subprocess
import sys

import pytest
import torch

from cifar_lab import measure


class FakeClock:
    """Stands in for the `time` module inside `measure`: `perf_counter` returns what the paths have advanced."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(measure, "time", fake)
    return fake


def test_interleaved_alternates_reference_first_and_reports_medians(clock):
    order = []
    costs = {"ours": iter([1.0, 3.0, 2.0]), "reference": iter([4.0, 4.0, 10.0])}  # seconds per run

    def path(name):
        def run():
            order.append(name)
            clock.advance(next(costs[name]))
            return 100  # images
        return run

    result = measure.interleaved(path("ours"), path("reference"), "cpu", repeats=3)
    assert order == ["reference", "ours"] * 3
    assert result["ours_img_s"] == 50.0 and result["reference_img_s"] == 25.0  # medians of 100/s and 25/s runs
    assert result["ratio"] == 2.0
    # per repeat, ours' images per second over the reference's: 4/1, 4/3, 10/2
    assert result["ratio_spread"] == pytest.approx({"median": 4.0, "min": 4 / 3, "max": 5.0})


def test_bench_data_reports_both_paths(tmp_path):
    report = tmp_path / "data.json"
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "bench", "data", "--data-root", str(tmp_path),
                           "--images", "512", "--repeats", "1", "--workers", "0", "--json", str(report)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(report.read_text())
    assert result["ours_img_s"] > 0 and result["reference_img_s"] > 0 and result["repeats"] == 1
    assert "ratio" in done.stdout


def test_bench_data_times_the_device_loader_against_torchvisions(tmp_path, clock, monkeypatch):
    # Each loader's images cost a known time on the fake clock: the device loader 1 s per 1000 images, the
    # reference DataLoader 3 s; every image the benchmark draws is drawn from the real loaders.
    from cifar_lab.bench import data
    from cifar_lab.data.loader import DeviceLoader

    real_count = data.count_images
    drawn = []

    def count_images(loader, limit):
        seen = real_count(loader, limit)
        ours = isinstance(loader, DeviceLoader)
        assert ours or isinstance(loader, torch.utils.data.DataLoader)
        drawn.append("ours" if ours else "reference")
        clock.advance(seen * (1 if ours else 3) / 1000)
        return seen

    monkeypatch.setattr(data, "count_images", count_images)
    result = data.run(data_root=str(tmp_path), images=256, batch_size=64, workers=0, repeats=2, device="cpu")
    assert drawn == ["ours", "reference"] + ["reference", "ours"] * 2  # warm-up, then alternated
    assert result["ours_img_s"] == pytest.approx(1000.0) and result["reference_img_s"] == pytest.approx(1000 / 3)
    assert result["ratio"] == pytest.approx(3.0)


def test_bench_train_times_the_engine_step_against_the_plain_loop(tmp_path, clock, monkeypatch):
    # The engine's step costs 1 s per batch on the fake clock and the plain loop's optimizer step 5 s: the
    # reported ratio must be 5 (ours faster), whatever the real work took.
    from cifar_lab.bench import train
    from cifar_lab.engine.steps import DenseStep

    real_batch, real_sgd_step = DenseStep.train_batch, torch.optim.SGD.step
    inside_ours = []

    def ours_batch(self, images, labels):
        inside_ours.append(True)
        try:
            real_batch(self, images, labels)
        finally:
            inside_ours.pop()
        clock.advance(1.0)

    def sgd_step(self, *args, **kwargs):
        if not inside_ours:  # the reference loop's own optimizer step
            clock.advance(5.0)
        return real_sgd_step(self, *args, **kwargs)

    monkeypatch.setattr(DenseStep, "train_batch", ours_batch)
    monkeypatch.setattr(torch.optim.SGD, "step", sgd_step)
    result = train.run(model="simple_cnn", data_root=str(tmp_path), steps=2, repeats=2, workers=0, batch_size=16,
                       device="cpu", precision="fp32")
    assert result["ours_img_s"] == pytest.approx(16.0) and result["reference_img_s"] == pytest.approx(16 / 5)
    assert result["ratio"] == pytest.approx(5.0)


def test_bench_train_reports_both_paths(tmp_path):
    report = tmp_path / "train.json"
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "bench", "train", "--model", "simple_cnn",
                           "--data-root", str(tmp_path), "--steps", "2", "--repeats", "1", "--workers", "0",
                           "--batch-size", "16", "--json", str(report)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(report.read_text())
    assert {"ours_img_s", "reference_img_s", "ratio"} <= set(result)
    assert result["model"] == "simple_cnn" and result["reference_settings"] == {
        "loop": "plain", "precision": "fp32", "channels_last": False, "label_smoothing": 0.0}


def test_bench_unknown_model_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "bench", "train", "--model", "nope"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "choose one of" in done.stderr and len(done.stderr.splitlines()) == 1
