"""The real-data records the chapters render: named variants of one preset, and comparisons in words."""
import pytest

from cifar_lab.book import real_data
from cifar_lab.data import fashion_mnist


def record(preset, finals, superclass):
    mean = sum(finals) / len(finals)
    std = (sum((f - mean) ** 2 for f in finals) / (len(finals) - 1)) ** 0.5 if len(finals) > 1 else 0.0
    return {"preset": preset, "seeds": list(range(len(finals))), "final_acc_mean": mean, "final_acc_std": std,
            "runs": [{"final_acc": f, "final_superclass_acc": s} for f, s in zip(finals, superclass)]}


def test_versus_counts_a_difference_only_beyond_the_spread():
    records = {"a": record("fmnist-simplecnn", [0.90, 0.91, 0.92], [0.99, 0.99, 0.99]),
               "b": record("fmnist-simplecnn", [0.85, 0.86, 0.87], [0.99, 0.98, 0.99]),
               "c": record("fmnist-simplecnn", [0.905, 0.915, 0.925], [0.97, 0.98, 0.99])}
    assert real_data.versus(records, "a", "b")["verdict"] == "better"
    assert real_data.versus(records, "b", "a")["verdict"] == "worse"
    close = real_data.versus(records, "c", "a")
    assert close["verdict"] == "no clear difference"
    assert close["difference"] == pytest.approx(0.005)
    assert close["spread"] == pytest.approx(0.01)
    assert "within the spread" in close["sentence"] and "3 seeds" in close["sentence"]
    superclass = real_data.versus(records, "a", "c", key="final_superclass_acc")
    assert superclass["difference"] == pytest.approx(0.01)
    assert "superclass" in superclass["sentence"]


@pytest.mark.skipif(not fashion_mnist.has_files(fashion_mnist.debian_dir()),
                    reason="needs the Fashion-MNIST files (Debian package dataset-fashion-mnist)")
def test_variants_of_one_preset_train_under_their_own_names(tmp_path):
    plan = {"baseline": {"preset": "fmnist-simplecnn", "seeds": [0]},
            "label smoothing 0.1": {"preset": "fmnist-simplecnn", "seeds": [0],
                                    "overrides": {"label_smoothing": 0.1}}}
    tiny = {"train_subset": 256, "test_subset": 256, "epochs": 1, "device": "cpu"}
    for step in plan.values():
        step["overrides"] = {**tiny, **step.get("overrides", {})}
    records = real_data.train_presets(plan, tmp_path)["records"]
    assert list(records) == ["baseline", "label smoothing 0.1"]
    assert records["label smoothing 0.1"]["overrides"]["label_smoothing"] == 0.1
    assert all(r["preset"] == "fmnist-simplecnn" and r["dataset"] == fashion_mnist.NAME for r in records.values())
    # the same seed, data and model: only label smoothing differs, so the runs differ
    assert records["baseline"]["runs"][0]["history"] != records["label smoothing 0.1"]["runs"][0]["history"]
    metrics = real_data.runs_metrics(records)
    assert metrics["real_data"] is True
    assert metrics["runs"]["baseline"]["recipe_epochs"] == 15
    assert (tmp_path / "label_smoothing_0.1").is_dir()
