"""The AST chapter's compute curves: test accuracy against the training compute spent, for every way of choosing
the samples a step trains on, all trained by the one engine (`engine.train`).

Variants (`VARIANTS`), each on the full training split of the same config, once per seed:
  * "dense": every sample;
  * "AST engine": the engine's gate (hard threshold, PI controller), packed;
  * "AST seed gate": the AST paper's repository's gate (`sparse.seed_gate`), unpacked, as that repository trains;
  * "random packed" / "random unpacked": a random subset at the target rate, with and without packing;
  * "Selective Backprop": Jiang et al. 2019 (`sparse.selective_backprop`), packed;
  * "dense at AST's compute": dense training for the whole epochs closest to the training FLOPs the same seed's
    "AST engine" run spent, with its cosine schedule over exactly those epochs, so that it ends fully decayed
    inside that budget.
The other variants train at a constant learning rate and are evaluated after every epoch: each evaluation is a
compute level (the learning rate does not depend on the run's length, so a run stopped there would have
trained the same way).

`measure` returns typed records (`book.record.Record`): one per variant and compute level (an epoch; the budget
variant has one), measuring the test accuracy there (`record.FINAL_ACCURACY`) per seed, with the training FLOPs
(the scoring pass included, as `engine.sparse_step.account` counts them), the samples back-propagated and the
optimizer steps per seed in its `details`. Its extras, by variant: every seed's curve (those figures after every
epoch) and, for the selecting variants, the class mix of the selected samples per epoch (`selected_per_class`),
which `class_shares` turns into each class's share, to set against an even 1 / classes. With `record_scores`, the
first seed's "AST engine" run also keeps the scores of its first batches (`SCORE_STREAM`), for the controller's
replay.

Readers of the records: `level_table` (steps, images, FLOPs and accuracy per variant and level), `answers_table`
(each selection against its random twin at every level, and dense training at AST's compute against AST's last
level: `stats.compare` over the seeds), `class_mix_table` and `points` (the curves' mean points, for the figure).
"""
from __future__ import annotations

import contextlib
import copy
import math
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd
import torch
import torch.nn as nn

from .. import provenance
from ..config import TrainConfig, apply_overrides, validate
from ..engine import train
from ..engine.sparse_step import count_flops_per_sample
from ..errors import UsageError
from ..sparse.config import SEED_GATE_SETTINGS
from . import stats
from .ast_comparison import SCORE_STREAM, stream_extra
from .record import FINAL_ACCURACY, FRACTION, Record, RecordSet, provenance_fields
from .seeds import check_seeds, recipe_epochs

BUDGET = "dense at AST's compute"
BUDGET_OF = "AST engine"          # whose training FLOPs the budget variant is given
SETTINGS = {                      # variant -> config overrides (on top of the seed and the schedule)
    "dense": {"ast.enabled": False, "ast.dense_epochs": 0},
    "AST engine": {"ast.enabled": True, "ast.selection": "gate", "ast.gate": "hard", "ast.pack": True},
    "AST seed gate": {"ast.enabled": True, "ast.selection": "gate", "ast.gate": "seed", "ast.kp": None,
                      "ast.ki": None, **SEED_GATE_SETTINGS},
    "random packed": {"ast.enabled": True, "ast.selection": "random", "ast.pack": True},
    "random unpacked": {"ast.enabled": True, "ast.selection": "random", "ast.pack": False},
    "Selective Backprop": {"ast.enabled": True, "ast.selection": "selective_backprop", "ast.pack": True},
}
VARIANTS = (*SETTINGS, BUDGET)
POINT_KEYS = ("training_flops", "samples_backpropagated", "optimizer_steps", "compute_vs_dense")
# The chapter's questions at every compute level: each selection against a uniform random subset trained the
# same way (packed or not), so that only the choice of samples differs.
TWINS = (("AST engine", "random packed"), ("AST seed gate", "random unpacked"),
         ("Selective Backprop", "random packed"))


