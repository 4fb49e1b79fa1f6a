"""The published claims the book is held to, the criteria that judge them, and their verdicts.

`CLAIMS` maps each chapter of `_toc.yml` to its claims: what is claimed, the figure as published, who publishes
it, the records that measure it (by `label` and `measured`, see `cifar_lab.book.record`), the criterion, and the
conditions under which a measurement is comparable with it. `judge(claim, records, source)` gives the verdict
from typed records only.

The criterion is fixed before any run, from the source, and never depends on our own spread:

- a point figure admits the means within half a unit of its last printed digit ("0.8833": 0.88325 to 0.88335;
  "61.2 %": 61.15 to 61.25 %); a figure the source marks as approximate ("~70 %", "~320k") is taken at its last
  non-zero digit ("~70 %": 65 to 75 %); a published range ("93-95 %") admits the means inside it. A point with
  its tolerance and a range are the same thing, a band [low, high], judged by one rule on the mean over seeds
  and its 95 % Student-t interval (`stats.summarize`):
  **holds** when the mean lies inside the band and the interval's half-width is at most half the band's width
  (the tolerance of a point); **does not hold** when the whole interval lies outside the band; **inconclusive**
  otherwise, with the number of seeds that would narrow the interval enough (`stats.seeds_for_half_width`).
  A measurement of one value (a parameter count, a file size, one latency figure) has no interval and is
  judged as it stands; every accuracy claim needs 3 seeds before it is judged at all.
- "X at least as good as Y" between two variants goes through `stats.compare` (Welch): **holds** when X is
  better (the interval of the difference excludes 0 on the good side), **does not hold** when X is worse,
  **inconclusive: no clear difference** otherwise.

A claim is judged on the statistic its source published (the mean over seeds of an accuracy; the mean latency
for "4-6 ms (mean)"); other statistics are shown beside it, never judged. The conditions read the records' own
fields (dataset, training images, the fewest epochs any seed trained, the number of seeds, the device); a field
a run left empty is "not comparable: unknown <field>". A verdict from a committed record (`source="committed"`)
says so, with that record's commit and date, and is never attributed to the run at hand.

`SANITY_CHECKS` hold by construction and are shown apart, never as verdicts; `NOT_JUDGED` lists every other
figure of the published documents with the reason it is not judged. The Fashion-MNIST figures come from
`presets.fmnist.PUBLISHED`, their one home.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Callable, Optional, Sequence, Union

from ..errors import UsageError
from ..presets import fmnist
from . import stats
from .record import (ACTIVATION_RATE, BEST_ACCURACY, CHECKPOINT_FILE, COMPUTE_VS_DENSE, FINAL_ACCURACY,
                     LATENCY_MEAN, LATENCY_MEDIAN, PARAMETERS, TRAINING_TIME, WEIGHTS_FILE, Record, find)

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
NOT_COMPARABLE = "not comparable"   # every verdict that says why a measurement cannot be held to a figure starts so
NOT_MEASURED = "not measured"
CHECK_OK, CHECK_FAILED = "ok", "failed"   # sanity checks hold by construction: their results are not verdicts
RUN, COMMITTED = "run", "committed"       # where the judged records come from

# What the records of the sanity checks measure (`Record.measured`; the claims' own names live in `record`).
TRAINING_IMAGES = "training images"
CLASSES = "classes"
BYTES_PER_STEP = "bytes all-reduced per step"


# --- the published documents ---------------------------------------------------------------------------------

DOC_AST = "CIFAR-10 vs ImageNet-100: What Changes? (the AST migration note)"
DOC_IMAGENET1K = "ImageNet-1k Migration Documentation"
DOC_CIFAR100 = "CIFAR-100 ResNet-18 Training (README)"
DOC_RESNET18 = "J3-13 Reproducibility Sheet - ResNet-18 CIFAR-10"
DOC_NAIVENET = "CIFAR-10/100 Classifier (the NaiveNet README)"
DOCUMENTS = (DOC_AST, DOC_IMAGENET1K, DOC_CIFAR100, DOC_RESNET18, DOC_NAIVENET)
TORCHVISION_R50 = "torchvision ResNet50_Weights.IMAGENET1K_V1 (its reference recipe: 90 epochs of SGD)"


# --- what a claim reads ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Quantity:
    """Per-seed values a claim judges: one record's values, or a formula of several records' values paired by
    seed (`formula(a, b, ...)` per seed; the records must have run the same seeds)."""
    reads: tuple[tuple[str, str], ...]                 # (label, measured) of each record read
    formula: Optional[Callable[..., float]] = None    # None: the first record's values as they are
    text: str = ""

    def describe(self) -> str:
        return self.text or " and ".join(f"{label}: {measured}" for label, measured in self.reads)


def read(label: str, measured: str) -> Quantity:
    return Quantity(((label, measured),))


def ratio(numerator: str, denominator: str, measured: str) -> Quantity:
    """`numerator` / `denominator`, seed by seed (a speed-up is the dense run's time over the AST run's)."""
    return Quantity(((numerator, measured), (denominator, measured)), lambda a, b: a / b,
                    f"{numerator} / {denominator}: {measured}, per seed")


def one_minus(label: str, measured: str) -> Quantity:
    return Quantity(((label, measured),), lambda a: 1.0 - a, f"1 - {label}: {measured}, per seed")


def note_energy(label: str) -> Quantity:
    """The AST note's energy savings: 1.0 per active sample, 0.01 per skipped one, against 1.0 per sample, i.e.
    0.99 x (1 - activation rate)."""
    return Quantity(((label, ACTIVATION_RATE),), lambda rate: 1.0 - (rate + 0.01 * (1.0 - rate)),
                    f"0.99 x (1 - {label}: {ACTIVATION_RATE})")


class Unmeasurable(Exception):
    """Why a quantity has no values from the records at hand (the verdict: not measured, or not comparable)."""

    def __init__(self, verdict: str):
        super().__init__(verdict)
        self.verdict = verdict


def records_read(quantity: Quantity, records: Sequence[Record]) -> list[Record]:
    found = []
    for label, measured in quantity.reads:
        record = find(records, label, measured)
        if record is None:
            raise Unmeasurable(NOT_MEASURED)
        found.append(record)
    return found


def values_of(quantity: Quantity, found: Sequence[Record]) -> tuple[float, ...]:
    """The per-seed values of `quantity` from its records (`records_read`), in the first record's seed order."""
    if quantity.formula is None:
        return found[0].values
    by_seed = [dict(zip(record.seeds, record.values)) for record in found]
    if any(set(seeds) != set(by_seed[0]) for seeds in by_seed[1:]):
        raise Unmeasurable(f"{NOT_COMPARABLE}: {' and '.join(r.label for r in found)} ran different seeds "
                           f"({'; '.join(str(list(r.seeds)) for r in found)}), so they cannot be paired")
    try:
        return tuple(quantity.formula(*(seeds[seed] for seeds in by_seed)) for seed in found[0].seeds)
    except ZeroDivisionError:
        raise Unmeasurable(f"{NOT_COMPARABLE}: a zero divisor in {quantity.describe()}") from None


