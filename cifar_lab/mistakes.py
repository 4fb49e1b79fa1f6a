"""The mistakes a trained classifier makes: which confusions are most common, and the test images behind them.

`predictions` runs a model over a test loader in its order; `top_confusions` ranks the (true, predicted) pairs
of a confusion matrix by how many test images they hold; `examples` picks, for each of those pairs, the images
the model got wrong with the most confidence, as small uint8 pictures that fit in a results file; `of_run` does
all three for a finished run.
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch

from .errors import UsageError


@torch.no_grad()
def predictions(model: torch.nn.Module, loader, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(true labels, predicted labels, the predicted class's probability), one entry per test image in the
    loader's order (an evaluation loader does not shuffle)."""
    model.eval()
    labels, predicted, confidence = [], [], []
    for images, batch_labels in loader:
        probabilities = model(images.to(device)).float().softmax(dim=1)
        best = probabilities.max(dim=1)
        labels.append(batch_labels.cpu())
        predicted.append(best.indices.cpu())
        confidence.append(best.values.cpu())
    return torch.cat(labels), torch.cat(predicted), torch.cat(confidence)


def top_confusions(confusion, class_names: Sequence[str], count: int = 6) -> pd.DataFrame:
    """The `count` most frequent wrong (true, predicted) pairs: how many test images (`images`), and which
    share of the true class they are (`share`)."""
    matrix = torch.as_tensor(confusion).clone()
    per_class = matrix.sum(dim=1).clamp(min=1)
    matrix.fill_diagonal_(0)
    values, flat = matrix.flatten().topk(min(count, matrix.numel()))
    rows = []
    for value, index in zip(values.tolist(), flat.tolist()):
        if value == 0:
            break
        true, pred = divmod(index, matrix.shape[1])
        rows.append({"true": class_names[true], "predicted": class_names[pred], "images": int(value),
                     "share": round(value / int(per_class[true]), 3), "true_id": true, "pred_id": pred})
    return pd.DataFrame(rows)


def examples(images: torch.Tensor, labels: torch.Tensor, predicted: torch.Tensor, confidence: torch.Tensor,
             pairs: pd.DataFrame, per_pair: int = 4, crop: int = 0) -> list[dict]:
    """For every pair of `top_confusions`, the `per_pair` test images of that mistake made with the highest
    confidence: grey pictures (the first channel, `crop` pixels of padding removed from each side) as lists."""
    found = []
    for row in pairs.itertuples(index=False):
        wrong = ((labels == row.true_id) & (predicted == row.pred_id)).nonzero().flatten()
        chosen = wrong[confidence[wrong].argsort(descending=True)[:per_pair]]
        for index in chosen.tolist():
            picture = images[index, 0]
            if crop:
                picture = picture[crop:-crop, crop:-crop]
            found.append({"index": index, "true": row.true, "predicted": row.predicted,
                          "confidence": round(float(confidence[index]), 3), "pixels": picture.tolist()})
    return found


def of_run(run, confusions: int = 6, per_pair: int = 4) -> list[dict]:
    """`examples` for a finished run (the `RunResult` of `engine.train`): its model over its test split, the
    `confusions` most common mistakes of its last evaluation, `per_pair` images each. Pictures the loader padded
    (Fashion-MNIST's 28x28 to 32x32) are shown as published, without the padding."""
    split = run.data.test_split
    if split is None:
        raise UsageError(f"dataset={run.config.dataset} is not held in memory, so its test images cannot be shown; "
                         f"the mistakes as images need Fashion-MNIST, CIFAR or the synthetic data")
    if not run.evaluation:
        raise UsageError("the run has no evaluation (it stopped before its first epoch ended): no mistakes to show")
    pairs = top_confusions(run.evaluation["confusion"], run.data.class_names, confusions)
    labels, predicted, confidence = predictions(run.model, run.data.test_loader, next(run.model.parameters()).device)
    padded = run.data.padded_from
    crop = (int(split.images.shape[-1]) - padded) // 2 if padded else 0
    return examples(split.images, labels, predicted, confidence, pairs, per_pair, crop=crop)
