"""Benchmarks run both paths in one run and report the ratio (no assertion on speed: machines differ)."""
import json
import subprocess
import sys


def test_bench_data_reports_both_paths(tmp_path):
    report = tmp_path / "data.json"
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "bench", "data", "--data-root", str(tmp_path),
                           "--images", "512", "--repeats", "1", "--workers", "0", "--json", str(report)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(report.read_text())
    assert result["ours_img_s"] > 0 and result["reference_img_s"] > 0
    assert result["ratio"] == result["ours_img_s"] / result["reference_img_s"]
    assert "ratio" in done.stdout


def test_bench_train_reports_both_paths(tmp_path):
    report = tmp_path / "train.json"
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "bench", "train", "--model", "simple_cnn",
                           "--data-root", str(tmp_path), "--steps", "2", "--repeats", "1", "--workers", "0",
                           "--batch-size", "16", "--json", str(report)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(report.read_text())
    assert {"ours_img_s", "reference_img_s", "ratio"} <= set(result)
    assert result["model"] == "simple_cnn" and result["reference"].startswith("fp32")


def test_bench_unknown_model_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cifar_lab", "bench", "train", "--model", "nope"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "choose one of" in done.stderr and len(done.stderr.splitlines()) == 1