# --- conditions: when a record can be held to a published figure ----------------------------------------------
# Each reads the record's own fields and returns None, or why the record is not comparable.

def _unknown(field: str) -> str:
    return f"{NOT_COMPARABLE}: unknown {field}"


@dataclass(frozen=True)
class OnDataset:
    """Measured on the published dataset (the record's `dataset`: "synthetic" in smoke mode)."""
    name: str

    def __call__(self, record: Record) -> Optional[str]:
        if record.dataset is None:
            return _unknown("dataset")
        return None if record.dataset == self.name else f"{NOT_COMPARABLE}: dataset {record.dataset}, not {self.name}"

    def text(self) -> str:
        return f"on {self.name}"


@dataclass(frozen=True)
class TrainImages:
    """Trained on at least `at_least` images (the recipe's training split; a subset is another recipe)."""
    at_least: int
    why: str = "the whole training split"

    def __call__(self, record: Record) -> Optional[str]:
        if record.train_images is None:
            return _unknown("train_images")
        if record.train_images >= self.at_least:
            return None
        return f"{NOT_COMPARABLE}: {record.train_images:,} of {self.at_least:,} training images"

    def text(self) -> str:
        return f"{self.at_least:,} training images ({self.why})"


@dataclass(frozen=True)
class Epochs:
    """Every seed trained at least the recipe's `at_least` epochs: the fewest epochs of any seed counts."""
    at_least: int

    def __call__(self, record: Record) -> Optional[str]:
        fewest = record.fewest_epochs
        if fewest is None:
            return _unknown("epochs")
        return None if fewest >= self.at_least else f"{NOT_COMPARABLE}: {fewest:,} of {self.at_least:,} epochs"

    def text(self) -> str:
        return f"{self.at_least:,} epochs on every seed"


@dataclass(frozen=True)
class PresetEpochs:
    """As `Epochs`, with the epochs of a preset's recipe (for a figure whose own run length is not stated)."""
    preset: str

    def __call__(self, record: Record) -> Optional[str]:
        from .. import presets

        try:
            wanted = presets.resolve(self.preset).epochs
        except UsageError:
            return f"{NOT_COMPARABLE}: no preset {self.preset}"
        return Epochs(wanted)(record)

    def text(self) -> str:
        return f"the {self.preset} preset's epochs on every seed"


@dataclass(frozen=True)
class Seeds:
    """At least `at_least` seeds: an accuracy is judged on their mean and its interval."""
    at_least: int

    def __call__(self, record: Record) -> Optional[str]:
        return None if record.n >= self.at_least else f"{NOT_COMPARABLE}: {record.n} of {self.at_least} seeds"

    def text(self) -> str:
        return f"{self.at_least} seeds"


def is_gpu(device) -> bool:
    """A device name as `provenance.device_name` writes it: a CUDA device's name, never "cpu ..." or Apple's
    MPS."""
    text = str(device or "").strip().lower()
    return bool(text) and not text.startswith("cpu") and text not in ("mps", "apple mps", "none", "?")


@dataclass(frozen=True)
class OnGPU:
    """Measured on a CUDA GPU: the device the record names, not the GPUs the judging machine has."""

    def __call__(self, record: Record) -> Optional[str]:
        if record.device is None:
            return _unknown("device")
        return None if is_gpu(record.device) else f"{NOT_COMPARABLE}: measured on {record.device}, not a GPU"

    def text(self) -> str:
        return "measured on a GPU"


Condition = Union[OnDataset, TrainImages, Epochs, PresetEpochs, Seeds, OnGPU]


def why_not_comparable(needs: Sequence[Condition], records: Sequence[Record]) -> Optional[str]:
    return next((why for record in records for need in needs if (why := need(record))), None)


# --- criteria ----------------------------------------------------------------------------------------------------