def measure(base: TrainConfig, seeds: Sequence[int], out_dir=None, variants: Sequence[str] = VARIANTS,
            schedule: str = "constant", budget_schedule: str = "cosine",
            command: Optional[str] = None, record_scores: int = 0) -> tuple[list[Record], dict]:
    """Train every variant of `variants` from `base` for every seed (into `out_dir/seed<N>/<variant>` when
    `out_dir` is given) and return the records and extras of the module docstring. The curve variants train
    `base.epochs` epochs at the schedule `schedule`; the budget variant uses `budget_schedule`. The first seed's
    "AST engine" run keeps the scores of its first `record_scores` batches."""
    seeds = check_seeds(seeds)
    variants = _check(base, variants)
    results: dict[str, list] = {name: [] for name in variants}
    for seed in seeds:
        for name in (v for v in variants if v != BUDGET):
            config = variant_config(base, name, seed, schedule)
            if name == BUDGET_OF and seed == seeds[0]:
                config.ast.record_scores = record_scores
            results[name].append(train(config, _folder(out_dir, seed, name)))
        if BUDGET in variants:
            epochs = budget_epochs(results[BUDGET_OF][-1])
            config = variant_config(base, "dense", seed, budget_schedule, epochs=epochs)
            results[BUDGET].append(train(config, _folder(out_dir, seed, BUDGET)))
    return records(results, seeds, base, command, out_dir)


def variant_config(base: TrainConfig, name: str, seed: int, schedule: str,
                   epochs: Optional[int] = None) -> TrainConfig:
    """`base` as variant `name` trains it (the budget variant is "dense" with its own `epochs`)."""
    config = apply_overrides(copy.deepcopy(base), {**SETTINGS[name], "seed": seed, "schedule": schedule})
    if epochs is not None:
        config.epochs = epochs
    return validate(config)


def budget_epochs(ast_run) -> int:
    """The whole epochs of dense training whose FLOPs are closest to what `ast_run` spent (at least one)."""
    per_sample = train_flops_per_sample(ast_run)
    spent = curve(ast_run, per_sample)[-1]["training_flops"]
    return max(1, round(spent / (per_sample * ast_run.history[0]["scored_samples"])))


def train_flops_per_sample(result) -> float:
    """FLOPs of one sample's training step (forward and backward): what the AST step counted, else counted
    here on the trained model and one training batch (`engine.sparse_step.count_flops_per_sample`)."""
    counted = result.summary.get("flops_per_sample_train")
    if counted:
        return float(counted)
    device = next(result.model.parameters()).device
    images, labels = next(iter(result.data.train_loader))
    flops = count_flops_per_sample(result.model, images.to(device), labels.to(device), nn.CrossEntropyLoss(),
                                   contextlib.nullcontext)
    return float(flops["train"])


def curve(result, flops_per_sample: float) -> list[dict]:
    """After every epoch of a run: its test accuracy, the learning rate the epoch ended at, and what it had spent
    so far (training FLOPs with the scoring pass, samples back-propagated, optimizer steps, and FLOPs against
    dense training of as many epochs)."""
    points, flops, samples, steps, seen = [], 0.0, 0, 0, 0
    for row in result.history:
        counted = row.get("training_flops")
        # Dense epochs count no FLOPs of their own: each trained sample costs one training step.
        flops += counted if counted is not None else flops_per_sample * row["samples_trained"]
        samples += row["samples_trained"]
        steps += row["optimizer_steps"]
        seen += row.get("scored_samples", row["samples_trained"])
        points.append({"epoch": row["epoch"], "test_acc": row["test_acc"], "lr": row["lr"], "training_flops": flops,
                       "samples_backpropagated": samples, "optimizer_steps": steps,
                       "compute_vs_dense": flops / (flops_per_sample * max(1, seen))})
    return points


