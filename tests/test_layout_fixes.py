"""Bugs found in the re-layout review, each pinned by a test: input sizes taken from checkpoints and model
metadata, checkpoints that load without pretrained weights, the schedule stepped per optimizer step, AST's
own sample counts, the renamed `ast.dense_epochs`, and generated preset descriptions."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from cifar_lab import models, presets
from cifar_lab.cli import main
from cifar_lab.config import ASTConfig, TrainConfig, from_dict
from cifar_lab.engine import checkpoint
from cifar_lab.engine.sparse_step import SparseStep
from cifar_lab.engine.trainer import train
from cifar_lab.inference import Predictor


@pytest.fixture(scope="module")
def imagenet_run(tmp_path_factory):
    """`--preset imagenet1k-resnet18 --set dataset=synthetic-imagenet epochs=1 image_size=48`, via the CLI."""
    out = tmp_path_factory.mktemp("inet") / "run"
    data = tmp_path_factory.mktemp("inet-data")
    code = main(["train", "--preset", "imagenet1k-resnet18", "--set", "dataset=synthetic-imagenet", "epochs=1",
                 "image_size=48", f"data_root={data}", "progress=false", "num_workers=0", "--out", str(out)])
    assert code == 0
    return out


def test_predict_runs_an_imagenet_checkpoint_at_its_trained_resolution(imagenet_run, offline_torch_home,
                                                                       tmp_path, capsys):
    image = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)).save(image)
    predictor = Predictor(imagenet_run / "best.pt", device="cpu")
    seen = []
    predictor.model.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    top = predictor.predict(str(image), top_k=3)
    assert seen == [(1, 3, 48, 48)] and len(top) == 3
    assert main(["predict", "--checkpoint", str(imagenet_run / "best.pt"), str(image)]) == 0
    assert not offline_torch_home.exists()  # nothing was looked up or written in the weights cache


def test_a_fine_tuned_checkpoint_loads_without_pretrained_weights(imagenet_run, offline_torch_home, tmp_path):
    state = checkpoint.load(imagenet_run / "best.pt")
    state["config"]["pretrained"] = "v1"  # as a run fine-tuned from torchvision's weights records it
    fine_tuned = tmp_path / "fine_tuned.pt"
    checkpoint.save(fine_tuned, state)
    model = checkpoint.load_model(checkpoint.load(fine_tuned))
    assert torch.equal(model.conv1.weight, state["model"]["conv1.weight"])
    assert Predictor(fine_tuned, device="cpu").input_size == 48
    assert main(["latency", "--checkpoint", str(fine_tuned), "--runs", "2", "--warmup", "0"]) == 0


def test_latency_of_a_checkpoint_uses_its_resolution(imagenet_run, tmp_path, capsys):
    report = tmp_path / "lat.json"
    assert main(["latency", "--checkpoint", str(imagenet_run / "best.pt"), "--runs", "3", "--warmup", "1",
                 "--json", str(report)]) == 0
    assert json.loads(report.read_text())["input_size"] == 48


def test_runs_and_checkpoints_record_their_resolution(imagenet_run):
    assert json.loads((imagenet_run / "summary.json").read_text())["resolution"] == 48
    assert checkpoint.load(imagenet_run / "last.pt")["input"]["resolution"] == 48
    assert json.loads((imagenet_run / "config.json").read_text())["image_size"] == 48


def test_summary_reports_a_models_own_resolution(capsys):
    assert models.describe("resnet50", num_classes=1000, depth=0)["input_size"] == 224
    assert models.describe("naivenet", num_classes=100, depth=0)["input_size"] == 128
    assert models.describe("resnet18_cifar", depth=0)["input_size"] == 32


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_with_gradient_accumulation_the_schedule_steps_once_per_optimizer_step(schedule, tmp_path, recwarn):
    config = presets.resolve("cifar10-simplecnn", {
        "dataset": "synthetic", "data_root": str(tmp_path / "data"), "epochs": 2, "train_subset": 600,
        "test_subset": 100, "grad_accum": 4, "schedule": schedule, "lr": 0.01, "progress": False})
    result = train(config, tmp_path / "run")
    steps = [row["optimizer_steps"] for row in result.history]
    assert steps == [2, 2]  # 5 batches of 128 per epoch: 4 + a last partial group of 1
    state = checkpoint.load(tmp_path / "run" / "last.pt")
    assert state["scheduler"]["last_epoch"] == sum(steps) == result.summary["optimizer_steps"]
    final = 0.0 if schedule == "cosine" else 0.01 / 25 / 1e4  # OneCycleLR ends at max_lr / div / final_div
    assert result.history[-1]["lr"] == pytest.approx(final, abs=1e-12)
    assert not [w for w in recwarn if "lr_scheduler" in str(w.message)]


def test_sparse_step_keeps_its_own_counts_during_an_epoch():
    torch.manual_seed(0)
    config = TrainConfig(batch_size=32, ast=ASTConfig(enabled=True, target=0.25, pack=False))
    model = models.build("simple_cnn")
    step = SparseStep(model, torch.optim.SGD(model.parameters(), lr=0.01), None, config, torch.device("cpu"), "fp32")
    step.start_epoch(0)
    for _ in range(3):
        step.train_batch(torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,)))
    assert step.scored == 96
    assert step.samples_trained == int(step.active) > 0   # counted as they train, not patched at the epoch end
    assert float(step.running()["act"]) == pytest.approx(int(step.active) / 96, abs=1e-3)


def test_warmup_epochs_is_now_ast_dense_epochs(capsys):
    config = presets.resolve("imagenet100-resnet50-ast")
    assert config.ast.dense_epochs == 2
    old = presets.resolve("cifar10-simplecnn-ast", [("warmup_epochs", "3")])
    assert old.ast.dense_epochs == 3
    note = capsys.readouterr().err.strip()
    assert note.count("\n") == 0 and "ast.dense_epochs" in note
    legacy = from_dict({**TrainConfig().to_dict(), "warmup_epochs": 1, "ast": {"enabled": True}})
    assert legacy.ast.dense_epochs == 1 and capsys.readouterr().err == ""


def test_dense_baseline_of_an_ast_preset():
    assert presets.resolve("cifar10-simplecnn-ast").ast.enabled
    dense = presets.resolve("cifar10-simplecnn-ast", {"epochs": 3}, ast=False)
    assert not dense.ast.enabled and dense.epochs == 3
    assert dense.to_dict() == presets.resolve("cifar10-simplecnn", {"epochs": 3}).to_dict() | {
        "preset": "cifar10-simplecnn-ast"}


def test_preset_descriptions_are_generated_from_their_values():
    lines = presets.describe()
    assert "SGD 0.1, momentum 0.9 Nesterov" in lines["cifar100-resnet18"]
    assert "100 epochs" in lines["cifar100-resnet18"] and "augment crop_flip_cutout" in lines["cifar100-resnet18"]
    assert "batch 16 x 4 accumulation" in lines["imagenet1k-resnet50"]
    assert "AST at a 10% target after 2 dense epochs" in lines["imagenet100-resnet50-ast"]


@pytest.mark.parametrize("module, expected", [
    ("cifar_lab.data.registry", {"cifar10", "synthetic", "imagenet100", "imagenet1k-hf", "synthetic-imagenet"}),
    ("cifar_lab.data.augment", {"none", "crop_flip", "crop_flip_cutout", "naivenet"}),
    ("cifar_lab.models", {"simple_cnn", "naivenet", "resnet50", "efficientnet_b0"}),
    ("cifar_lab.presets", {"cifar10-resnet18", "cifar100-naivenet", "imagenet1k-resnet50", "cifar10-simplecnn-ast"}),
])
def test_each_registry_is_complete_on_its_own(module, expected):
    """In a fresh interpreter that imports nothing else first, `names()` lists everything."""
    import subprocess
    import sys

    code = f"import importlib, json; print(json.dumps(importlib.import_module('{module}').names()))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert expected <= set(json.loads(done.stdout))
