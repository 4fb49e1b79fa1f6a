"""Chapter 9 on real data: a SimpleCNN teacher on Fashion-MNIST teaches students trained on fewer images,
against the same students from scratch, and the teacher's int8 route is held to its fp32 model; all on the
real IDX files, at a few hundred images."""
import json

import pytest

from cifar_lab.book import distillation, real_data
from cifar_lab.data import fashion_mnist
from cifar_lab.errors import UsageError

needs_files = pytest.mark.skipif(not fashion_mnist.has_files(fashion_mnist.debian_dir()),
                                 reason="needs the Fashion-MNIST files (Debian package dataset-fashion-mnist)")
TEST_IMAGES = 300


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("ch9_fashion")
    found = distillation.fashion_experiment(
        out, seeds=[0, 1], student_epochs=1, student_train_subset=300, teacher_epochs=1,
        teacher_train_subset=1000, test_subset=TEST_IMAGES, calibration_images=32)
    return out, found


@needs_files
def test_the_students_differ_only_in_the_teacher(experiment):
    out, found = experiment
    records = found["records"]
    assert list(records) == [distillation.TEACHER, distillation.DISTILLED, distillation.SCRATCH]
    assert all(record["dataset"] == fashion_mnist.NAME for record in records.values())
    assert records[distillation.DISTILLED]["seeds"] == records[distillation.SCRATCH]["seeds"] == [0, 1]
    teacher_checkpoint = (out / "teacher" / "best.pt").resolve()
    for seed in (0, 1):
        distilled = json.loads((out / "distilled_student" / f"seed{seed}" / "summary.json").read_text())
        scratch = json.loads((out / "student_from_scratch" / f"seed{seed}" / "summary.json").read_text())
        assert distilled["distill"]["teacher"]["absolute_path"] == str(teacher_checkpoint)
        assert distilled["compute_vs_student"] > 1.0  # the teacher's forward passes are paid for
        assert "distill" not in scratch
        assert distilled["model"] == scratch["model"] == "simple_cnn"
    # The same seed draws the same 300 training images for both variants; the teacher saw 1,000.
    for name in (distillation.DISTILLED, distillation.SCRATCH):
        assert records[name]["overrides"]["train_subset"] == 300
    assert records[distillation.TEACHER]["overrides"]["train_subset"] == 1000
    assert records[distillation.DISTILLED]["overrides"]["distill.teacher"] == "teacher/best.pt"
    # Only the loss differs, so the curves do.
    assert records[distillation.DISTILLED]["runs"][0]["history"] != records[distillation.SCRATCH]["runs"][0]["history"]


@needs_files
def test_int8_is_measured_on_the_teachers_test_split(experiment):
    _, found = experiment
    int8, teacher = found["int8"], found["teacher"]
    assert int8["eval_images"] == TEST_IMAGES and int8["calibration_images"] == 32
    assert 0.0 <= int8["agreement"] <= 1.0 and 0.0 <= int8["int8_top1"] <= 1.0
    assert int8["int8_size_mb"] < int8["fp32_size_mb"]
    assert "int8" in int8["route"]
    # The fp32 accuracy is the teacher checkpoint's own: what its training run measured on the same images
    # (the run evaluated under bf16 autocast where the CPU has it, so a few images may differ).
    assert teacher["test_acc"] == int8["fp32_top1"]
    assert abs(teacher["test_acc"] - found["records"][distillation.TEACHER]["best_acc_mean"]) <= 3 / TEST_IMAGES
    # Agreement and the two accuracies are consistent: the images int8 answers differently can change the
    # accuracy by at most their share.
    assert abs(int8["int8_top1"] - int8["fp32_top1"]) <= 1.0 - int8["agreement"] + 1e-9


@needs_files
def test_the_record_saves_and_renders(experiment, tmp_path):
    _, found = experiment
    path = real_data.save(found, tmp_path, "fmnist_ch9_distill", "cifar-lab run notebooks/09_inference.md",
                          {"commit": "0" * 40, "start_utc": "2026-01-01T00:00", "device": "cpu"})
    saved = real_data.load(path)
    assert saved["int8"] == found["int8"] and saved["sizes"]["seeds"] == [0, 1]
    table = real_data.summary_table(saved["records"])
    assert list(table.index) == [distillation.TEACHER, distillation.DISTILLED, distillation.SCRATCH]
    found_vs = real_data.versus(saved["records"], distillation.DISTILLED, distillation.SCRATCH)
    assert found_vs["sentence"].startswith(distillation.DISTILLED)
    assert distillation.SCRATCH in found_vs["sentence"] and "2 seeds" in found_vs["sentence"]
    assert "cifar-lab run notebooks/09_inference.md" in real_data.describe(saved)


def test_the_students_need_a_training_subset(tmp_path):
    with pytest.raises(UsageError, match="student_train_subset"):
        distillation.fashion_experiment(tmp_path, seeds=[0], student_epochs=1, student_train_subset=0,
                                        teacher_epochs=1)
    with pytest.raises(UsageError, match="at least 1"):
        distillation.fashion_experiment(tmp_path, seeds=[0], student_epochs=0, student_train_subset=100,
                                        teacher_epochs=1)
    assert not any(tmp_path.iterdir())  # refused before anything trained
