"""Statistics over seeds: the one home of a mean, its interval and the comparison of two means.

Every "better", "worse" or "no clear difference" in the book comes from `compare`: two sets of per-seed values,
Welch's t-test (unequal variances), and the 95 % interval of the difference of the means. "Better" or "worse" is
said only when that interval excludes 0; the sentence prints the difference, its interval and n. With one seed
on either side there is no interval, and the sentence says so.

Timings of repeated runs of one benchmark are a different thing (median, min and max of a few repeats): see
`cifar_lab.measure`, which names them differently on purpose.

Student's t quantiles and Welch's degrees of freedom (Welch 1947; Satterthwaite 1946) come from SciPy.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Optional, Sequence

LEVEL = 0.95
BETTER, WORSE, NO_CLEAR = "better", "worse", "no clear difference"
ONE_SEED = "one seed: no interval"


def _t_quantile(level: float, df: float) -> float:
    from scipy import stats as scipy_stats

    return float(scipy_stats.t.ppf(0.5 + level / 2, df))


def _t_two_sided_p(t: float, df: float) -> float:
    from scipy import stats as scipy_stats

    return float(2 * scipy_stats.t.sf(abs(t), df))


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation (n - 1) and n of per-seed values, with the 95 % interval of the mean
    (Student t, n - 1 degrees of freedom). `std`, `low` and `high` are None for one value."""
    mean: float
    std: Optional[float]
    n: int
    low: Optional[float]
    high: Optional[float]
    level: float = LEVEL

    @property
    def half_width(self) -> Optional[float]:
        return None if self.low is None else (self.high - self.low) / 2

    def text(self, digits: int = 4, scale: float = 1.0, unit: str = "") -> str:
        """"0.8904 ± 0.0042 (95 % CI 0.8800-0.9008, n=3)", or "0.8904 (one seed: no interval)"."""
        mean = f"{self.mean * scale:.{digits}f}{unit}"
        if self.low is None:
            return f"{mean} ({ONE_SEED})"
        return (f"{mean} ± {self.std * scale:.{digits}f} ({self.level:.0%} CI {self.low * scale:.{digits}f}-"
                f"{self.high * scale:.{digits}f}{unit}, n={self.n})")


def summarize(values: Sequence[float], level: float = LEVEL) -> Summary:
    """Mean, sample std, n and the Student-t interval of the mean of `values` (at least one)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("no values to summarize")
    mean = statistics.fmean(values)
    if len(values) == 1:
        return Summary(mean, None, 1, None, None, level)
    std = statistics.stdev(values)
    half = _t_quantile(level, len(values) - 1) * std / math.sqrt(len(values))
    return Summary(mean, std, len(values), mean - half, mean + half, level)


@dataclass(frozen=True)
class Comparison:
    """`ours` minus `other`: the difference of the means, Welch's 95 % interval of it and two-sided p-value,
    and the verdict word (`BETTER`, `WORSE` or `NO_CLEAR`; `higher_is_better=False` for losses and times)."""
    ours: Summary
    other: Summary
    difference: float
    low: Optional[float]
    high: Optional[float]
    p_value: Optional[float]
    df: Optional[float]
    verdict: str
    level: float = LEVEL

    @property
    def n(self) -> tuple[int, int]:
        return self.ours.n, self.other.n

    def sentence(self, ours: str, other: str, what: str = "test accuracy", digits: int = 4, scale: float = 1.0,
                 unit: str = "") -> str:
        """The comparison in words, with the difference, its interval and n, e.g. "AST 0.8005 against random
        0.8259 (final test accuracy, n=5 and 5): difference -0.0254, 95 % CI -0.0400 to -0.0108, p=0.004:
        AST is worse than random."."""
        f = lambda v: f"{v * scale:+.{digits}f}{unit}"  # noqa: E731
        head = (f"{ours} {self.ours.mean * scale:.{digits}f}{unit} against {other} "
                f"{self.other.mean * scale:.{digits}f}{unit} ({what}, n={self.ours.n} and {self.other.n}): "
                f"difference {f(self.difference)}")
        if self.low is None:
            return f"{head}; {ONE_SEED}, so no clear difference can be claimed."
        body = f"{head}, {self.level:.0%} CI {f(self.low)} to {f(self.high)}, p={self.p_value:.3g}"
        if self.verdict == NO_CLEAR:
            return f"{body}: no clear difference (the interval includes 0)."
        return f"{body}: {ours} is {self.verdict} than {other}."


