"""A tiny training run of every ImageNet preset, through the real data paths (generated JPEG trees, a local
Hugging Face dataset), plus the corrupt-file run that must train to the end and count what it skipped."""
import json

import pytest

from cifar_lab import presets
from cifar_lab.cli import main
from cifar_lab.data import synthetic_jpeg
from cifar_lab.engine.trainer import train

# 32 px crops keep ResNet-50 fast on a CPU; batches are never a single sample (BatchNorm of the 1x1 last stage).
TINY = ["epochs=1", "image_size=32", "batch_size=4", "eval_batch_size=8", "num_workers=0", "progress=false",
        "save_checkpoints=false"]


def resolve(name, *sets):
    from cifar_lab.config import parse_assignments

    return presets.resolve(name, parse_assignments(list(TINY) + list(sets)))


@pytest.fixture(scope="module")
def hf_copy(tmp_path_factory):
    """A generated JPEG tree turned into a Hugging Face DatasetDict with ILSVRC/imagenet-1k's schema."""
    datasets = pytest.importorskip("datasets")
    root = synthetic_jpeg.write_tree(tmp_path_factory.mktemp("tree") / "t", num_classes=3, train_per_class=4,
                                     val_per_class=1, size=40)
    names = sorted(p.name for p in (root / "train").iterdir())
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    splits = {}
    for split, hf_name in (("train", "train"), ("val", "validation")):
        files = sorted((root / split).glob("*/*.JPEG"))
        splits[hf_name] = datasets.Dataset.from_dict(
            {"image": [{"bytes": f.read_bytes(), "path": None} for f in files],
             "label": [names.index(f.parent.name) for f in files]}, features=features)
    path = tmp_path_factory.mktemp("hf") / "imagenet-1k"
    datasets.DatasetDict(splits).save_to_disk(str(path))
    return path


def test_imagenet100_resnet50_on_the_generated_tree(tmp_path):
    config = resolve("imagenet100-resnet50", "dataset=synthetic-imagenet", f"data_root={tmp_path}", "num_classes=3",
                     "synthetic_jpeg_train_per_class=2", "synthetic_jpeg_val_per_class=1", "synthetic_jpeg_px=40")
    result = train(config, tmp_path / "run")
    summary = result.summary
    assert summary["model"] == "resnet50" and summary["epochs"] == 1 and summary["skipped_files"] == 0
    assert 0.0 <= summary["final_acc"] <= summary["final_top5"] <= 1.0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["pretrained"] == "none" and saved["image_size"] == 32 and saved["eval_resize"] == 37


@pytest.mark.parametrize("preset", ["imagenet1k-resnet18", "imagenet1k-resnet50"])
def test_imagenet1k_presets_on_a_local_hugging_face_copy(preset, hf_copy, tmp_path):
    config = resolve(preset, f"hf_dataset={hf_copy}")
    assert config.grad_accum == 4 and config.schedule == "onecycle" and config.optimizer == "adamw"
    result = train(config, tmp_path / "run")
    assert result.summary["dataset"] == "imagenet1k-hf" and result.summary["train_samples"] == 12
    assert result.data.class_names == sorted(synthetic_jpeg.fake_wnids(3))
    assert "final_top5" in result.summary


def test_ast_preset_runs_both_stages_from_the_command_line(tmp_path):
    pytest.importorskip("cifar_lab.engine.sparse_step")
    out = tmp_path / "run"
    code = main(["train", "--preset", "imagenet100-resnet50-ast", "--set", "dataset=synthetic-imagenet", "epochs=2",
                 "ast.dense_epochs=1", f"data_root={tmp_path}", "num_classes=3", "synthetic_jpeg_train_per_class=4",
                 "synthetic_jpeg_val_per_class=1", "synthetic_jpeg_px=64", *TINY[1:], "image_size=64",
                 "--out", str(out)])  # 64 px: an AST subset of one sample still has 2x2 values per BatchNorm channel
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["dense_epochs_done"] == 1 and summary["ast_epochs"] == 1
    assert "final_top5" in summary and "activation_rate" in summary
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3


def test_a_tree_with_one_corrupt_file_trains_to_the_end_and_reports_it(tmp_path):
    root = synthetic_jpeg.write_tree(tmp_path / "tree", num_classes=3, train_per_class=3, val_per_class=1,
                                     size=40, grayscale=1, cmyk=1, corrupt=1)
    out = tmp_path / "run"
    code = main(["train", "--preset", "imagenet1k-resnet18", "--set", "dataset=imagenet1k", f"imagenet_root={root}",
                 "epochs=2", *TINY[1:], "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["stop_reason"] == "completed"
    assert summary["skipped_files"] == 1 and summary["train_samples"] == 3 * 3 + 3
