"""Chapter 9 on real data: a SimpleCNN teacher on Fashion-MNIST teaches students trained on fewer images, at two
settings of temperature and weight, against the same students from scratch, and the teacher's int8 route is held to its fp32 model; all on the
real IDX files, at a few hundred images."""
import json

import pytest

from cifar_lab.book import distillation, real_data, record
from cifar_lab.data import fashion_mnist
from cifar_lab.errors import UsageError

needs_files = pytest.mark.skipif(not fashion_mnist.has_files(fashion_mnist.debian_dir()),
                                 reason="needs the Fashion-MNIST files (Debian package dataset-fashion-mnist)")
TEST_IMAGES = 300
SETTINGS = [(4.0, 0.9), (2.0, 0.5)]
DISTILLED = [distillation.distilled_label(*setting) for setting in SETTINGS]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("ch9_fashion")
    records, extras = distillation.fashion_experiment(
        out, seeds=[0, 1], student_epochs=1, student_train_subset=300, teacher_epochs=1,
        teacher_train_subset=1000, test_subset=TEST_IMAGES, settings=SETTINGS, calibration_images=32,
        command="cifar-lab run ch9")
    return out, record.RecordSet(records, extras, "run")


@needs_files
def test_the_students_differ_only_in_the_teacher(experiment):
    """Mutants caught: a 'distilled' student trained without the teacher, or at another temperature or weight
    than its label says; students on other images than each other; the teacher taken from its best epoch (picked
    on the test split) rather than its last; a record naming the teacher by this machine's path."""
    out, found = experiment
    assert found.labels == [distillation.TEACHER, *DISTILLED, distillation.SCRATCH,
                            distillation.FP32_ROUTE, distillation.INT8_ROUTE]
    assert all(r.dataset == fashion_mnist.NAME and r.command == "cifar-lab run ch9" for r in found.records)
    assert all(found.get(name).seeds == (0, 1) for name in [*DISTILLED, distillation.SCRATCH])
    teacher_checkpoint = (out / "teacher" / "last.pt").resolve()
    for label, (temperature, alpha) in zip(DISTILLED, SETTINGS):
        for seed in (0, 1):
            distilled = json.loads((out / label.replace(" ", "_") / f"seed{seed}" / "summary.json").read_text())
            config = json.loads((out / label.replace(" ", "_") / f"seed{seed}" / "config.json").read_text())
            scratch = json.loads((out / "student_from_scratch" / f"seed{seed}" / "summary.json").read_text())
            assert distilled["distill"]["teacher"]["absolute_path"] == str(teacher_checkpoint)
            assert (config["distill"]["temperature"], config["distill"]["alpha"]) == (temperature, alpha)
            assert distilled["compute_vs_student"] > 1.0  # the teacher's forward passes are paid for
            assert "distill" not in scratch
            assert distilled["model"] == scratch["model"] == "simple_cnn"
        assert found.get(label).details["overrides"]["distill.teacher"] == "teacher/last.pt"
    # The same seed draws the same 300 training images for every variant; the teacher saw 1,000.
    for name in [*DISTILLED, distillation.SCRATCH]:
        assert found.get(name).train_images == 300 and found.get(name).details["overrides"]["train_subset"] == 300
    assert found.get(distillation.TEACHER).train_images == 1000
    # Only the loss differs, so the curves do.
    curves = real_data.curves(found)
    assert curves[DISTILLED[0]]["runs"][0]["history"] != curves[distillation.SCRATCH]["runs"][0]["history"]
    assert curves[DISTILLED[0]]["runs"][0]["history"] != curves[DISTILLED[1]]["runs"][0]["history"]


@needs_files
def test_int8_is_measured_on_the_teachers_test_split(experiment):
    """Mutant caught: int8 records on another split than the teacher's test images, or an fp32 accuracy read
    from the training run instead of measured on the checkpoint."""
    _, found = experiment
    int8 = found.get(distillation.INT8_ROUTE, distillation.CHECKPOINT_ACCURACY)
    fp32 = found.get(distillation.FP32_ROUTE, distillation.CHECKPOINT_ACCURACY)
    agreement = found.get(distillation.INT8_ROUTE, distillation.AGREEMENT).values[0]
    assert int8.test_images == fp32.test_images == TEST_IMAGES
    assert int8.details["calibration_images"] == 32 and "int8" in int8.details["route"]
    assert 0.0 <= agreement <= 1.0 and 0.0 <= int8.values[0] <= 1.0
    assert found.get(distillation.INT8_ROUTE, distillation.MODEL_SIZE).values[0] < \
        found.get(distillation.FP32_ROUTE, distillation.MODEL_SIZE).values[0]
    # The fp32 accuracy is the teacher checkpoint's own: what its training run measured on the same images
    # after its last epoch (the run evaluated under bf16 autocast where the CPU has it, so a few images may
    # differ).
    last = found.get(distillation.TEACHER, record.FINAL_ACCURACY).values[0]
    assert abs(fp32.values[0] - last) <= 3 / TEST_IMAGES
    # Agreement and the two accuracies are consistent: the images int8 answers differently can change the
    # accuracy by at most their share.
    assert abs(int8.values[0] - fp32.values[0]) <= 1.0 - agreement + 1e-9


@needs_files
def test_the_records_save_and_render(experiment, tmp_path):
    """Mutant caught: records that do not survive `record.save`/`load` (a field lost), or a comparison sentence
    over the wrong entries."""
    _, found = experiment
    path = record.save(tmp_path / "records.json", found.records, found.extras)
    saved = record.committed(path)
    assert saved.records == found.records and saved.digest == found.digest
    entries = [distillation.TEACHER, *DISTILLED, distillation.SCRATCH]
    assert list(real_data.summary_table(saved.only(entries)).index) == entries
    sentence = real_data.versus_sentence(saved, DISTILLED[1], distillation.SCRATCH)
    assert sentence.startswith(DISTILLED[1]) and distillation.SCRATCH in sentence and "n=2 and 2" in sentence


def test_sizes_and_settings_are_checked_before_anything_trains(tmp_path):
    """Mutants caught: a negative subset, a temperature of 0 or a weight outside [0, 1] reaching training."""
    with pytest.raises(UsageError, match="student_train_subset"):
        distillation.fashion_experiment(tmp_path, seeds=[0], student_epochs=1, student_train_subset=-1,
                                        teacher_epochs=1)
    for settings in ([], [(0.0, 0.5)], [(4.0, 1.5)]):
        with pytest.raises(UsageError, match="temperature"):
            distillation.fashion_experiment(tmp_path, seeds=[0], student_epochs=1, student_train_subset=100,
                                            teacher_epochs=1, settings=settings)
    with pytest.raises(UsageError, match="at least 1"):
        distillation.fashion_experiment(tmp_path, seeds=[0], student_epochs=0, student_train_subset=100,
                                        teacher_epochs=1)
    assert not any(tmp_path.iterdir())  # refused before anything trained
