"""`bench time-to-accuracy`: three paths (the plain fp32 loop, the informed plain loop, the engine) train the
preset's recipe to a test accuracy, in turn within each repeat; the result says how long and how many epochs
each took, its seconds per epoch and FLOP/s against a measured peak, the ratios, the CPU's features and
whether the machine was quiet.

Runs on small IDX files written in the official format (the real files take minutes per epoch on a CPU): ten
classes told apart by the grey level of the garment, so chance is 0.1 and the target 0.5; the network is a
one-layer convolution with a global max-pool, registered for these tests, so that three repeats of three
paths take seconds. Nothing here asserts on how fast anything is."""
import gzip
import json
import statistics
import struct
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from torchvision import transforms

from cifar_lab import models, presets, provenance
from cifar_lab.bench import time_to_accuracy
from cifar_lab.bench.plain_loop import PlainLoop
from cifar_lab.book import records
from cifar_lab.cli import main
from cifar_lab.data import augment, fashion_mnist
from cifar_lab.data.loader import DeviceLoader
from cifar_lab.engine import trainer
from cifar_lab.engine.optim import lr_factor
from cifar_lab.engine.runtime import cpu_supports_bf16, resolve_precision
from cifar_lab.errors import UsageError

CLASSES, TRAIN, TEST = 10, 200, 100
TARGET = 0.5  # five times chance
RECIPE = {"model": "tiny_maxpool", "epochs": 10, "batch_size": 20, "eval_batch_size": 50, "lr": 0.05,
          "weight_decay": 0.01, "label_smoothing": 0.05}  # weight decay and smoothing differ from the preset's
SETS = list(RECIPE.items())


def tiny_maxpool(num_classes: int = 10, **kwargs) -> nn.Module:
    """32 filters and a global max-pool: a shifted crop or a flip does not change what it sees."""
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
                         nn.Linear(32, num_classes))


def write_idx(path, array: np.ndarray) -> None:
    header = struct.pack(">I", 0x00000800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def write_learnable_fmnist(folder, wrong_test_labels: int = 0):
    """Class k is a grey level of 15 + 24 k (plus noise): learnable in a few epochs, chance 1/10.
    `wrong_test_labels` test images get another class's label, which caps the test accuracy below 1."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for train, n in ((True, TRAIN), (False, TEST)):
        labels = np.arange(n) % CLASSES
        images = 15 + 24 * labels[:, None, None] + rng.integers(0, 6, (n, 28, 28))
        if not train:
            labels[:wrong_test_labels] = (labels[:wrong_test_labels] + 1) % CLASSES
        image_file, label_file = fashion_mnist.FILES[train]
        write_idx(folder / image_file, images)
        write_idx(folder / label_file, labels)
    return folder


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    """The learnable files, the tiny network in the registry, and one torch thread (the test machine is shared:
    several threads on a busy CPU mostly wait for each other)."""
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(fashion_mnist.DIR_VARIABLE, str(write_learnable_fmnist(tmp_path_factory.mktemp("d") / "f")))
        patch.setitem(models.MODELS, "tiny_maxpool", models.ModelSpec(tiny_maxpool, 32))
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def measured(tiny_setup):
    """One benchmark of three repeats, with what each path built: the engine's optimizer, schedule and step,
    its RunResult, and the plain paths' objects; `calls` is the order the paths ran in."""
    built = {"engine": [], "results": [], "plain": [], "calls": []}
    real_make_step, real_train, real_build_plain = trainer.make_step, time_to_accuracy.engine_train, \
        time_to_accuracy.build_plain

    def make_step(config, model, optimizer, scaler, device, precision, scheduler, batches_per_epoch):
        step = real_make_step(config, model, optimizer, scaler, device, precision, scheduler, batches_per_epoch)
        built["engine"].append({"optimizer": optimizer, "scheduler": scheduler, "step": step,
                                "batches_per_epoch": batches_per_epoch})
        return step

    def engine_train(*args, **kwargs):
        built["calls"].append("ours")
        result = real_train(*args, **kwargs)
        built["results"].append(result)
        return result

    def build_plain(config, workers, loop, device):
        built["calls"].append("informed" if loop.channels_last else "reference")
        plain = real_build_plain(config, workers, loop, device)
        built["plain"].append(plain)
        return plain

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer, "make_step", make_step)
        patch.setattr(time_to_accuracy, "engine_train", engine_train)
        patch.setattr(time_to_accuracy, "build_plain", build_plain)
        result = time_to_accuracy.run(target=TARGET, repeats=3, workers=0, sets=SETS, peak_size=128)
    return result, built


def expected_settings() -> dict:
    """The recipe every path must train with: the preset's, with this test's overrides."""
    config = presets.resolve("fmnist-simplecnn", SETS)
    return {"optimizer": config.optimizer, "lr": config.lr, "weight_decay": config.weight_decay,
            "schedule": config.schedule, "label_smoothing": config.label_smoothing, "batch_size": config.batch_size,
            "shuffle": True, "augment": config.augment}


