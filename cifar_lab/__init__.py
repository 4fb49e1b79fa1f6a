"""cifar-lab: datasets, models, Adaptive Sparse Training and one GPU-minded training loop for the book.

The few calls of the README's Python quick start, each one function of the library, reachable from here:

    preset(name, **overrides)       a preset's TrainConfig, fields changed      presets.resolve
    train(config, out_dir)          train it; a RunResult                      engine.trainer.train
    plot_curves(run)                loss, accuracy, lr per epoch               plots.training_curves
    plot_confusion(run)             the last evaluation's confusion matrix     plots.run_confusion_matrix
    plot_mistakes(run)              the most confident mistakes, as images     plots.run_mistakes
    lr_range_test(config)           Smith's learning-rate range test           lr_finder.range_test
    plot_lr_range_test(result)      its curve                                  plots.lr_range_test
    predict(model_file, image)      top-5 (class, id, probability)             export.predictor

They are loaded on first use (a module `__getattr__`, PEP 562): `import cifar_lab`, which every `cifar-lab`
command runs first, imports neither PyTorch nor matplotlib.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> (module, attribute): the one home of each function; nothing here re-implements it.
LAZY = {
    "train": ("cifar_lab.engine.trainer", "train"),
    "plot_curves": ("cifar_lab.plots", "training_curves"),
    "plot_confusion": ("cifar_lab.plots", "run_confusion_matrix"),
    "plot_mistakes": ("cifar_lab.plots", "run_mistakes"),
    "lr_range_test": ("cifar_lab.lr_finder", "range_test"),
    "plot_lr_range_test": ("cifar_lab.plots", "lr_range_test"),
}

__all__ = ["preset", "predict", *LAZY]


def preset(name: str, **overrides):
    """The preset `name` (see `cifar-lab train --list`) as a `TrainConfig`, with config fields changed as
    `--set` changes them: `preset("fmnist-simplecnn", epochs=2, train_subset=12800)`; a section takes a dict,
    `ast={"target": 0.2}`. Unknown names and fields are a `UsageError` naming the choices."""
    from .presets import resolve

    return resolve(name, overrides)


def predict(model_file, image, top_k: int = 5) -> list[tuple[str, int, float]]:
    """Top-`top_k` (class name, class id, probability) for one image (a file path, PIL image, array or uint8
    tensor), by a checkpoint of `train` (`best.pt`, `last.pt`) or a file `cifar-lab export` wrote; the image is
    prepared as the model's training images were (`inference.preparation`)."""
    from .export import predictor

    return predictor(model_file, device="auto").predict(image, top_k=top_k)


def __getattr__(name: str):
    if name not in LAZY:
        raise AttributeError(f"module 'cifar_lab' has no attribute '{name}'")
    module, attribute = LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(LAZY))
