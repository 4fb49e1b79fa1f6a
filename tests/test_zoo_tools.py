"""summary, latency, predict and the Predictor on a small trained checkpoint; bad inputs; the CIFAR-100 recipe
end to end with superclass accuracy."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from cifar_lab import cli, presets
from cifar_lab.engine import checkpoint, train
from cifar_lab.errors import UsageError
from cifar_lab.inference import Predictor


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    config = presets.resolve("cifar10-simplecnn", {
        "dataset": "synthetic", "data_root": str(root / "data"), "epochs": 1, "synthetic_train_size": 500,
        "synthetic_test_size": 100, "progress": False, "device": "cpu"})
    result = train(config, root / "run")
    image = result.data.test_split.images[0].permute(1, 2, 0).numpy()
    Image.fromarray(image).save(root / "cat.png")
    Image.fromarray(np.kron(image, np.ones((4, 4, 1), dtype=np.uint8))).save(root / "big.jpg")  # 128x128
    (root / "notes.txt").write_text("not an image\n")
    return root


def test_summary_json_has_the_parameter_count(tmp_path, capsys):
    out = tmp_path / "summary.json"
    assert cli.main(["summary", "--model", "naivenet", "--classes", "100", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert abs(report["params"] - 320_464) / 320_464 < 0.05
    assert report["input_size"] == 128 and report["macs"] > 1e6 and report["size_mb"] == pytest.approx(report["params"] * 4e-6)
    assert "Total params: 321,018" in capsys.readouterr().out


def test_latency_json_keys_for_a_model_and_a_checkpoint(run_dir, tmp_path):
    for source in (["--model", "simple_cnn"], ["--checkpoint", str(run_dir / "run" / "best.pt")]):
        out = tmp_path / "latency.json"
        assert cli.main(["latency", *source, "--runs", "7", "--warmup", "2", "--json", str(out)]) == 0
        report = json.loads(out.read_text())
        for key in ("mean_ms", "std_ms", "p50_ms", "p95_ms", "p99_ms"):
            assert report[key] >= 0
        assert 0 < report["p50_ms"] <= report["p95_ms"] <= report["p99_ms"]
        assert report["runs"] == 7 and report["batch_size"] == 1 and report["model"] == "simple_cnn"


def test_predictor_returns_top5_triples(run_dir):
    predictor = Predictor(run_dir / "run" / "best.pt", device="cpu")
    top = predictor.predict(run_dir / "cat.png")
    assert len(top) == 5
    for name, index, probability in top:
        assert isinstance(name, str) and isinstance(index, int) and 0.0 <= probability <= 1.0
        assert predictor.class_names[index] == name
    probabilities = [p for _, _, p in top]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0 + 1e-6
    as_tensor = torch.from_numpy(np.array(Image.open(run_dir / "cat.png"))).permute(2, 0, 1)
    batch = predictor.predict_batch([run_dir / "cat.png", as_tensor, run_dir / "big.jpg"], top_k=3)
    assert [len(row) for row in batch] == [3, 3, 3]
    assert [i for _, i, _ in batch[0]] == [i for _, i, _ in batch[1]] == [i for _, i, _ in top[:3]]


def test_predict_cli_answers_good_images_and_names_bad_ones(run_dir, capsys):
    good, missing, text = run_dir / "cat.png", run_dir / "missing.png", run_dir / "notes.txt"
    code = cli.main(["predict", "--checkpoint", str(run_dir / "run" / "best.pt"), str(good), str(missing),
                     str(text)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out.splitlines()[0] == str(good) and [line.strip()[:2] for line in out.splitlines()[1:6]] == \
        ["1.", "2.", "3.", "4.", "5."]
    errors = err.strip().splitlines()
    assert len(errors) == 2 and str(missing) in errors[0] and str(text) in errors[1]
    assert "Traceback" not in err


def test_a_checkpoint_of_another_model_or_class_count_is_a_clear_error(run_dir, tmp_path):
    state = checkpoint.load(run_dir / "run" / "best.pt")
    for change in ({"num_classes": 100}, {"model": "resnet18_cifar"}):
        wrong = dict(state, config={**state["config"], **change})
        checkpoint.save(tmp_path / "wrong.pt", wrong)
        with pytest.raises(UsageError, match="do not fit model"):
            Predictor(tmp_path / "wrong.pt", device="cpu")
    assert cli.main(["predict", "--checkpoint", str(tmp_path / "wrong.pt"), str(run_dir / "cat.png")]) == 2


def test_cifar100_resnet18_recipe_reports_fine_and_superclass_accuracy(tmp_path):
    config = presets.resolve("cifar100-resnet18", {
        "dataset": "synthetic", "data_root": str(tmp_path / "data"), "epochs": 1, "synthetic_train_size": 200,
        "synthetic_test_size": 100, "batch_size": 50, "progress": False, "device": "cpu"})
    assert config.augment == "crop_flip_cutout" and config.nesterov and config.label_smoothing == 0.1
    train(config, tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["dataset"] == "synthetic" and summary["model"] == "resnet18_cifar"
    assert 0.0 <= summary["final_acc"] <= summary["final_superclass_acc"] <= 1.0
    assert summary["best_superclass_acc"] >= summary["final_superclass_acc"]
    assert "test_superclass_acc" in (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