def records(results: dict, seeds: list[int], base: TrainConfig, command: Optional[str] = None,
            out_dir=None) -> tuple[list[Record], dict]:
    """The runs of `measure` (variant -> one `RunResult` per seed, in the order of `seeds`) as records and
    extras."""
    found, extras = [], {}
    first = next(iter(results.values()))[0]
    environment = (provenance.read(first.out_dir) if first.out_dir is not None else None) or provenance.collect()
    for name, runs in results.items():
        curves = [curve(run, train_flops_per_sample(run)) for run in runs]
        summary = runs[0].summary
        common = dict(dataset=summary.get("dataset"), data_source=summary.get("data_source"),
                      train_images=summary.get("train_samples"), test_images=summary.get("test_samples"),
                      recipe_epochs=recipe_epochs(base), **provenance_fields(environment, command, out_dir))
        common["device"] = summary.get("device")   # the device the runs trained on
        # A compute level per epoch that every seed reached; the budget variant's one is its last epoch.
        levels = [None] if name == BUDGET else list(range(1, min(map(len, curves)) + 1))
        for level in levels:
            at = [points[-1] if level is None else points[level - 1] for points in curves]
            label = name if level is None else f"{name}, epoch {level}"
            found.append(Record(
                label=label, measured=FINAL_ACCURACY, unit=FRACTION, seeds=seeds,
                values=[point["test_acc"] for point in at], epochs=[point["epoch"] for point in at],
                optimizer_steps=[point["optimizer_steps"] for point in at],
                details={"variant": name, **({"budget_of": BUDGET_OF} if name == BUDGET else {}),
                         **{key: [point[key] for point in at] for key in POINT_KEYS}},
                **common))
        extras[name] = {"curves": [{"seed": seed, "points": points} for seed, points in zip(seeds, curves)]}
        if name not in ("dense", BUDGET):   # dense training selects every sample: the split's own mix
            extras[name]["class_mix"] = [{"seed": seed, "selected_per_class": [row["selected_per_class"]
                                                                               for row in run.history]}
                                         for seed, run in zip(seeds, runs)]
        scores = runs[0].extra.get("ast_scores")
        if scores is not None:
            extras[name][SCORE_STREAM] = stream_extra(scores, len(runs[0].data.train_loader))
    return found, extras


def chosen(shown: RecordSet) -> RecordSet:
    """The compute curves' records among `shown` (a chapter's records hold others beside them)."""
    found = [r for r in shown.records if r.measured == FINAL_ACCURACY and r.details.get("variant") in VARIANTS]
    return shown.select([(r.label, r.measured) for r in found])   # with the extras of their variants


def _level(found: Record) -> Optional[int]:
    """A record's compute level: its epoch on a curve, None for the budget variant's one point."""
    return None if found.details["variant"] == BUDGET else found.epochs[0]


def _at(shown: RecordSet, variant: str, level: Optional[int]) -> Record:
    return shown.get(variant if level is None else f"{variant}, epoch {level}")


def level_table(shown: RecordSet) -> pd.DataFrame:
    """Per variant and compute level (means over the seeds): epochs, optimizer steps, samples back-propagated,
    training FLOPs (the scoring pass included) and their ratio to dense training over the same images seen, and
    the test accuracy with its standard deviation and n."""
    rows = []
    for found in chosen(shown).records:
        mean = lambda key: sum(found.details[key]) / len(found.details[key])  # noqa: E731
        summary = found.summary
        rows.append({"variant": found.details["variant"], "epochs": sum(found.epochs) / len(found.epochs),
                     "optimizer steps": sum(found.optimizer_steps) / len(found.optimizer_steps),
                     "samples backpropagated": mean("samples_backpropagated"),
                     "training TFLOP": mean("training_flops") / 1e12,
                     "compute vs dense": mean("compute_vs_dense"), "test accuracy": summary.mean,
                     "std": math.nan if summary.std is None else summary.std, "seeds": summary.n})
    return pd.DataFrame(rows).set_index(["variant", "epochs"])


def answers(shown: RecordSet) -> list[tuple[str, str, Optional[int], stats.Comparison]]:
    """(ours, other, level, comparison) for each selection against its random twin (`TWINS`) at every level
    both reached, then dense training at AST's compute against AST's last level (level None)."""
    found = chosen(shown)
    variants = {r.details["variant"] for r in found.records}
    levels = {name: sorted(_level(r) for r in found.records if r.details["variant"] == name) for name in variants}
    pairs = []
    for ours, other in TWINS:
        if ours in variants and other in variants:
            for level in sorted(set(levels[ours]) & set(levels[other])):
                pairs.append((ours, other, level, stats.compare(_at(found, ours, level).values,
                                                                _at(found, other, level).values)))
    if BUDGET in variants and BUDGET_OF in variants:
        last = levels[BUDGET_OF][-1]
        pairs.append((BUDGET, f"{BUDGET_OF}, epoch {last}", None,
                      stats.compare(_at(found, BUDGET, None).values, _at(found, BUDGET_OF, last).values)))
    return pairs


