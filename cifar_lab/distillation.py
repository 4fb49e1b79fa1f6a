"""The distillation experiment: the same student trained with a teacher and from scratch, at the same epochs
and seeds, through the one training loop (`engine.train`).

Knowledge distillation follows Hinton, Vinyals, Dean (2015), "Distilling the Knowledge in a Neural Network";
the loss and the teacher's place in a training step are in `engine/distill_step.py`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

import pandas as pd

from . import presets
from .config import apply_overrides, from_dict
from .engine import checkpoint
from .engine.trainer import train

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