def _plain(number: Decimal) -> str:
    """A Decimal as written, without an exponent ("0.00005", "11.165")."""
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True)
class Band:
    """The means a published figure admits, [low, high] (in the measured unit); `text` says where the ends come
    from, in the published unit. See the module docstring for the rule."""
    low: float
    high: float
    text: str

    def verdict(self, summary: stats.Summary, values: Sequence[float]) -> str:
        inside = self.low <= summary.mean <= self.high
        if summary.low is None:   # one value: judged as it stands
            return HOLDS if inside else FAILS
        width = (self.high - self.low) / 2
        if inside and summary.half_width <= width:
            return HOLDS
        if summary.high < self.low or summary.low > self.high:
            return FAILS
        # The interval straddles an end of the band (or is wider than the band): more seeds would narrow it.
        target = width if inside else min(abs(summary.mean - self.low), abs(summary.mean - self.high))
        needed = stats.seeds_for_half_width(values, target) if target > 0 else None
        more = (f"about {needed} seeds would narrow it enough" if needed else
                "more than 1,000 seeds would be needed to narrow it enough")
        why = "is wider than the band allows" if inside else "reaches into the band"
        return f"{INCONCLUSIVE}: the {summary.level:.0%} interval {why} ({summary.n} seeds); {more}"


def point(printed: str, unit: str = "", scale: str = "1", approximate: bool = False) -> Band:
    """A point figure as printed (`printed`, in the published unit; `scale` converts it to the measured unit:
    "0.01" for a percentage of a fraction), admitting half a unit of its last printed digit, or of its last
    non-zero digit when the source marks the figure as approximate."""
    figure = Decimal(printed)
    exponent = (figure.normalize() if approximate else figure).as_tuple().exponent
    tolerance = Decimal(1).scaleb(exponent) / 2
    low, high = figure - tolerance, figure + tolerance
    rule = "its last non-zero digit: the source says approximately" if approximate else "its last printed digit"
    suffix = f" {unit}" if unit else ""
    return Band(float(low * Decimal(scale)), float(high * Decimal(scale)),
                f"{printed}{suffix} ± {_plain(tolerance)} (half a unit of {rule}): {_plain(low)} to "
                f"{_plain(high)}{suffix}")


def span(low: str, high: str, unit: str = "", scale: str = "1") -> Band:
    """A published range, its ends as printed."""
    suffix = f" {unit}" if unit else ""
    return Band(float(Decimal(low) * Decimal(scale)), float(Decimal(high) * Decimal(scale)),
                f"the published range: {low} to {high}{suffix}")


@dataclass(frozen=True)
class AtLeastAsGood:
    """The claim's quantity against `other`'s, through `stats.compare` (ours minus other)."""
    other: Quantity
    higher_is_better: bool = True

    @property
    def text(self) -> str:
        return (f"better than {self.other.describe()}: Welch's {stats.LEVEL:.0%} interval of the difference "
                f"excludes 0 (holds), lies below 0 (does not hold), or includes 0 (no clear difference)")


Criterion = Union[Band, AtLeastAsGood]


# --- the claims --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Beside:
    """A value shown beside a verdict, never judged."""
    text: str
    quantity: Quantity


@dataclass(frozen=True)
class Claim:
    id: str                     # stable name: "<chapter>-<what>"
    claim: str                  # what is claimed, in words
    expected: str               # the published figure, as published
    source: str                 # who publishes it
    quantity: Quantity          # what measures it
    criterion: Criterion
    needs: tuple = ()           # conditions every record read must meet
    factor: float = 1.0         # measured value x factor is shown (fractions as %)
    unit: str = ""
    digits: int = 2             # decimals shown
    beside: tuple = ()          # Beside items
    notes: str = ""             # what differs from the published recipe, what the source says of itself

    def criterion_text(self) -> str:
        return self.criterion.text

    def needs_text(self) -> str:
        return ", ".join(need.text() for need in self.needs) or "always"

    def show(self, summary: stats.Summary) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if summary.n == 1:
            return f"{summary.mean * self.factor:,.{self.digits}f}{unit} (one measurement)"
        return summary.text(self.digits, self.factor, unit)


def accuracy(id, claim, expected, source, label, band, needs, notes="", percent=True) -> Claim:
    """The final epoch's test accuracy of `label`, mean over seeds, with the best epoch's beside."""
    return Claim(id, claim, expected, source, read(label, FINAL_ACCURACY), band, tuple(needs),
                 100.0 if percent else 1.0, "%" if percent else "", 2 if percent else 4,
                 (Beside("best epoch (chosen on the test split, not judged)", read(label, BEST_ACCURACY)),), notes)


def percent_point(printed: str, approximate: bool = False) -> Band:
    return point(printed, "%", "0.01", approximate)


def percent_span(low: str, high: str) -> Band:
    return span(low, high, "%", "0.01")


CIFAR_TRAIN = TrainImages(50_000)
IMAGENET100_TRAIN = TrainImages(73_200, "100 classes of at least 732 images, the fewest of any class of "
                                        "ImageNet-1k's training split")
IMAGENET1K_TRAIN = TrainImages(1_281_167)
FMNIST_TRAIN = TrainImages(60_000)


def cifar_accuracy_needs(dataset: str, epochs: Union[int, str]) -> tuple:
    length = Epochs(epochs) if isinstance(epochs, int) else PresetEpochs(epochs)
    return (OnDataset(dataset), CIFAR_TRAIN, length, Seeds(3))


