"""`cifar-lab bench inference`: every route measured, agreement with eager fp32, the best route chosen only
among routes that agree. No assertion is about how fast anything is: timings depend on the machine."""
import json
import subprocess
import sys

import pytest
import torch

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


def test_routes_compute_the_eager_models_logits(result, small_checkpoint):
    # Each fp32 route's module, given the test images, returns the eager model's logits (not only its top-1).
    from cifar_lab import export
    from cifar_lab.engine import checkpoint

    _, keep = result
    state = checkpoint.load(small_checkpoint)
    model = checkpoint.load_model(state, "cpu")
    images, _ = export.test_split(state, limit=32)
    with torch.inference_mode():
        eager = model(images)
    meta = export.metadata(state)
    for name in ("channels_last", "onnxruntime"):
        route = inference_routes.build(name, model, meta, "cpu", keep)
        got = inference_routes.logits(route, images, batch_size=16)
        assert torch.allclose(got, eager, atol=1e-4 * max(1, float(eager.abs().max()))), name


# Per repeat, the batch-1 p50 a fake timer reports for each route: eager is 2x slower in the median.
FAKE_P50 = {"eager": [10.0, 12.0, 11.0], "channels_last": [5.0, 4.0, 6.0]}


def test_routes_alternate_within_each_repeat_and_the_figures_are_medians(small_checkpoint, monkeypatch):
    built, calls = {}, []
    real_build = inference_routes.build

    def build(name, *args, **kwargs):
        route = real_build(name, *args, **kwargs)
        built[id(route.module)] = name
        return route

    def fake_latency(module, resolution, device, warmup, runs, batch_size, channels_last):
        name = built[id(module)]
        repeat = sum(1 for n, b in calls if n == name and b == batch_size)
        calls.append((name, batch_size))
        p50 = FAKE_P50[name][repeat]
        return {"p50_ms": p50, "p95_ms": 2 * p50, "img_s": 1000.0 * batch_size / p50}

    monkeypatch.setattr(inference_routes, "build", build)
    monkeypatch.setattr(inference, "latency", fake_latency)
    r = inference.run(small_checkpoint, routes="channels_last", **{**FAST, "repeats": 3})
    one_repeat = [("eager", 1), ("eager", 16), ("channels_last", 1), ("channels_last", 16)]
    assert calls == one_repeat * 3  # every route once per repeat, in turn, so drift hits them all alike
    assert r["routes"]["eager"]["p50_ms"] == 11.0 and r["routes"]["channels_last"]["p50_ms"] == 5.0
    assert r["routes"]["eager"]["p95_ms"] == 22.0
    assert r["best_route"] == "channels_last" and r["speedup_vs_eager"] == pytest.approx(11.0 / 5.0)
    # the spread of the per-repeat ratios 10/5, 12/4, 11/6
    assert r["speedup_spread"] == pytest.approx({"median": 2.0, "min": 11.0 / 6.0, "max": 3.0})


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
    """Mutants: progress bars written into a redirected log; the header naming the threads twice ("(1 threads)
    (1 threads)"); an unknown route accepted, or refused after a half-written report."""
    report = tmp_path / "bench.json"
    base = [sys.executable, "-m", "cifar_lab", "bench", "inference", "--checkpoint", str(small_checkpoint)]
    done = subprocess.run(base + ["--routes", "onnxruntime", "--repeats", "1", "--runs", "2", "--warmup", "0",
                                  "--batch-size", "8", "--batch-runs", "1", "--eval-images", "32", "--threads", "1",
                                  "--json", str(report)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # no progress bar in a pipe, and the threads named once, with the CPU
    assert "\r" not in done.stderr and "step/s" not in done.stderr
    header = done.stdout.splitlines()[0]
    assert "1 thread)" in header
    assert header.count("thread") == 1, header
    r = json.loads(report.read_text())
    assert set(r["routes"]) == {"eager", "onnxruntime"} and "best route at batch 1" in done.stdout
    for key in ("best_route", "speedup_vs_eager", "speedup_spread", "load_average", "threads"):
        assert key in r

    bad = subprocess.run(base + ["--routes", "tensorrt", "--json", str(tmp_path / "bad.json")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown route 'tensorrt'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad.json").exists()
