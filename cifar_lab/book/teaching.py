"""The training loop written out plainly, for reading: what `engine.train` does batch by batch.

`engine.train` spreads one batch over a step object (`engine/steps.py`, `engine/sparse_step.py`) because it
also handles gradient accumulation, mixed precision, several processes, checkpoints and resumption. The two
functions here do the same arithmetic in a few straight lines, on one process in fp32:

- `train_dense`: forward, cross-entropy with label smoothing, backward, an optimizer step and a schedule step
  per batch, then an evaluation pass per epoch;
- `train_ast`: the same with Adaptive Sparse Training's gate in front of it: a no-grad scoring pass, the
  significance score, the threshold gate with its fallback, the PI controller's update, and packing of the
  selected samples into full training batches.

Both take their data, model, optimizer and schedule from `engine.trainer.setup`, so that, run with the same
config, they give bit-for-bit the weights `engine.train` gives (tests/test_teaching_loop.py checks this on
CPU with `deterministic=true`). They are not a second training path: the book's runs use `engine.train`.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..engine.evaluate import evaluate
from ..engine.trainer import setup
from ..errors import UsageError
from ..sparse.controller import PIController
from ..sparse.score import score_batch


def plain_setup(config):
    """`engine.trainer.setup` for the plain loops, which show single-process fp32 training only: a config that
    needs the engine's other parts is refused before anything is built."""
    unsupported = {"grad_accum": config.grad_accum != 1, "grad_clip": config.grad_clip > 0,
                   "compile": config.compile, "distill.enabled": config.distill.enabled,
                   "precision": config.precision != "fp32", "ast.pack": config.ast.enabled and not config.ast.pack,
                   "ast.gate": config.ast.gate != "hard", "ast.selection": config.ast.selection != "gate"}
    named = [name for name, used in unsupported.items() if used]
    if named:
        raise UsageError(f"the teaching loop shows plain fp32 training (AST: packed, hard gate) only; "
                         f"{', '.join(named)} need engine.train (set grad_accum=1 grad_clip=0 compile=false "
                         f"precision=fp32 ast.pack=true ast.gate=hard ast.selection=gate)")
    return setup(config, None, resume=False)


def scoring_mode(model: nn.Module) -> None:
    """AST's scoring pass: BatchNorm in training mode (batch statistics, as the training step will see them),
    dropout off (its mask is noise, not significance)."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.eval()


def train_dense(config) -> tuple[nn.Module, list[float]]:
    """Train `config` the plain way; return the model and the test accuracy after each epoch."""
    run = plain_setup(config)                              # data, model, optimizer, schedule: as engine.train
    model, optimizer, scheduler = run.model, run.optimizer, run.scheduler
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    accuracies = []
    for epoch in range(config.epochs):
        run.data.train_loader.set_epoch(epoch)
        model.train()                                        # BatchNorm: batch statistics; dropout on
        for images, labels in run.data.train_loader:         # augmented, normalised batches
            logits = model(images)                           # forward
            loss = criterion(logits, labels)                 # cross-entropy, targets smoothed
            loss.backward()                                  # backward: a gradient for every weight
            optimizer.step()                                 # SGD (momentum, weight decay) or AdamW
            optimizer.zero_grad()
            scheduler.step()                                 # the learning rate of the next batch
        model.eval()                                         # BatchNorm: running statistics
        correct = seen = 0
        with torch.no_grad():
            for images, labels in run.data.test_loader:
                correct += int((model(images).argmax(1) == labels).sum())
                seen += len(labels)
        accuracies.append(correct / seen)
    return model, accuracies


def train_ast(config) -> tuple[nn.Module, list[float]]:
    """Train `config` with AST's gate (hard threshold, packed); return the model and the accuracy per epoch.

    The packed samples are trained on once the target says a full batch should have gathered (one read of the
    buffer's size per training step, as in `SparseStep`). The engine also drains a buffer about to overflow,
    which at targets of 1/16 and above never happens before that; below, the two may train at other moments."""
    run = plain_setup(config)
    model, optimizer, scheduler, ast = run.model, run.optimizer, run.scheduler, config.ast
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    controller = PIController.from_config(ast, run.device)           # theta starts at ast.theta0
    picks = torch.Generator(device=run.device).manual_seed(config.seed + 0xA57)  # the fallback's random draws
    full, per_epoch = config.batch_size, len(run.data.train_loader)
    kept_images, kept_labels, expected = [], [], 0.0                 # the packing buffer
    accuracies = []

    def train_on(images, labels, batches_done):                      # one dense step on a packed batch
        model.train()
        criterion(model(images), labels).backward()
        optimizer.step()
        optimizer.zero_grad()
        while scheduler.last_epoch < batches_done:                  # the schedule stands where the data is
            scheduler.step()

    def drain(batches_done, flush=False):                            # train on every full batch gathered
        nonlocal kept_images, kept_labels, expected
        images, labels = torch.cat(kept_images), torch.cat(kept_labels)
        start = 0
        while len(labels) - start >= full or (flush and len(labels) > start):
            train_on(images[start:start + full], labels[start:start + full], batches_done)
            start += full
        kept_images, kept_labels = [images[start:]], [labels[start:]]
        expected = float(len(kept_labels[0]))                          # what is left: counted, not estimated

    for epoch in range(config.epochs):
        run.data.train_loader.set_epoch(epoch)
        for index, (images, labels) in enumerate(run.data.train_loader):
            done = epoch * per_epoch + index + 1                    # scoring batches so far: the schedule's clock
            if epoch < ast.dense_epochs:                            # warm-up epochs train on every sample
                train_on(images, labels, done)
                continue
            scoring_mode(model)                                      # 1. score every sample, no gradient
            with torch.no_grad():
                scores, _ = score_batch(model(images), labels, images, ast.loss_weight, ast.intensity_weight)
            selected = scores > controller.theta                     # 2. select: the gate
            fallback = torch.randperm(len(labels), generator=picks, device=run.device)[:ast.fallback_samples]
            if not selected.any():                                   # nothing passed: train a few at random
                selected[fallback] = True
            controller.update(selected.float().mean(), weight=len(labels) / full)  # 3. PI controller
            kept_images.append(images[selected])                     # 4. pack the selected samples ...
            kept_labels.append(labels[selected])
            expected += ast.target * len(labels)
            if expected >= full:                                     # ... and train once a batch is due
                drain(done)
        if kept_labels:
            drain((epoch + 1) * per_epoch, flush=True)               # the epoch trains on all it selected
        while scheduler.last_epoch < (epoch + 1) * per_epoch:
            scheduler.step()
        accuracies.append(evaluate(model, run.data.test_loader, config.num_classes, run.device)["top1"])
    return model, accuracies


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    """Whether two models hold exactly the same parameters and buffers (bit for bit)."""
    left, right = a.state_dict(), b.state_dict()
    return left.keys() == right.keys() and all(torch.equal(left[key], right[key]) for key in left)
