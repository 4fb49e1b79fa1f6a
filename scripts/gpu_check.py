"""Check every CUDA path of cifar-lab on one machine in a few minutes, on generated data (see gpu_check.sh).

Each check runs the package's own command (`cifar-lab train`, `cifar-lab bench ...`) or function in a child
process with a time limit, so a CUDA error in one check is recorded and the others still run. The result is a
results record (`cifar_lab.book.records` format: title, provenance, notes, measurements) with one row per check;
the exit status is 1 if any check failed, 0 if all passed.

With --dry-run nothing needs CUDA: each check runs its CPU equivalent (device=cpu; gloo instead of NCCL; fp32
where fp16 and its GradScaler need a GPU; the CPU JPEG route instead of the GPU one), and the checks that have
no CPU equivalent (two NCCL processes, SyncBatchNorm's conversion) are listed as skipped. The dry run writes its
record into the work folder, never under book/results/.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUDGET_S = 8 * 60           # the whole check, on one GPU
STEP_LIMIT_S = 150          # one check on a GPU
DRY_STEP_LIMIT_S = 600      # one check's CPU equivalent (no overall budget: CPUs differ far more than GPUs)
CUDA_FAILURE_WORDS = ("CUDA error", "NCCL error", "cudaError", "CUBLAS_STATUS", "CUDNN_STATUS", "illegal memory")


def cifar_lab(*args: str) -> list[str]:
    return [sys.executable, "-m", "cifar_lab", *args]


def train_command(out: Path, data: Path, cuda: bool, *sets: str, preset: str = "", nproc: int = 0) -> list[str]:
    """A one-epoch training run on generated CIFAR-sized images (a few seconds on a GPU)."""
    preset = preset or ("cifar10-resnet18" if cuda else "cifar10-simplecnn")
    size = ("synthetic_train_size=4096", "synthetic_test_size=1024") if cuda else \
        ("synthetic_train_size=128", "synthetic_test_size=64", "batch_size=32")
    launch = ["--nproc-per-node", str(nproc)] if nproc else []
    return cifar_lab("train", "--preset", preset, *launch, "--set", "dataset=synthetic", "epochs=1",
                     f"device={'cuda' if cuda else 'cpu'}", f"data_root={data}", "progress=false", "num_workers=0",
                     *size, *sets, "--out", str(out))


def checks(work: Path, cuda: bool, gpus: int) -> list[dict]:
    """The checks in order: name, what it proves, the command (or None when skipped) and a verification."""
    data = work / "data"
    cpu_note = "CPU equivalent"
    bf16 = work / "bf16"
    items = [
        dict(name="bf16 autocast training step", command=train_command(bf16, data, cuda, "precision=bf16"),
             verify=summary_is("precision", "bf16", bf16)),
        dict(name="fp16 autocast with GradScaler",
             command=train_command(work / "fp16", data, cuda, "precision=fp16" if cuda else "precision=fp32"),
             verify=scaler_state(work / "fp16", cuda),
             mode=None if cuda else f"{cpu_note}: fp32 (fp16 and GradScaler need CUDA)"),
        dict(name="channels-last and torch.compile training step",
             command=train_command(work / "compiled", data, cuda, "channels_last=true", f"compile={cuda}",
                                   "precision=bf16" if cuda else "precision=fp32"),
             verify=summary_is("compile", cuda, work / "compiled"),
             mode=None if cuda else f"{cpu_note}: channels-last only (Inductor's CPU build takes minutes)"),
        dict(name=f"DDP ({'NCCL' if cuda else 'gloo'}), --nproc-per-node 1",
             command=train_command(work / "ddp1", data, cuda, nproc=1), verify=summary_exists(work / "ddp1"),
             mode=None if cuda else f"{cpu_note}: gloo"),
    ]
    if cuda and gpus >= 2:
        items.append(dict(name="DDP (NCCL), --nproc-per-node 2",
                          command=train_command(work / "ddp2", data, cuda, nproc=2), verify=summary_exists(work / "ddp2")))
    else:
        items.append(dict(name="DDP (NCCL), --nproc-per-node 2", command=None,
                          mode="skipped: needs two CUDA GPUs" if cuda else "skipped: needs CUDA"))
    items += [
        dict(name="SyncBatchNorm (DDP, dist.sync_batchnorm=true)",
             command=train_command(work / "syncbn", data, cuda, "dist.sync_batchnorm=true", nproc=1) if cuda else None,
             verify=summary_exists(work / "syncbn"),
             mode=None if cuda else "skipped: SyncBatchNorm is CUDA only (the CPU run keeps BatchNorm)"),
        dict(name="GPU JPEG route (decode_jpeg and augmentation on CUDA)",
             command=cifar_lab("train", "--preset", "imagenet1k-resnet18", "--set", "dataset=synthetic-imagenet",
                               "num_classes=4", f"synthetic_jpeg_train_per_class={16 if cuda else 4}",
                               "synthetic_jpeg_val_per_class=4", "epochs=1", "batch_size=16", "num_workers=0",
                               "progress=false", *(() if cuda else ("image_size=32", "synthetic_jpeg_px=40")),
                               f"jpeg_route={'gpu' if cuda else 'cpu'}", f"device={'cuda' if cuda else 'cpu'}",
                               f"data_root={data}", "--out", str(work / "jpeg")),
             verify=summary_exists(work / "jpeg"), mode=None if cuda else f"{cpu_note}: jpeg_route=cpu"),
        dict(name="bench data", command=cifar_lab("bench", "data", "--device", "cuda" if cuda else "cpu",
                                                  "--data-root", str(data), "--images", "4096" if cuda else "256",
                                                  "--batch-size", "128" if cuda else "64",
                                                  "--repeats", "1", "--workers", "0", "--json", str(work / "data.json")),
             verify=json_has(work / "data.json", "ratio")),
        dict(name="bench train", command=cifar_lab("bench", "train", "--model",
                                                   "resnet18_cifar" if cuda else "simple_cnn",
                                                   "--device", "cuda" if cuda else "cpu", "--data-root", str(data),
                                                   "--steps", "4" if cuda else "2", "--repeats", "1", "--workers", "0",
                                                   "--batch-size", "64" if cuda else "16",
                                                   "--json", str(work / "train.json")),
             verify=json_has(work / "train.json", "ratio")),
        dict(name="bench inference (eager, channels-last, autocast, compile, ONNX Runtime)",
             command=cifar_lab("bench", "inference", "--checkpoint", str(bf16 / "best.pt"), "--device",
                               "cuda" if cuda else "cpu", "--routes",
                               "channels_last,autocast,compile,onnxruntime" if cuda else "channels_last,onnxruntime",
                               "--repeats", "1", "--runs", "20" if cuda else "3", "--warmup", "2", "--batch-size", "16",
                               "--batch-runs", "2", "--eval-images", "256" if cuda else "64", "--no-progress",
                               "--json", str(work / "inference.json")),
             verify=inference_report(work / "inference.json", cuda),
             mode=None if cuda else f"{cpu_note}: eager, channels-last, ONNX Runtime (CPU execution provider)"),
        dict(name="latency criterion (chapter 2: ResNet-18 batch-1 fp32, 4-6 ms on a GPU)",
             command=[sys.executable, __file__, "--latency-criterion", "cuda" if cuda else "cpu",
                      str(work / "latency.json")],
             verify=latency_verdict(work / "latency.json", cuda)),
    ]
    return items


# --- verifications: what each check's output must show ------------------------------------------------------

def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def summary_exists(folder: Path):
    def verify() -> str:
        summary = _summary(folder)
        return f"test_acc {summary['final_acc']:.3f} on {summary['device']}"
    return verify


def summary_is(key: str, expected, folder: Path):
    def verify() -> str:
        summary = _summary(folder)
        if summary.get(key) != expected:
            raise AssertionError(f"summary.json has {key}={summary.get(key)!r}, expected {expected!r}")
        return f"{key}={expected}, test_acc {summary['final_acc']:.3f} on {summary['device']}"
    return verify


def scaler_state(folder: Path, cuda: bool):
    def verify() -> str:
        import torch

        state = torch.load(folder / "last.pt", map_location="cpu", weights_only=True)
        if not cuda:
            return "fp32 run completed (no GradScaler on the CPU)"
        scaler = state.get("scaler") or {}
        if not scaler or not float(scaler.get("scale", 0)) > 0:
            raise AssertionError(f"last.pt holds no GradScaler state ({scaler!r})")
        return f"GradScaler scale {float(scaler['scale']):g} after one epoch"
    return verify


def json_has(path: Path, key: str):
    def verify() -> str:
        result = json.loads(path.read_text())
        if key not in result:
            raise AssertionError(f"{path.name} lacks {key}")
        return f"{key} {result[key]:.2f} on {result.get('device')}"
    return verify


def inference_report(path: Path, cuda: bool):
    def verify() -> str:
        result = json.loads(path.read_text())
        if cuda and result["skipped"]:
            raise AssertionError(f"routes skipped on CUDA: {result['skipped']}")
        where = {name: route["device"] for name, route in result["routes"].items()}
        return f"best {result['best_route']}; route devices {where}"
    return verify


def latency_verdict(path: Path, cuda: bool):
    def verify() -> str:
        result = json.loads(path.read_text())
        comparable = not result["verdict"].startswith("not comparable")
        if comparable != cuda:
            raise AssertionError(f"verdict on {result['device']}: {result['verdict']}")
        return f"p50 {result['p50_ms']:.2f} ms on {result['device']}: {result['verdict']}"
    return verify


def latency_criterion(device: str, out: Path) -> None:
    """Measure ResNet-18's batch-1 fp32 latency as chapter 2 does and judge the chapter's claim (on the mean, as
    the sheet publishes it) with it."""
    from cifar_lab import models
    from cifar_lab.book import claims, record
    from cifar_lab.measure import latency

    cuda = device == "cuda"
    result = latency(models.build("resnet18_cifar", num_classes=10), 32, device, warmup=10 if cuda else 2,
                     runs=100 if cuda else 5)
    claim = next(c for items in claims.CLAIMS.values() for c in items if c.id == "02-latency")
    measured = record.Record(label="cifar10-resnet18", measured=record.LATENCY_MEAN, unit=record.MILLISECONDS,
                             seeds=(0,), values=(result["mean_ms"],), dataset=None, data_source=None,
                             train_images=None, test_images=None, epochs=(), recipe_epochs=None, optimizer_steps=(),
                             device=result["device"], commit=None, dirty=None, command="scripts/gpu_check.py",
                             date=None, run_folder=None)
    verdict = claims.judge(claim, [measured]).verdict
    out.write_text(json.dumps({"p50_ms": result["p50_ms"], "mean_ms": result["mean_ms"], "device": result["device"],
                               "verdict": verdict}))


# --- running ------------------------------------------------------------------------------------------------

def run_check(item: dict, deadline: float, log, step_limit: float) -> dict:
    row = {"check": item["name"], "mode": item.get("mode") or ("CUDA" if item["cuda"] else "CPU"),
           "result": "skipped", "seconds": 0.0, "detail": ""}
    if item["command"] is None:
        row["detail"] = item.get("mode", "")
        row["mode"] = "-"
        return row
    left = deadline - time.monotonic()
    if left < 10:
        row.update(result="failed", detail="not run: the time budget was spent")
        return row
    start = time.monotonic()
    print(f"gpu-check: {item['name']} ...", flush=True)
    try:
        done = subprocess.run(item["command"], capture_output=True, text=True, timeout=min(step_limit, left),
                              cwd=REPO)
        rc, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out, err = None, _text(exc.stdout), _text(exc.stderr) + f"\ntimed out after {exc.timeout:.0f} s"
    row["seconds"] = round(time.monotonic() - start, 1)
    log.write(f"$ {' '.join(item['command'])}\n{out}{err}\n(exit {rc})\n\n")
    cuda_error = next((word for word in CUDA_FAILURE_WORDS if word in err), None)
    if rc != 0 or cuda_error:
        last = [line for line in err.strip().splitlines() if line.strip()][-1:] or [f"exit status {rc}"]
        row.update(result="failed", detail=(f"{cuda_error}: " if cuda_error else "") + last[0][:300])
        return row
    try:
        row.update(result="passed", detail=item["verify"]())
    except Exception as exc:  # noqa: BLE001 (any missing or wrong output is this check's failure)
        row.update(result="failed", detail=f"{type(exc).__name__}: {exc}"[:300])
    return row


def _text(value) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def record(rows: list[dict], cuda: bool, seconds: float, command: str) -> dict:
    from cifar_lab import provenance

    environment = provenance.collect()
    now = datetime.now(timezone.utc)
    versions = environment["versions"]
    return {
        "title": "GPU check: every CUDA path on generated data" if cuda else
                 "GPU check, dry run: the CPU equivalents of the CUDA checks",
        "provenance": {
            "commit": (environment["commit"] or "unknown")[:7] + ("-dirty" if environment["dirty"] else ""),
            "date": now.strftime("%Y-%m-%d %H:%M UTC"), "device": environment["device"],
            "machine": f"{environment['cpu']}; {environment['device_count']} CUDA device(s)",
            "software": f"torch {versions['torch']}, CUDA {versions['cuda']}, cuDNN {versions['cudnn']}, "
                        f"Python {versions['python']}",
            "conditions": f"scripts/gpu_check.sh{' --dry-run' if not cuda else ''}: {len(rows)} checks in "
                          f"{seconds:.0f} s" + (f" (budget {BUDGET_S} s)" if cuda else ""),
        },
        "notes": [f"{sum(r['result'] == 'passed' for r in rows)} passed, "
                  f"{sum(r['result'] == 'failed' for r in rows)} failed, "
                  f"{sum(r['result'] == 'skipped' for r in rows)} skipped."],
        "measurements": [{
            "title": "GPU check" if cuda else "GPU check (dry run, CPU)",
            "description": "one row per check: the package's own commands on generated data, each in its own "
                           "process with a time limit; passed = exit status 0, no CUDA error, and the output shows "
                           "the path ran (precision, GradScaler state, compile, route devices, the verdict)",
            "command": command,
            "table": {"columns": ["check", "mode", "result", "s", "detail"],
                      "rows": [[r["check"], r["mode"], r["result"], f"{r['seconds']:.0f}", r["detail"]] for r in rows]},
        }],
        "environment": environment,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="no CUDA: the CPU equivalent of each check")
    parser.add_argument("--work", help="work folder (default: a temporary one, removed at the end)")
    parser.add_argument("--out", help="the record to write (default: book/results/<date>-gpu-check.json; with "
                                      "--dry-run: WORK/gpu-check-dry-run.json)")
    parser.add_argument("--latency-criterion", nargs=2, metavar=("DEVICE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.latency_criterion:
        latency_criterion(*args.latency_criterion[:1], Path(args.latency_criterion[1]))
        return 0

    import torch

    cuda = not args.dry_run
    if cuda and not torch.cuda.is_available():
        print("gpu-check: error: no CUDA device is visible; run it on a GPU machine, or use --dry-run for the CPU "
              "equivalents", file=sys.stderr)
        return 2
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="cifar-lab-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    if args.out:
        out = Path(args.out)
    elif args.dry_run:  # a dry run's record is no measurement for the book
        out = Path(tempfile.gettempdir()) / "cifar-lab-gpu-check-dry-run.json"
    else:
        out = REPO / "book" / "results" / f"{date}-gpu-check.json"
    gpus = torch.cuda.device_count() if cuda else 0
    start = time.monotonic()
    deadline = start + (BUDGET_S if cuda else float("inf"))
    rows = []
    log_path = work / "gpu-check.log"
    with open(log_path, "w") as log:
        for item in checks(work, cuda, gpus):
            item.setdefault("cuda", cuda)
            row = run_check(item, deadline, log, STEP_LIMIT_S if cuda else DRY_STEP_LIMIT_S)
            rows.append(row)
            print(f"gpu-check: {row['result']:<7} {row['check']} ({row['seconds']:.0f} s) {row['detail']}",
                  flush=True)
    seconds = time.monotonic() - start
    from cifar_lab.io import atomic_write_text

    command = "scripts/gpu_check.sh" + (" --dry-run" if args.dry_run else "")
    atomic_write_text(out, json.dumps(record(rows, cuda, seconds, command), indent=1) + "\n")
    failed = [r["check"] for r in rows if r["result"] == "failed"]
    print(f"gpu-check: {len(rows) - len(failed)} of {len(rows)} checks passed or were skipped in {seconds:.0f} s; "
          f"record: {out}")
    if failed:  # the work folder stays for inspection: every command's output is in its log
        print(f"gpu-check: failed: {', '.join(failed)}; every command's output: {log_path}", file=sys.stderr)
        return 1
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0

if __name__ == "__main__":
    sys.exit(main())
