"""`cifar-lab bench inference`: every route measured, agreement with eager fp32, the best route chosen only
among routes that agree. No assertion is about how fast anything is: timings depend on the machine."""
import json
import subprocess
import sys

import pytest

from cifar_lab import inference_routes
from cifar_lab.bench import inference
from cifar_lab.errors import UsageError
from inference_checkpoint import small_checkpoint as trained  # tests/ is on sys.path under pytest

FAST = dict(repeats=2, runs=3, warmup=1, batch_size=16, batch_runs=1, eval_images=96, calibration_images=32,
            device="cpu", progress=False)


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    return trained(tmp_path_factory)


@pytest.fixture(scope="module")
def result(small_checkpoint, tmp_path_factory):
    keep = tmp_path_factory.mktemp("routes")
    routes = "channels_last,autocast,onnxruntime,int8"  # compile has its own test: it is slow on a CPU
    return inference.run(small_checkpoint, routes=routes, work_dir=keep, **FAST), keep


def test_every_route_reports_the_figures(result):
    r, keep = result
    assert list(r["routes"])[0] == "eager" and r["reference"] == "eager"
    measured = set(r["routes"]) | set(r["skipped"])
    assert measured == {"eager", "channels_last", "autocast", "onnxruntime", "int8"}
    for name, route in r["routes"].items():
        for key in ("p50_ms", "p95_ms", "img_s", "agreement", "size_mb", "top1"):
            assert isinstance(route[key], float) and route[key] >= 0, (name, key)
        assert route["p50_spread"]["min"] <= route["p50_ms"] <= route["p50_spread"]["max"]
    assert r["eval_images"] == 96 and r["repeats"] == 2 and r["calibration_images"] == 32
    assert (keep / "model.onnx").is_file() and (keep / "model-int8.onnx").is_file()
    # int8 weights take about a quarter of the fp32 file
    assert r["routes"]["int8"]["size_mb"] < 0.5 * r["routes"]["onnxruntime"]["size_mb"]
    json.dumps(r)  # a plain dict


def test_fp32_routes_agree_with_eager(result):
    r, _ = result
    assert r["routes"]["eager"]["agreement"] == 1.0
    for name in ("channels_last", "onnxruntime"):
        assert r["routes"][name]["agreement"] >= 0.99, name
        assert r["routes"][name]["top1"] == pytest.approx(r["routes"]["eager"]["top1"], abs=0.02)


def test_best_route_is_the_fastest_that_agrees(result):
    r, _ = result
    eligible = {n: x for n, x in r["routes"].items() if x["agreement"] >= inference.AGREEMENT_FLOOR}
    assert r["best_route"] in eligible
    assert r["routes"][r["best_route"]]["p50_ms"] == min(x["p50_ms"] for x in eligible.values())
    assert r["speedup_vs_eager"] == pytest.approx(r["routes"]["eager"]["p50_ms"]
                                                  / r["routes"][r["best_route"]]["p50_ms"])


def test_best_of_ignores_routes_that_disagree():
    routes = {"eager": {"p50_ms": 10.0, "agreement": 1.0}, "int8": {"p50_ms": 1.0, "agreement": 0.95},
              "onnxruntime": {"p50_ms": 6.0, "agreement": 0.995}}
    assert inference.best_of(routes) == "onnxruntime"
    routes["onnxruntime"]["agreement"] = 0.98
    assert inference.best_of(routes) == "eager"
    assert inference.best_of({"int8": {"p50_ms": 1.0, "agreement": 0.5}}) is None


def test_route_names_are_checked_and_eager_always_comes_first():
    assert inference.parse_routes("int8, eager,onnxruntime") == ["eager", "int8", "onnxruntime"]
    assert inference.parse_routes(None) == list(inference_routes.ROUTES)
    with pytest.raises(UsageError, match="unknown route 'tensorrt'"):
        inference.parse_routes("eager,tensorrt")


def test_compile_route_agrees_with_eager(small_checkpoint):
    r = inference.run(small_checkpoint, routes="compile", **{**FAST, "repeats": 1})
    assert r["routes"]["compile"]["agreement"] >= 0.99
    assert r["best_route"] in ("eager", "compile")


def test_cli_writes_the_json_and_bad_routes_are_one_line(small_checkpoint, tmp_path):
    report = tmp_path / "bench.json"
    base = [sys.executable, "-m", "cifar_lab", "bench", "inference", "--checkpoint", str(small_checkpoint)]
    done = subprocess.run(base + ["--routes", "onnxruntime", "--repeats", "1", "--runs", "2", "--warmup", "0",
                                  "--batch-size", "8", "--batch-runs", "1", "--eval-images", "32",
                                  "--no-progress", "--json", str(report)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    r = json.loads(report.read_text())
    assert set(r["routes"]) == {"eager", "onnxruntime"} and "best route at batch 1" in done.stdout
    for key in ("best_route", "speedup_vs_eager", "speedup_spread", "load_average", "threads"):
        assert key in r

    bad = subprocess.run(base + ["--routes", "tensorrt", "--json", str(tmp_path / "bad.json")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown route 'tensorrt'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad.json").exists()