def compare(ours: Sequence[float], other: Sequence[float], higher_is_better: bool = True,
            level: float = LEVEL) -> Comparison:
    """Welch's comparison of two sets of per-seed values (`ours` minus `other`)."""
    a, b = summarize(ours, level), summarize(other, level)
    difference = a.mean - b.mean
    if a.n < 2 or b.n < 2:
        return Comparison(a, b, difference, None, None, None, None, NO_CLEAR, level)
    va, vb = a.std ** 2 / a.n, b.std ** 2 / b.n
    se = math.sqrt(va + vb)
    if se == 0.0:
        # Identical values within each side: the difference is exact.
        verdict = NO_CLEAR if difference == 0 else (
            BETTER if (difference > 0) == higher_is_better else WORSE)
        return Comparison(a, b, difference, difference, difference, 0.0 if difference else 1.0, math.inf,
                          verdict, level)
    df = (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1))
    half = _t_quantile(level, df) * se
    low, high = difference - half, difference + half
    p = _t_two_sided_p(difference / se, df)
    if low > 0 or high < 0:
        verdict = BETTER if (difference > 0) == higher_is_better else WORSE
    else:
        verdict = NO_CLEAR
    return Comparison(a, b, difference, low, high, p, df, verdict, level)


def seeds_for_half_width(values: Sequence[float], half_width: float, level: float = LEVEL,
                         most: int = 1000) -> Optional[int]:
    """How many seeds would bring the interval of the mean within ±`half_width`, if the spread stayed the
    sample std of `values` (None with fewer than two values, or when `most` seeds would not do)."""
    s = summarize(values, level)
    if s.std is None:
        return None
    if s.std == 0.0:
        return 2
    if half_width <= 0:
        return None
    for n in range(_fewest(s.std ** 2, half_width, level), most + 1):
        if _t_quantile(level, n - 1) * s.std / math.sqrt(n) <= half_width:
            return n
    return None


def _fewest(variance: float, half_width: float, level: float) -> int:
    """A lower bound on the seeds an interval of ±`half_width` needs: Student's t quantile always exceeds the
    normal one, so fewer than (z * sd / half_width)² seeds never do (the search starts there)."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + level / 2)
    return max(2, math.floor(z * z * variance / half_width ** 2))


def seeds_for_difference(ours: Sequence[float], other: Sequence[float], half_width: float, level: float = LEVEL,
                         most: int = 1000) -> Optional[int]:
    """How many seeds on each side would bring Welch's interval of the difference of the means within
    ±`half_width`, if both spreads stayed the sample stds of `ours` and `other` (None with fewer than two values
    on a side, for a half-width of 0 or less, or when `most` seeds would not do). With n seeds each, the
    interval's half-width is t(df) * sqrt((s1² + s2²) / n), df = (n - 1) (s1² + s2²)² / (s1⁴ + s2⁴)."""
    a, b = summarize(ours, level), summarize(other, level)
    if a.std is None or b.std is None or half_width <= 0:
        return None
    total = a.std ** 2 + b.std ** 2
    if total == 0.0:
        return 2
    for n in range(_fewest(total, half_width, level), most + 1):
        df = (n - 1) * total ** 2 / (a.std ** 4 + b.std ** 4)
        if _t_quantile(level, df) * math.sqrt(total / n) <= half_width:
            return n
    return None