def test_every_path_reaches_a_target_far_above_chance_in_turn_reference_first(measured):
    """Mutants: the engine runs first in a repeat (`PATHS` reordered); a path stops at a fixed epoch instead of the
    first one whose test accuracy reaches the target; a path reports an accuracy it did not measure."""
    r, built = measured
    assert built["calls"] == ["reference", "informed", "ours"] * 3
    assert r["repeats"] == 3 and r["partial"] is False and 1 / CLASSES < TARGET
    for name in time_to_accuracy.PATHS:
        assert r[name]["reached"] == "3/3", (name, [run["curve"] for run in r[name]["runs"]])
        for run in r[name]["runs"]:
            curve = run["curve"]
            assert run["final_acc"] == curve[-1] >= TARGET and all(acc < TARGET for acc in curve[:-1])
            assert run["epochs"] == len(curve) and run["test_images"] == TEST
    assert [result.summary["final_acc"] for result in built["results"]] == [run["final_acc"] for run in
                                                                            r["ours"]["runs"]]


def test_the_engine_path_trains_with_the_presets_recipe(measured):
    """Mutants: the bench drops the `--set` overrides for the engine, forces label smoothing or weight decay to 0,
    turns the schedule to constant, or switches augmentation or shuffling off on our side."""
    r, built = measured
    expected = expected_settings()
    assert {key: r["ours"]["settings"][key] for key in expected} == expected
    for engine, result in zip(built["engine"], built["results"]):
        group = engine["optimizer"].param_groups[0]
        assert isinstance(engine["optimizer"], torch.optim.AdamW)
        assert group["initial_lr"] == RECIPE["lr"] and group["weight_decay"] == RECIPE["weight_decay"]
        assert engine["step"].criterion.label_smoothing == RECIPE["label_smoothing"]
        total = RECIPE["epochs"] * engine["batches_per_epoch"]
        assert engine["scheduler"].lr_lambdas[0](total // 2) == pytest.approx(lr_factor("cosine", total // 2,
                                                                                         total, 0))
        loader = result.data.train_loader
        assert isinstance(loader, DeviceLoader) and loader.train and loader.policy is augment.crop_flip


def test_the_plain_paths_are_the_plain_loop_with_the_same_recipe(measured):
    """Mutants: the plain loop without weight decay, schedule, label smoothing, shuffle or augmentation; the
    informed loop without bf16 (where the CPU has it) or channels_last; the reference with either."""
    r, built = measured
    expected = expected_settings()
    native = resolve_precision("auto", torch.device("cpu"))
    loops = {"reference": PlainLoop("fp32", False, RECIPE["label_smoothing"]),
             "informed": PlainLoop("bf16" if native == "bf16" else "fp32", True, RECIPE["label_smoothing"])}
    for name, loop in loops.items():
        settings = r[name]["settings"]
        assert {key: settings[key] for key in expected} == expected, name
        assert (settings["loop"], settings["precision"], settings["channels_last"]) == \
            ("plain", loop.precision, loop.channels_last)
    assert [plain.loop for plain in built["plain"]] == [loops["reference"], loops["informed"]] * 3
    for plain in built["plain"]:
        group = plain.optimizer.param_groups[0]
        assert isinstance(plain.optimizer, torch.optim.AdamW) and group["weight_decay"] == RECIPE["weight_decay"]
        assert isinstance(plain.scheduler, torch.optim.lr_scheduler.CosineAnnealingLR)
        assert plain.scheduler.T_max == RECIPE["epochs"] * len(plain.train_loader)
        assert isinstance(plain.train_loader.sampler, torch.utils.data.RandomSampler)
        steps = plain.train_loader.dataset.transform.transforms
        crop = [step for step in steps if isinstance(step, transforms.RandomCrop)]
        assert crop and crop[0].padding == 4
        assert any(isinstance(step, transforms.RandomHorizontalFlip) for step in steps)
        weight = next(plain.model.parameters())  # the convolution's
        assert weight.is_contiguous(memory_format=torch.channels_last) == plain.loop.channels_last