AST_NEEDS = cifar_accuracy_needs("cifar10", 40)
IN100_NEEDS = (OnDataset("imagenet100"), IMAGENET100_TRAIN, Epochs(40), Seeds(3))
DENSE, AST = "dense", "AST packed"
IN100, IN100_AST = "imagenet100-resnet50", "imagenet100-resnet50-ast"


def fmnist_claim(preset: str, model: str) -> Claim:
    """A row of the Fashion-MNIST README's benchmark table, read from `presets.fmnist.PUBLISHED`."""
    entry = fmnist.PUBLISHED[preset]
    length = Epochs(entry["epochs"]) if entry.get("epochs") else PresetEpochs(preset)
    return accuracy(f"02-{preset}", f"{model} top-1 on Fashion-MNIST (`{preset}`)",
                    f"{entry['test_acc']} ({entry['row']})",
                    entry["source"], preset, point(entry["test_acc"]),
                    (OnDataset("fashion_mnist"), FMNIST_TRAIN, length, Seeds(3)), entry["differs"], percent=False)


CLAIMS: dict[str, list[Claim]] = {
    "01": [],
    "02": [
        accuracy("02-cifar10-top1", "ResNet-18 top-1 on CIFAR-10, final epoch of 200", "93-95 %", DOC_RESNET18,
                 "cifar10-resnet18", percent_span("93", "95"), cifar_accuracy_needs("cifar10", 200),
                 "the sheet's own pass mark (>= 85 %) is looser than its range, so the range is judged"),
        Claim("02-latency", "batch-1 fp32 latency", "4-6 ms (mean, on a GPU)", DOC_RESNET18,
              read("cifar10-resnet18", LATENCY_MEAN), span("4", "6", "ms"), (OnGPU(),), unit="ms",
              beside=(Beside("median (not judged: the sheet gives the mean)", read("cifar10-resnet18",
                                                                                     LATENCY_MEDIAN)),),
              notes="the sheet's pass mark (< 10 ms) is looser than its range; the mean is judged, as published"),
        Claim("02-parameters", "ResNet-18 parameters (CIFAR stem, 10 classes)", "11.17M", DOC_RESNET18,
              read("cifar10-resnet18", PARAMETERS), point("11.17", "M", "1e6"), factor=1e-6, unit="M", digits=3),
        Claim("02-weights", "weights file (float32 state_dict)", "42-45 MB", DOC_RESNET18,
              read("cifar10-resnet18", WEIGHTS_FILE), span("42", "45", "MB"), unit="MB", digits=1,
              beside=(Beside("full training checkpoint (MB)", read("cifar10-resnet18", CHECKPOINT_FILE)),)),
        fmnist_claim("fmnist-resnet18", "ResNet18"),
        fmnist_claim("fmnist-tf-convnet", "2 Conv+pooling (TensorFlow tutorial)"),
        fmnist_claim("fmnist-mlp", "MLP 256-128-100"),
    ],
    "03": [
        accuracy("03-dense-top1", "SimpleCNN dense top-1 after 40 epochs", "60%", DOC_AST, DENSE,
                 percent_point("60"), AST_NEEDS),
        accuracy("03-ast-top1", "AST top-1 after 40 epochs (packed, the book's AST)", "61.2%", DOC_AST, AST,
                 percent_point("61.2"), AST_NEEDS),
        Claim("03-ast-vs-dense", "AST top-1 against dense top-1, same epochs and seeds",
              "AST >= dense (61.2 % against 60 %)", DOC_AST, read(AST, FINAL_ACCURACY),
              AtLeastAsGood(read(DENSE, FINAL_ACCURACY)), AST_NEEDS, 100.0, "%"),
        Claim("03-activation", "AST activation rate", "10.4%", DOC_AST, read(AST, ACTIVATION_RATE),
              percent_point("10.4"), AST_NEEDS, 100.0, "%"),
        Claim("03-energy", "AST energy savings, from the measured compute (FLOPs, scoring pass included)", "89.6%",
              DOC_AST, one_minus(AST, COMPUTE_VS_DENSE), percent_point("89.6"), AST_NEEDS, 100.0, "%",
              beside=(Beside("the note's formula, 0.99 x (1 - activation)", note_energy(AST)),),
              notes="the note computes 1 - (active + 0.01 x skipped) / all, which leaves out the scoring pass "
                    "over every sample; that value is shown beside"),
        Claim("03-speedup", "AST wall-clock speed-up over the same run's dense training", "11.5×", DOC_AST,
              ratio(DENSE, AST, TRAINING_TIME), point("11.5", "×"), AST_NEEDS + (OnGPU(),), unit="×",
              notes="the note's 11.5× divides a hard-coded 120-minute baseline by 10.5 minutes; here both runs "
                    "are measured in the same notebook, paired by seed"),
    ],
    "03b": [],
    "04": [
        accuracy("04-cifar100-top1", "ResNet-18 top-1 on CIFAR-100, final epoch of 100",
                 "Epoch 100: ~73-75% (target 73 %)", DOC_CIFAR100, "cifar100-resnet18", percent_span("73", "75"),
                 cifar_accuracy_needs("cifar100", 100),
                 "weiaicunzai/pytorch-cifar100 publishes 75.61 % for ResNet-18 with a 200-epoch recipe: another "
                 "recipe, not judged"),
        Claim("04-parameters", "ResNet-18 parameters (100 classes)", "~11 million", DOC_CIFAR100,
              read("cifar100-resnet18", PARAMETERS), point("11", "M", "1e6", approximate=True), factor=1e-6,
              unit="M", digits=3),
    ],
    "05": [
        accuracy("05-naivenet-top1", "NaiveNet top-1 on CIFAR-100 (128 px)", "~70%", DOC_NAIVENET,
                 "cifar100-naivenet", percent_point("70", approximate=True),
                 cifar_accuracy_needs("cifar100", "cifar100-naivenet")),
        Claim("05-naivenet-parameters", "NaiveNet parameters (100 classes)", "~320k", DOC_NAIVENET,
              read("cifar100-naivenet", PARAMETERS), point("320", "k", "1e3", approximate=True), factor=1e-3,
              unit="k", digits=1),
    ],
    "06": [
        accuracy("06-resnet50-top1", "ResNet-50 top-1 on ImageNet-100 (pretrained, dense, 40 epochs)",
                 "75-80% (predicted)", DOC_AST, IN100, percent_span("75", "80"), IN100_NEEDS),
        accuracy("06-resnet50-ast-top1", "ResNet-50 + AST top-1 on ImageNet-100", "75-80% (predicted)", DOC_AST,
                 IN100_AST, percent_span("75", "80"), IN100_NEEDS),
        Claim("06-activation", "AST activation rate on ImageNet-100", "9-12% (predicted)", DOC_AST,
              read(IN100_AST, ACTIVATION_RATE), percent_span("9", "12"), IN100_NEEDS, 100.0, "%"),
        Claim("06-energy", "AST energy savings on ImageNet-100, from the measured compute of the whole run",
              "88-91% (predicted)", DOC_AST, one_minus(IN100_AST, COMPUTE_VS_DENSE), percent_span("88", "91"),
              IN100_NEEDS, 100.0, "%",
              beside=(Beside("the note's formula, 0.99 x (1 - activation)", note_energy(IN100_AST)),)),
        Claim("06-speedup", "AST speed-up on ImageNet-100 over the same run's dense training", "8-12× (predicted)",
              DOC_AST, ratio(IN100, IN100_AST, TRAINING_TIME), span("8", "12", "×"), IN100_NEEDS + (OnGPU(),),
              unit="×"),
    ],
    "07": [
        accuracy("07-resnet50-top1", "ResNet-50 top-1 on ImageNet-1k after 90 epochs", "76.13 %", TORCHVISION_R50,
                 "imagenet1k-resnet50", percent_point("76.13"),
                 (OnDataset("imagenet1k"), IMAGENET1K_TRAIN, Epochs(90), Seeds(3)),
                 "the preset follows the migration document's recipe (AdamW, OneCycle, 4-step accumulation) for "
                 "30 epochs, torchvision's reference 90 epochs of SGD with step decay: at the preset's 30 epochs "
                 "the verdict would say 'not comparable: 30 of 90 epochs', so cifar-lab reproduce --scale full "
                 "runs it for 90 epochs (chapters.FULL_PARAMETERS): the length matches, the optimizer does not"),
    ],
    "08": [],
    "09": [
        Claim("09-latency", "ResNet-18 batch-1 fp32 latency, eager (chapter 9's reference route)",
              "4-6 ms (mean, on a GPU)", DOC_RESNET18, read("cifar10-resnet18 eager", LATENCY_MEAN),
              span("4", "6", "ms"), (OnGPU(),), unit="ms",
              beside=(Beside("median (not judged: the sheet gives the mean)",
                             read("cifar10-resnet18 eager", LATENCY_MEDIAN)),),
              notes="the sheet's pass mark (< 10 ms) is looser than its range; the mean is judged, as published"),
    ],
}