def answers_table(shown: RecordSet) -> pd.DataFrame:
    """`answers` as a table: both means, the difference with its 95 % interval, n and the verdict."""
    rows = []
    for ours, other, level, comparison in answers(shown):
        rows.append({"ours": ours, "against": other, "epoch": "budget" if level is None else level,
                     "ours mean": comparison.ours.mean, "against mean": comparison.other.mean,
                     "difference": comparison.difference,
                     "95 % CI": "—" if comparison.low is None else f"{comparison.low:+.4f} to {comparison.high:+.4f}",
                     "n": f"{comparison.ours.n} and {comparison.other.n}", "verdict": comparison.verdict})
    return pd.DataFrame(rows).set_index(["ours", "against", "epoch"])


def answer_sentence(shown: RecordSet, ours: str, other: str, level: Optional[int] = None) -> str:
    """One answer of `answers` in words (`stats.Comparison.sentence`); `level` None with `ours` the budget
    variant."""
    for mine, theirs, at, comparison in answers(shown):
        if mine == ours and at == level and (theirs == other or theirs.startswith(other + ", epoch")):
            where = "" if level is None else f" after epoch {level}"
            return comparison.sentence(ours, theirs, what=f"test accuracy{where}", digits=4)
    raise KeyError(f"no comparison of {ours!r} against {other!r} at level {level!r} in the records")


def class_mix_table(shown: RecordSet, class_names: Sequence[str]) -> pd.DataFrame:
    """Per selecting variant: each class's share (in %) of the samples it selected over every epoch and seed,
    with the even share 100 / classes in a first row to read them against."""
    shares = class_shares({name: extra for name, extra in shown.extras.items() if name in VARIANTS})
    rows = {"even share": [100.0 / len(class_names)] * len(class_names)}
    rows.update({name: [100.0 * share for share in found] for name, found in shares.items()})
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(class_names))


def points(shown: RecordSet) -> pd.DataFrame:
    """The curves' mean points, one row per variant and level: training FLOPs, samples back-propagated, test
    accuracy mean and standard deviation (what the chapter's figure draws)."""
    rows = []
    for found in chosen(shown).records:
        summary = found.summary
        rows.append({"variant": found.details["variant"], "level": _level(found),
                     "training_flops": sum(found.details["training_flops"]) / found.n,
                     "samples_backpropagated": sum(found.details["samples_backpropagated"]) / found.n,
                     "test_acc": summary.mean, "std": 0.0 if summary.std is None else summary.std})
    return pd.DataFrame(rows)


def class_shares(extras: dict) -> dict[str, list[float]]:
    """Per selecting variant: each class's share of the samples it selected, over every epoch and seed."""
    shares = {}
    for name, found in extras.items():
        if "class_mix" not in found:
            continue
        counts = torch.tensor([epoch for run in found["class_mix"] for epoch in run["selected_per_class"]],
                              dtype=torch.float64).sum(0)
        shares[name] = (counts / counts.sum().clamp_min(1)).tolist()
    return shares


def _check(base: TrainConfig, variants: Sequence[str]) -> list[str]:
    unknown = [name for name in variants if name not in VARIANTS]
    if unknown or not variants:
        raise UsageError(f"unknown selection variant(s) {unknown or '(none given)'}; choose from: "
                         f"{', '.join(VARIANTS)}")
    if BUDGET in variants and BUDGET_OF not in variants:
        raise UsageError(f"the variant {BUDGET!r} is given the training FLOPs of {BUDGET_OF!r}; add {BUDGET_OF!r} "
                         f"to the variants")
    if base.train_subset:
        raise UsageError(f"the selection curves train on the full training split, but train_subset="
                         f"{base.train_subset}; set train_subset=0 (choose a smaller dataset for a smaller run)")
    return [name for name in VARIANTS if name in variants]   # the budget after the run it depends on


def _folder(out_dir, seed: int, name: str) -> Optional[Path]:
    if out_dir is None:
        return None
    slug = "".join(c if c.isalnum() else "_" for c in name.lower().replace("'", ""))
    return Path(out_dir) / f"seed{seed}" / slug