def test_ratios_and_summaries_are_the_paths_own_per_repeat_figures(measured):
    """Mutants: the ratio inverted (ours / reference); the informed ratio taken against the reference; seconds
    per epoch counting the evaluation or dividing by the wrong epochs; a median taken over other runs."""
    r, _ = measured
    ours, reference, informed = (r[name]["runs"] for name in ("ours", "reference", "informed"))
    assert r["ratio_runs"] == pytest.approx([ref["seconds"] / o["seconds"] for ref, o in zip(reference, ours)])
    assert r["ratio_informed_runs"] == pytest.approx([i["seconds"] / o["seconds"] for i, o in zip(informed, ours)])
    assert r["ratio"]["median"] == pytest.approx(statistics.median(r["ratio_runs"]))
    assert r["ratio_informed"]["max"] == pytest.approx(max(r["ratio_informed_runs"]))
    for name in time_to_accuracy.PATHS:
        runs = r[name]["runs"]
        for run in runs:
            assert run["epoch_seconds"] == pytest.approx(run["train_seconds"] / run["epochs"])
            assert 0 < run["train_seconds"] < run["seconds"]  # evaluation and loading are outside the epochs
        assert r[name]["epoch_seconds"]["median"] == pytest.approx(statistics.median(x["epoch_seconds"] for x in runs))
        assert r[name]["seconds"]["min"] == min(x["seconds"] for x in runs)
    per_epoch = [ref["epoch_seconds"] / o["epoch_seconds"] for ref, o in zip(reference, ours)]
    assert r["epoch_ratio"]["median"] == pytest.approx(statistics.median(per_epoch))


def test_flops_per_second_come_from_the_network_and_the_images_trained(measured):
    """Mutants: FLOPs counted for the forward pass only; images counted as batches; a path's FLOP/s set against
    the peak of another precision; the peak measured at one precision only."""
    r, _ = measured
    # one training image through tiny_maxpool: the 3x3 convolution to 32 channels at 32x32 (2 FLOPs per
    # multiply-add) forward and its weight gradient backward (the images need no gradient), and the linear layer
    # forward and, backward, its input and weight gradients
    conv = 2 * 32 * 32 * 32 * 3 * 3 * 3
    linear = 2 * 32 * CLASSES
    assert r["flops_per_image_train"] == conv * 2 + linear * 3
    precisions = {name: r[name]["precision"] for name in time_to_accuracy.PATHS}
    assert precisions["reference"] == "fp32"
    assert set(r["peak_flop_s"]) == set(precisions.values())
    for name in time_to_accuracy.PATHS:
        peak = r["peak_flop_s"][precisions[name]]
        assert peak["precision"] == precisions[name] and peak["flop_s"] > 0
        for run in r[name]["runs"]:
            assert run["images_trained"] == run["epochs"] * TRAIN
            assert run["flop_s"] == pytest.approx(r["flops_per_image_train"] * run["images_trained"]
                                                  / run["train_seconds"])
        fractions = [run["flop_s"] / peak["flop_s"] for run in r[name]["runs"]]
        assert r[name]["peak_fraction"]["median"] == pytest.approx(statistics.median(fractions))