# --- verdicts ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    """A claim judged against records: what was measured, how it is shown, and the verdict, with where the
    records came from (`record_source`: "run" or "committed") and their provenance."""
    id: str
    claim: str
    expected: str
    source: str
    criterion: str
    quantity: str
    verdict: str
    record_source: str
    attribution: str = ""        # "this run (commit ...)" or "from the committed record of commit X (date)"
    measured: Optional[float] = None     # the mean judged
    low: Optional[float] = None          # its 95 % interval
    high: Optional[float] = None
    n: int = 0
    shown: str = "-"
    beside: str = ""
    notes: str = ""
    commit: Optional[str] = None
    date: Optional[str] = None
    device: Optional[str] = None

    @property
    def kind(self) -> str:
        """The verdict without its reason: holds, does not hold, inconclusive, not comparable, not measured."""
        return self.verdict.split(":", 1)[0]

    def to_dict(self) -> dict:
        return {**asdict(self), "kind": self.kind}


def attribution(record: Record, source: str) -> str:
    if source == COMMITTED:
        return f"from the committed record of commit {record.short_commit} ({(record.date or 'date unknown')[:10]})"
    return f"this run (commit {record.short_commit}, {record.device or 'device unknown'})"


def typed(records) -> list[Record]:
    """`records` as a list of `Record`s (one `Record` is accepted); anything else is refused."""
    found = [records] if isinstance(records, Record) else list(records or [])
    wrong = sorted({type(item).__name__ for item in found if not isinstance(item, Record)})
    if wrong:
        raise UsageError(f"claims are judged on typed records (cifar_lab.book.record.Record), not {', '.join(wrong)}; "
                         f"read the chapter's records.json with record.load")
    return found


def _beside(claim: Claim, records: Sequence[Record]) -> str:
    shown = []
    for item in claim.beside:
        try:
            values = values_of(item.quantity, records_read(item.quantity, records))
        except Unmeasurable:
            continue
        shown.append(f"{item.text}: {claim.show(stats.summarize(values))}")
    return "; ".join(shown)


def judge(claim: Claim, records, source: str = RUN) -> Verdict:
    """`claim` against the records of its chapter (`records`: `Record`s from one records.json; `source`: RUN
    for the records the judging command produced, COMMITTED for a committed record)."""
    if source not in (RUN, COMMITTED):
        raise UsageError(f"unknown record source {source!r}; use {RUN!r} or {COMMITTED!r}")
    records = typed(records)
    base = dict(id=claim.id, claim=claim.claim, expected=claim.expected, source=claim.source,
                criterion=claim.criterion_text(), quantity=claim.quantity.describe(), record_source=source,
                notes=claim.notes)
    other = claim.criterion.other if isinstance(claim.criterion, AtLeastAsGood) else None
    try:
        found = records_read(claim.quantity, records)
        found_other = records_read(other, records) if other is not None else []
    except Unmeasurable as missing:
        return Verdict(verdict=missing.verdict, **base)
    first = found[0]
    base.update(attribution=attribution(first, source), commit=first.commit, date=first.date, device=first.device,
                beside=_beside(claim, records))
    try:
        values = values_of(claim.quantity, found)
        other_values = values_of(other, found_other) if other is not None else None
    except Unmeasurable as unpaired:
        return Verdict(verdict=unpaired.verdict, **base)
    summary = stats.summarize(values)
    base.update(measured=summary.mean, low=summary.low, high=summary.high, n=summary.n, shown=claim.show(summary))
    reason = why_not_comparable(claim.needs, found + found_other)
    if reason is not None:
        return Verdict(verdict=reason, **base)
    if other is None:
        return Verdict(verdict=claim.criterion.verdict(summary, values), **base)
    comparison = stats.compare(values, other_values, claim.criterion.higher_is_better)
    (ours, what), (theirs, _) = claim.quantity.reads[0], other.reads[0]
    base["shown"] = comparison.sentence(ours, theirs, what, claim.digits, claim.factor,
                                        f" {claim.unit}" if claim.unit else "")
    return Verdict(verdict=compared(comparison, values, other_values), **base)


def compared(comparison: stats.Comparison, values, other_values) -> str:
    """The verdict of "ours at least as good as other" from `stats.compare`'s word: better holds, worse does
    not hold, no clear difference is inconclusive (with the seeds per side that would tell them apart, if the
    difference stayed what it is)."""
    if comparison.verdict == stats.BETTER:
        return HOLDS
    if comparison.verdict == stats.WORSE:
        return FAILS
    if comparison.low is None:
        return f"{INCONCLUSIVE}: {stats.NO_CLEAR} ({stats.ONE_SEED})"
    needed = stats.seeds_for_difference(values, other_values, abs(comparison.difference))
    more = (f"about {needed} seeds on each side would tell" if needed else
            "more than 1,000 seeds on each side would be needed to tell")
    return f"{INCONCLUSIVE}: {stats.NO_CLEAR}; {more}"


# --- sanity checks -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Limits:
    """The values a sanity check accepts: [low, high], the upper end excluded when `below`."""
    low: float = -math.inf
    high: float = math.inf
    below: bool = False

    def admits(self, value: float) -> bool:
        return self.low <= value and (value < self.high if self.below else value <= self.high)


@dataclass(frozen=True)
class Check:
    """A sanity check: it holds by construction (or by the dataset's definition), so it shows that the
    pipeline did what it says, and it is never a verdict on a published figure."""
    check: str
    why_not_a_verdict: str
    quantity: Quantity
    limits: Limits
    needs: tuple = ()
    factor: float = 1.0
    unit: str = ""


SANITY_CHECKS: dict[str, list[Check]] = {
    "01": [
        Check("CIFAR-10 has 50,000 training images", "the dataset's definition (Krizhevsky 2009); chapter 1 "
              "verifies the archive's MD5", read("cifar10", TRAINING_IMAGES), Limits(50_000, 50_000),
              needs=(OnDataset("cifar10"),)),
        Check("10 classes", "synthetic data has 10 classes too: it holds by construction", read("cifar10", CLASSES),
              Limits(10, 10)),
    ],
    "02": [
        Check("the trained Fashion-MNIST SimpleCNN beats human performance (0.835)", "context, not a reproduction: "
              "the README's crowd-sourced human accuracy on 1,000 test images (3 labels per image, majority)",
              read("fmnist-simplecnn", FINAL_ACCURACY), Limits(low=0.835), needs=(OnDataset("fashion_mnist"),)),
    ],
    "08": [
        Check("bytes all-reduced per step, post-local SGD over DDP (Lin et al. 2020)", "parameters averaged every H "
              "steps instead of gradients every step: 1/H by construction",
              ratio("post-local SGD", "DDP", BYTES_PER_STEP), Limits(high=1.0, below=True)),
        Check("AST activation rate with 2 processes, one global threshold (last epoch)", "the controller's own "
              "target (10 %, ± 2 points); no source published this figure", read("AST, 2 processes",
                                                                                  ACTIVATION_RATE),
              Limits(0.08, 0.12), factor=100.0, unit="%"),
    ],
}


def check(item: Check, records) -> dict:
    """One sanity check against a chapter's records: ok, failed, or why it was not run."""
    row = {"check": item.check, "why_not_a_verdict": item.why_not_a_verdict, "quantity": item.quantity.describe(),
           "shown": "-", "result": NOT_MEASURED}
    records = typed(records)
    try:
        found = records_read(item.quantity, records)
        values = values_of(item.quantity, found)
    except Unmeasurable as missing:
        return {**row, "result": missing.verdict}
    mean = stats.summarize(values).mean
    reason = why_not_comparable(item.needs, found)
    row.update(shown=f"{mean * item.factor:,.4g} {item.unit}".strip(),
               result=reason or (CHECK_OK if item.limits.admits(mean) else CHECK_FAILED))
    return row


def claims_table(chapter_id: str, records, source: str = RUN):
    """A chapter's verdicts as its page shows them: the claims of `CLAIMS[chapter_id]` that read at least one of
    `records` (so that a section on one dataset shows its own claims), each judged (a DataFrame indexed by claim:
    expected, source, criterion, measured, shown beside, verdict)."""
    import pandas as pd

    if chapter_id not in CLAIMS:
        raise UsageError(f"no chapter {chapter_id!r} in CLAIMS; the chapters are {', '.join(CLAIMS)}")
    records = typed(records)
    present = {(record.label, record.measured) for record in records}
    rows = [judge(claim, records, source).to_dict() for claim in CLAIMS[chapter_id]
            if present & set(claim.quantity.reads)]
    columns = ["claim", "expected", "source", "criterion", "shown", "beside", "verdict"]
    table = pd.DataFrame(rows, columns=list(rows[0]) if rows else columns)[columns]
    return table.rename(columns={"shown": "measured", "beside": "shown beside (not judged)"}).set_index("claim")


# --- the figures that are not judged ------------------------------------------------------------------------------

@dataclass(frozen=True)
class NotJudged:
    document: str   # the published document
    quote: str      # the figure as it stands there
    reason: str     # why no claim holds a measurement to it


NOT_JUDGED: list[NotJudged] = [
    NotJudged(DOC_AST, "Parameters ~0.1M (SimpleCNN)", "its own layers (3×3 convolutions of 32/64/128 channels, "
              "2048→256→10) have 620,362 parameters; the book builds those layers"),
    NotJudged(DOC_AST, "Parameters ~23.5M (ResNet50)", "ResNet-50 without its head has 23.5 M; with the 100-way "
              "head the model has 23.7 M (chapter 6 prints the count)"),
    NotJudged(DOC_AST, "Training Time 10.5 min; Baseline Time 120 min (CIFAR-10)", "times on an unnamed machine, "
              "and the baseline is hard-coded, not measured; the 11.5× speed-up is judged against the same run's "
              "dense training instead"),
    NotJudged(DOC_AST, "Training Time 3-5 hours; Baseline Time 30-50 hours (ImageNet-100, predicted)",
              "no GPU is named; the 8-12× speed-up they imply is judged"),
    NotJudged(DOC_AST, "Energy savings: Expect similar 89-90%", "a restatement of the 88-91 % prediction, "
              "which chapter 6 judges"),
    NotJudged(DOC_AST, "Speedup: May be lower (8-10×)", "a hedge inside the 8-12× prediction, which chapter 6 "
              "judges"),
    NotJudged(DOC_AST, "Batch Size 128 / 64; Learning Rate 0.001; Epochs 40; AdamW; Weight Decay 1e-4",
              "recipe settings, not results: the presets cifar10-simplecnn and imagenet100-resnet50 use them "
              "(cifar-lab train --preset NAME --show-config)"),
    NotJudged(DOC_AST, "RandomCrop(32, padding=4); Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)); "
              "RandomResizedCrop(224); ColorJitter(0.4, 0.4, 0.4); ImageNet mean/std", "augmentation settings of "
              "the presets, not results"),
    NotJudged(DOC_AST, "PI Controller gains Kp=0.0015, Ki=0.00005; EMA α=0.3", "settings; chapter 3 simulates "
              "these gains and shows that they wind up, so the presets use tuned gains (gains=seed selects these)"),
    NotJudged(DOC_AST, "Significance formula (70% loss, 30% intensity); Fallback (2 random samples); "
              "Target activation rate (10%)", "settings of the gate (config.ast), not results"),
    NotJudged(DOC_AST, "energy_per_activation=1.0, energy_per_skip=0.01", "the note's energy formula: its value "
              "is shown beside the energy claims, which are judged from measured compute"),
    NotJudged(DOC_AST, "40 epochs × 390 batches = 15,600 updates; 40 epochs × 2031 batches = 81,240 updates",
              "arithmetic of the recipe (50,000 / 128 is 391 batches with the last partial one); chapter 6 "
              "simulates the controller over 2,031 batches per epoch"),
    NotJudged(DOC_AST, "Easier convergence than 6% or lower", "an opinion without a figure; chapter 3's sweep "
              "runs a 5 % target"),
    NotJudged(DOC_AST, "Train Images 50,000 / ~130,000; Val Images 10,000 / ~5,000; Dataset Size 162 MB / "
              "~13 GB", "dataset facts; ImageNet-100's counts depend on which 100 classes are chosen, and chapter 6 "
              "prints its subset's"),
    NotJudged(DOC_IMAGENET1K, "~37x more memory per image (224×224 vs 32×32)", "arithmetic error: 224² / 32² is "
              "49; chapter 7 estimates the memory per batch size from the model instead"),
    NotJudged(DOC_IMAGENET1K, "GPU Memory: Minimum 8GB recommended for batch size 16", "about the document's own "
              "8-layer CNN, not the book's ResNet-50; chapter 7 estimates (and on a GPU measures) the memory per "
              "batch size"),
    NotJudged(DOC_IMAGENET1K, "BATCH_SIZE=32 → 16; 4-step accumulation; OneCycleLR; AMP", "recipe settings of the "
              "imagenet1k presets"),
    NotJudged(DOC_IMAGENET1K, "Linear(512, 10) → Linear(512, 1000); 64→128→256→512 channels; 8 convolutional "
              "layers", "the document's own CNN, which the book replaces with torchvision's ResNet-50"),
    NotJudged(DOC_IMAGENET1K, "1,000 classes; 1,281,167 training images; Resize(256), CenterCrop(224)",
              "dataset facts and the evaluation transform; the loaders check the classes"),
    NotJudged(DOC_IMAGENET1K, "Dataset Size ~170MB (CIFAR-10) / ~150GB (ImageNet-1k); at least 200GB free disk",
              "download and disk sizes; chapter 1 verifies CIFAR-10's archive by its MD5 instead"),
    NotJudged(DOC_IMAGENET1K, "Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))", "CIFAR-10's "
              "statistics: the loaders measure them from the training split, so on real data they come out so"),
    NotJudged(DOC_IMAGENET1K, "datasets>=2.0.0, huggingface_hub>=0.15.0; try 8 or 4; labels in [0, 999]",
              "requirements and advice, not results"),
    NotJudged(DOC_CIFAR100, "Epoch 10: ~35-40%; Epoch 30: ~55-60%; Epoch 50: ~65-68%; Epoch 80: ~70-72%",
              "a typical curve, not a result; chapter 4 plots the run's curve, and the figure at epoch 100 "
              "(73-75 %) is judged"),
    NotJudged(DOC_CIFAR100, "100 epochs (approximately 2-3 hours on Apple Silicon)", "Apple hardware is not "
              "available to this project (device=mps is untested)"),
    NotJudged(DOC_CIFAR100, "SGD Nesterov, LR 0.1, momentum 0.9, weight decay 5e-4, 5 warm-up epochs, label "
              "smoothing 0.1, Cutout 16×16 p=0.5, padding 4, flip p=0.5", "recipe settings of the "
              "cifar100-resnet18 preset"),
    NotJudged(DOC_CIFAR100, "Mean (0.5071, 0.4867, 0.4408), Std (0.2675, 0.2565, 0.2761)", "the loader measures "
              "them from the training split and chapter 4 prints them: inputs of the recipe, not a result"),
    NotJudged(DOC_CIFAR100, "50,000 training / 10,000 test samples, 100 classes, 20 superclasses, 32×32",
              "dataset facts; chapter 4 prints the counts it loads"),
    NotJudged(DOC_CIFAR100, "checkpoints every 10 epochs; reduce batch size (try 64 or 32)",
              "settings and advice for the training script, not results"),
    NotJudged(DOC_RESNET18, "Success Criterion ≥85%", "looser than the published 93-95 %, which is judged"),
    NotJudged(DOC_RESNET18, "Success Criterion < 10 ms", "looser than the published 4-6 ms, which is judged"),
    NotJudged(DOC_RESNET18, "Success Criterion < 100 MB", "looser than the published 42-45 MB, which is judged"),
    NotJudged(DOC_RESNET18, "Early stopping floor 80; patience 15", "the cosine schedule runs all 200 epochs, and "
              "stopping on test accuracy would select on the test split; the preset sets no early stopping"),
    NotJudged(DOC_RESNET18, "Expected variability < 1% (fixed seed)", "needs repeated full runs with one seed on "
              "one GPU; at full scale each accuracy is shown with its 95 % interval over 3 seeds instead"),
    NotJudged(DOC_RESNET18, "AMP ~30-50% speedup; torch.compile ~10-20%; channels_last ~5-10%", "GPU figures; "
              "cifar-lab bench train measures the engine against a plain loop on the machine at hand (so far "
              "CPUs only)"),
    NotJudged(DOC_RESNET18, "Estimated duration 8-16 hours on modern GPU (RTX 3090/4090)", "no such GPU is "
              "available; the reproduction page gives A100 estimates from public anchors, marked as estimates"),
    NotJudged(DOC_RESNET18, "std=[0.2023, 0.1994, 0.2010]", "not CIFAR-10's standard deviation "
              "(0.2470, 0.2435, 0.2616); the book normalises with the measured statistics"),
    NotJudged(DOC_RESNET18, "lr 0.1, momentum 0.9, weight decay 5e-4, T_max 200, batch 128, seed 42, padding 4, "
              "test batch 1", "recipe settings of the cifar10-resnet18 preset and of the latency measurement"),
    NotJudged(DOC_RESNET18, "VRAM 4 GB (8 GB recommended), RAM 16 GB, Disk 5 GB; PyTorch 2.0+, CUDA 12.1, "
              "Python 3.11", "requirements; every run records its versions and device (environment.json)"),
    NotJudged(DOC_NAIVENET, ">90% accuracy on CIFAR-10", "no chapter trains NaiveNet on CIFAR-10; the "
              "cifar10-naivenet preset runs it on a GPU, outside cifar-lab reproduce"),
    NotJudged(DOC_NAIVENET, "Upscale 32×32 to 128×128 (\"significant improvements\"); SE blocks \"the most "
              "impactful improvement\"", "no figure is given, and the book runs no ablation of either"),
]


def not_judged_table():
    """NOT_JUDGED as a DataFrame: document, figure as quoted, why it is not judged."""
    import pandas as pd

    return pd.DataFrame([{"document": item.document, "figure": item.quote, "why not judged": item.reason}
                         for item in NOT_JUDGED])
