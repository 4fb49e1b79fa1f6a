"""`cifar-lab bench imagenet-data`: both routes on the same files, and an honest line where CUDA is missing."""
import json

import torch

from cifar_lab.cli import main


def test_bench_reports_cpu_images_per_second_and_the_gpu_route(tmp_path, capsys):
    report = tmp_path / "bench.json"
    code = main(["bench", "imagenet-data", "--data-root", str(tmp_path), "--images", "16", "--px", "64",
                 "--size", "48", "--batch-size", "8", "--batches", "2", "--repeats", "1", "--workers", "0",
                 "--json", str(report)])
    assert code == 0
    out = capsys.readouterr().out
    result = json.loads(report.read_text())
    assert result["files"] == 16 and result["routes"]["cpu"]["img_s"] > 0
    assert "cpu route" in out and "img/s" in out
    if torch.cuda.is_available():
        assert result["routes"]["gpu"]["img_s"] > 0
    else:
        assert "gpu" not in result["routes"] and "needs CUDA" in result["gpu_route"]
        assert "no CUDA device" in out