def test_the_machine_is_described(measured):
    """Mutants: the CPU's features read from somewhere else than torch; the load average left out; threads
    not recorded."""
    r, _ = measured
    cpu = r["cpu"]
    assert cpu["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert cpu["cpu_bf16"] == cpu_supports_bf16() and cpu["torch_threads"] == 1
    assert r["device"].startswith("cpu (") and r["device"].endswith("1 thread)")
    assert len(r["load_average_before"]) == 3 and r["quiet"] == (r["load_average_before"][0] < 1.5)
    json.dumps(r)  # a plain dict


def test_quiet_means_a_low_load_before_the_start():
    """Mutant: the old rule (below 0.5 before, or a bound on the load after the run)."""
    assert time_to_accuracy.quiet((1.4, 3.0, 3.0))
    assert time_to_accuracy.quiet((0.2, 0.1, 0.1))
    assert not time_to_accuracy.quiet((1.5, 0.2, 0.1))


def test_a_path_that_evaluates_fewer_test_images_is_not_compared(tiny_setup, monkeypatch):
    """Mutant: the ratios are computed although the plain loops evaluated half of the test split (a time to a
    test accuracy on other images is another measurement)."""
    real_build_plain = time_to_accuracy.build_plain

    def half_test_split(config, workers, loop, device):
        plain = real_build_plain(config, workers, loop, device)
        half = torch.utils.data.Subset(plain.test_loader.dataset, range(TEST // 2))
        plain.test_loader = torch.utils.data.DataLoader(half, batch_size=RECIPE["eval_batch_size"])
        return plain

    monkeypatch.setattr(time_to_accuracy, "build_plain", half_test_split)
    r = time_to_accuracy.run(target=0.05, repeats=3, workers=0, sets=SETS, peak_size=64)
    assert {run["test_images"] for run in r["reference"]["runs"]} == {TEST // 2}
    assert {run["test_images"] for run in r["ours"]["runs"]} == {TEST}
    assert "different numbers of test images" in r["incomparable"] and "50" in r["incomparable"]
    for key in ("ratio", "ratio_informed", "epoch_ratio", "epoch_ratio_informed"):
        assert r[key] is None, key


class Terminal:
    """A stand-in for stderr on a terminal: what a progress bar writes is kept."""

    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_a_target_never_reached_is_reported_not_timed_and_epochs_still_are(tmp_path, tiny_setup, monkeypatch):
    """Mutants: a path that never reached the target reported with a time; its seconds per epoch dropped with it
    (a threshold that hides per-epoch speed); no progress shown on a terminal."""
    monkeypatch.setenv(fashion_mnist.DIR_VARIABLE, str(write_learnable_fmnist(tmp_path / "f", wrong_test_labels=10)))
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    r = time_to_accuracy.run(target=1.0, repeats=3, workers=0, sets=SETS + [("epochs", 1)], peak_size=64)
    for name in time_to_accuracy.PATHS:
        assert r[name]["reached"] == "0/3" and r[name]["seconds"] is None and r[name]["epochs"] is None
        assert r[name]["epoch_seconds"]["median"] > 0
    assert r["ratio"] is None and r["ratio_runs"] == [] and r["ratio_informed"] is None
    assert r["epoch_ratio"]["median"] > 0
    assert "repeat 3/3: ours" in terminal.text


def test_an_interrupted_run_keeps_its_completed_repeats(tmp_path, tiny_setup, monkeypatch, capsys):
    """Mutants: Ctrl-C loses the repeats already done (nothing written), writes them unmarked, counts the
    interrupted repeat's half, or ends with the training command's note about checkpoints; a progress bar
    written into a pipe."""
    real_engine_run = time_to_accuracy.engine_run
    calls = []

    def engine_run(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_engine_run(*args, **kwargs)

    monkeypatch.setattr(time_to_accuracy, "engine_run", engine_run)
    monkeypatch.setattr(time_to_accuracy, "matmul_flops",
                        lambda device, precision, size: {"precision": precision, "flop_s": 1e9})
    out = tmp_path / "tta.json"
    page = tmp_path / "for-the-book" / "page.json"
    code = main(["bench", "time-to-accuracy", "--target", "0.05", "--workers", "0", "--set",
                 *[f"{key}={value}" for key, value in SETS], "--json", str(out), "--record", str(page)])
    captured = capsys.readouterr()
    assert code == 130
    record = json.loads(out.read_text())
    # --record: the page record carries the run's own stamp (commit, clean or not, command) and says it is partial
    commit, dirty = provenance.git_state()
    stamp = records.read_record(page)["provenance"]
    assert stamp["commit"] == commit[:7] + ("+dirty" if dirty is True else "")
    assert record["provenance"]["commit"] == commit and record["provenance"]["dirty"] == dirty
    assert "interrupted after 1 of 3 repeats" in stamp["conditions"] and stamp["date"].endswith(" UTC")
    assert "torch " in stamp["software"]
    assert record["partial"] is True and record["repeats"] == 1 and record["repeats_planned"] == 3
    assert all(len(record[name]["runs"]) == 1 for name in time_to_accuracy.PATHS)
    assert "interrupted: 1 of 3 repeats completed" in captured.out and "plain loop / ours" in captured.out
    assert "checkpoints on disk" not in captured.err and "\r" not in captured.err


def test_the_page_record_and_bad_input(measured, tmp_path, capsys):
    """Mutants: the page record drops the informed loop or the seconds per epoch; fewer than three repeats
    accepted; a target given in percent accepted."""
    r, _ = measured
    page = time_to_accuracy.page_record(r, "cifar-lab bench time-to-accuracy", "abc1234", "2026-12-02 UTC",
                                        "torch", ["a note"])
    (tmp_path / "page.json").write_text(json.dumps(page))
    table = records.read_record(tmp_path / "page.json")["measurements"][0]["table"]
    assert [row[0].split(" (")[0] for row in table["rows"]] == ["plain loop", "informed plain loop",
                                                                "ours: engine.train"]
    assert "s/epoch" in table["columns"] and all(row[5] == "3/3" for row in table["rows"])

    for argv, named in ((["--target", "90"], "(0, 1]"), (["--repeats", "2"], "at least 3"),
                        (["--preset", "fmnist-tf-convnet", "--target", "0.5"], "3x32x32"),
                        (["--set", "grad_accum=2"], "grad_accum=2")):
        code = main(["bench", "time-to-accuracy", *argv])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and named in err, argv
    with pytest.raises(UsageError, match="schedule=onecycle"):
        time_to_accuracy.check_config("fmnist-simplecnn", 0.5, 3, 0, "cpu", [("schedule", "onecycle")])


def test_reference_schedule_is_the_engines_cosine():
    """Mutant: torch's CosineAnnealingLR stepped per epoch, or over another length, in the plain loops."""
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=20)
    for step in range(1, 21):
        optimizer.step()
        cosine.step()
        assert optimizer.param_groups[0]["lr"] == pytest.approx(lr_factor("cosine", step, 20, 0), abs=1e-9)
