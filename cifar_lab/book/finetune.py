"""Fine-tuning in two stages on one dataset's classes: pretrain on some classes, then train on the others
starting from those weights (`init_from`), against the same recipe started from random weights.

This is the shape of ImageNet fine-tuning (a network pretrained on 1,000 classes, its classifier replaced,
trained on a new label set) at a scale a CPU trains in minutes: Fashion-MNIST's classes 0-4 (tops, trousers)
as the pretraining task, its classes 5-9 (footwear, shirts, bags) as the new one, with a small training set,
where what the pretrained features carry over should show most (Yosinski et al. 2014, How transferable are
features in deep neural networks?).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .seeds import seed_folder

PRETRAINING, FINE_TUNED, SCRATCH = "pretraining", "fine-tuned", "from scratch"
FIXED_SCALING = {"normalization": "half"}


def two_stage_plan(runs_dir, seeds: Sequence[int], pretrain: dict, finetune: dict,
                   preset: str = "fmnist-simplecnn") -> dict:
    """The plan for `real_data.train_presets` (trained in its order): `PRETRAINING` with the overrides
    `pretrain` (its `classes` among them) keeping its last checkpoint, then `FINE_TUNED` and `SCRATCH`, both
    with the overrides `finetune`; each fine-tuning seed starts from the final epoch (`last.pt`, not the best
    epoch, which is chosen on the test split) of the pretraining run of the same seed.

    Every stage scales pixels to [-1, 1] (`normalization=half`) unless the overrides say otherwise: the
    dataset's own statistics differ between the two halves of the classes (footwear photos are darker than
    tops), and the copied layers should see inputs scaled as they were during pretraining - as ImageNet
    weights come with ImageNet's mean and standard deviation. Both arms share it, so it is not a difference
    between them."""
    seeds = [int(seed) for seed in seeds]
    pretrain, finetune = {**FIXED_SCALING, **pretrain}, {**FIXED_SCALING, **finetune}
    # "{seed}" becomes each run's own seed when it starts (`config.init_checkpoint`).
    checkpoint = str(seed_folder(Path(runs_dir) / PRETRAINING, "{seed}", seeds) / "last.pt")
    return {
        PRETRAINING: {"preset": preset, "seeds": seeds, "overrides": {**pretrain, "save_checkpoints": True}},
        FINE_TUNED: {"preset": preset, "seeds": seeds, "overrides": {**finetune, "init_from": checkpoint}},
        SCRATCH: {"preset": preset, "seeds": seeds, "overrides": dict(finetune)},
    }
