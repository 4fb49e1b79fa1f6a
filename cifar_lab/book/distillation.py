"""The distillation experiment: the same student trained with a teacher and from scratch, at the same epochs
and seeds, through the one training loop (`engine.train`).

Knowledge distillation follows Hinton, Vinyals, Dean (2015), "Distilling the Knowledge in a Neural Network";
the loss and the teacher's place in a training step are in `engine/distill_step.py`.

`fashion_experiment` is the chapter's question on real data at CPU scale (Fashion-MNIST): a SimpleCNN teacher
trained over its whole recipe teaches the same network trained for a few epochs, at one or more settings of
temperature and weight, against that student trained from scratch on the same images, over seeds; and the
teacher's int8 route is held to its fp32 model on the official test split. It returns typed records
(`record.Record`) and their extras.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterable, Optional, Sequence

import pandas as pd
import torch

from .. import presets, provenance
from ..config import apply_overrides, from_dict
from ..engine import checkpoint
from ..engine.trainer import train
from ..errors import UsageError
from . import real_data
from .record import FRACTION, MEGABYTES, Record

PRESET = "cifar10-distill-mobilenetv3"
# What the student takes over from the teacher's run, so both see the same data as the teacher did.
DATA_KEYS = ("dataset", "data_root", "num_classes", "input_size", "normalization", "train_subset", "test_subset",
             "synthetic_train_size", "synthetic_test_size")
COLUMNS = ("seed", "variant", "test_acc", "best_acc", "test_top5", "epochs", "model", "params", "train_seconds",
           "compute_vs_student", "teacher_test_acc")


def student_config(teacher_checkpoint, *, variant: str, epochs: int, seed: int, overrides: Optional[dict] = None,
                   preset: str = PRESET):
    """The student's config: the preset, the teacher run's data settings, `epochs`, `seed`, then `overrides`;
    `variant` "distilled" learns from the teacher, "scratch" from the labels alone."""
    if variant not in ("distilled", "scratch"):
        raise ValueError(f"variant must be 'distilled' or 'scratch', got {variant!r}")
    teacher = from_dict(checkpoint.load(teacher_checkpoint)["config"])
    config = presets.resolve(preset, {key: getattr(teacher, key) for key in DATA_KEYS})
    apply_overrides(config, {"epochs": epochs, "seed": seed, "progress": False})
    apply_overrides(config, overrides or {})
    if variant == "distilled":
        apply_overrides(config, {"distill.enabled": True, "distill.teacher": str(teacher_checkpoint)})
    else:
        apply_overrides(config, {"distill.enabled": False, "distill.teacher": ""})
    return config


def compare_with_scratch(teacher_checkpoint, *, epochs: int, seeds: Iterable[int], out_dir,
                         overrides: Optional[dict] = None, preset: str = PRESET) -> pd.DataFrame:
    """Train the student of `preset` with the teacher and from scratch, for `epochs` epochs at each seed.

    Both variants share everything but the loss: data (the teacher run's dataset and sizes), recipe, epochs,
    seed. Each run writes its usual files into `out_dir/<variant>_seed<seed>/`. Returns one row per seed and
    variant: `seed`, `variant` ("distilled" or "scratch"), `test_acc` (last epoch), `best_acc`, `test_top5`,
    `epochs`, `model`, `params`, `train_seconds`, `compute_vs_student` (the run's FLOPs relative to training
    the student alone: above 1 with the teacher's forward pass, 1 from scratch) and `teacher_test_acc`.
    """
    out = Path(out_dir)
    state = checkpoint.load(teacher_checkpoint)
    history = state.get("history") or []
    teacher_acc = history[-1].get("test_acc") if history else None
    rows = []
    for seed in seeds:
        for variant in ("distilled", "scratch"):
            config = student_config(teacher_checkpoint, variant=variant, epochs=epochs, seed=seed,
                                    overrides=overrides, preset=preset)
            result = train(config, out / f"{variant}_seed{seed}")
            summary = result.summary
            rows.append({"seed": seed, "variant": variant, "test_acc": summary["final_acc"],
                         "best_acc": summary["best_acc"], "test_top5": summary["final_top5"],
                         "epochs": summary["epochs"], "model": summary["model"], "params": summary["params"],
                         "train_seconds": summary["train_seconds"],
                         "compute_vs_student": summary.get("compute_vs_student", 1.0),
                         "teacher_test_acc": teacher_acc})
    return pd.DataFrame(rows, columns=list(COLUMNS))


# The real-data experiment: the labels of its records (training entries as `real_data` trains them, rendered by
# `real_data.summary_table`), and the teacher checkpoint's two inference routes.
TEACHER, SCRATCH = "teacher", "student from scratch"
SETTINGS = ((4.0, 0.9),)    # (temperature, alpha) of the distilled students: the preset's, Hinton's T 4
FP32_ROUTE, INT8_ROUTE = "teacher checkpoint, fp32 (eager)", "teacher checkpoint, int8 (ONNX Runtime)"
CHECKPOINT_ACCURACY = "test accuracy"               # of the checkpoint as a route runs it
AGREEMENT = "top-1 agreement with fp32"
MODEL_SIZE = "model file size"
FASHION_TEACHER_PRESET = "fmnist-simplecnn"
FASHION_STUDENT_PRESET = "fmnist-distill-simplecnn"


def distilled_label(temperature: float, alpha: float) -> str:
    """The label of the distilled students at one setting: "distilled student (T 4, alpha 0.9)"."""
    return f"distilled student (T {temperature:g}, alpha {alpha:g})"


def fashion_experiment(out_dir, *, seeds: Iterable[int], student_epochs: int, student_train_subset: int,
                       teacher_epochs: int, teacher_train_subset: int = 0, test_subset: int = 0,
                       settings: Sequence[Sequence[float]] = SETTINGS, teacher_seed: int = 0,
                       calibration_images: int = 256, data_root: Optional[str] = None,
                       command: Optional[str] = None) -> tuple[list[Record], dict]:
    """Distillation on Fashion-MNIST, and what int8 costs a trained model.

    1. The teacher: `fmnist-simplecnn` for `teacher_epochs` on `teacher_train_subset` training images (0: all
       60,000), one seed, its checkpoints kept; the teacher is its last epoch (`out_dir/teacher/last.pt`), not
       the epoch that scored best on the test split, which would pick the teacher by the test images.
    2. The students, at every seed of `seeds`, for `student_epochs` on `student_train_subset` images (0: all; a
       subset is drawn by the seed, so every variant of a seed sees the same images): `fmnist-distill-simplecnn`
       taught by that checkpoint at each (temperature, alpha) of `settings`, and `fmnist-simplecnn` from the
       labels alone. Fewer epochs or images than the teacher had leave its soft targets something to add.
    3. The teacher checkpoint's int8 route (ONNX Runtime static quantization, `calibration_images` training
       images) against its eager fp32 model, through `bench.inference.run`: top-1 agreement and both
       accuracies on the test split (`test_subset` images, 0: all 10,000).

    Returns the records (labels `TEACHER`, `distilled_label` of every setting and `SCRATCH` as
    `real_data.training_records` gives them;
    `FP32_ROUTE` and `INT8_ROUTE` with `CHECKPOINT_ACCURACY` and `MODEL_SIZE`, and `AGREEMENT` for int8) and
    their extras, what chapter 9 keeps and renders."""
    from ..bench import inference as inference_bench  # ONNX Runtime is loaded only when the experiment runs

    seeds = [int(seed) for seed in seeds]
    if min(student_epochs, teacher_epochs) < 1:
        raise UsageError(f"student_epochs and teacher_epochs must be at least 1 (got {student_epochs} and "
                         f"{teacher_epochs})")
    if student_train_subset < 0:
        raise UsageError(f"student_train_subset={student_train_subset}: give a number of training images, or 0 "
                         f"for all of them")
    settings = [(float(temperature), float(alpha)) for temperature, alpha in settings]
    if not settings or any(temperature <= 0 or not 0 <= alpha <= 1 for temperature, alpha in settings):
        raise UsageError(f"settings={settings}: give one or more [temperature, alpha] pairs, temperature above 0 "
                         f"and alpha between 0 and 1, e.g. [[4, 0.9]]")
    out = Path(out_dir)
    teacher_plan = {TEACHER: {"preset": FASHION_TEACHER_PRESET, "seeds": [teacher_seed], "overrides": {
        "epochs": teacher_epochs, "train_subset": teacher_train_subset, "test_subset": test_subset,
        "save_checkpoints": True}}}
    records, extras = real_data.train_presets(teacher_plan, out, data_root, command)
    teacher_checkpoint = out / TEACHER / "last.pt"   # one seed: the run folder is the entry's own
    student = {"epochs": student_epochs, "train_subset": student_train_subset, "test_subset": test_subset}
    student_plan = {
        distilled_label(temperature, alpha): {
            "preset": FASHION_STUDENT_PRESET, "seeds": seeds,
            "overrides": {**student, "distill.teacher": str(teacher_checkpoint),
                          "distill.temperature": temperature, "distill.alpha": alpha}}
        for temperature, alpha in settings}
    student_plan[SCRATCH] = {"preset": FASHION_TEACHER_PRESET, "seeds": seeds, "overrides": student}
    distilled = set(student_plan) - {SCRATCH}
    students, student_extras = real_data.train_presets(student_plan, out, data_root, command)
    # the record names the teacher inside the experiment's folder, not by this machine's path
    records += [replace(r, details={**r.details, "overrides": {**r.details["overrides"],
                                                               "distill.teacher": f"{TEACHER}/last.pt"}})
                if r.label in distilled else r for r in students]
    extras.update(student_extras)
    # Only the agreement and the accuracies are kept: one timed run per route measures no latency.
    bench = inference_bench.run(teacher_checkpoint, routes=["eager", "int8"], repeats=1, runs=1, warmup=0,
                                batch_runs=1, calibration_images=calibration_images, device="cpu",
                                data_root=data_root, work_dir=out / "int8", progress=False)
    if "int8" not in bench["routes"]:
        raise UsageError(f"the int8 route cannot run here: {bench['skipped'].get('int8')}")
    fp32, int8 = bench["routes"]["eager"], bench["routes"]["int8"]
    teacher = next(r for r in records if r.label == TEACHER)
    # The checkpoint's accuracy is measured here, through the routes, on the test images they read.
    route = dict(seeds=[teacher_seed], dataset=teacher.dataset, data_source=teacher.data_source,
                 train_images=teacher.train_images, test_images=bench["eval_images"], epochs=teacher.epochs,
                 recipe_epochs=teacher.recipe_epochs, optimizer_steps=teacher.optimizer_steps,
                 device=provenance.device_name(torch.device("cpu")), commit=teacher.commit, dirty=teacher.dirty,
                 command=command, date=teacher.date, run_folder=str(out / "int8"))
    checkpoint_epoch = checkpoint.load(teacher_checkpoint).get("epoch", -1) + 1
    kept = {"checkpoint": "teacher/last.pt", "checkpoint_epoch": checkpoint_epoch}
    records += [
        Record(FP32_ROUTE, CHECKPOINT_ACCURACY, FRACTION, values=[fp32["top1"]], details=kept, **route),
        Record(FP32_ROUTE, MODEL_SIZE, MEGABYTES, values=[fp32["size_mb"]], details=kept, **route),
        Record(INT8_ROUTE, CHECKPOINT_ACCURACY, FRACTION, values=[int8["top1"]], details={
            **kept, "route": int8["detail"], "calibration_images": bench["calibration_images"],
            "max_abs_diff": int8["max_abs_diff"]}, **route),
        Record(INT8_ROUTE, AGREEMENT, FRACTION, values=[int8["agreement"]], details=kept, **route),
        Record(INT8_ROUTE, MODEL_SIZE, MEGABYTES, values=[int8["size_mb"]], details=kept, **route),
    ]
    return records, extras
