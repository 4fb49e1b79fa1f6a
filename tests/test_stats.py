"""`book.stats` against values worked out here by hand: Student-t intervals of a mean, Welch's comparison of two
means (its degrees of freedom by the Welch-Satterthwaite formula, its two-sided p-value by the closed form of the
t distribution's CDF for 4 degrees of freedom), the seeds an interval needs, and the one-seed and zero-variance
cases. The t quantiles are written out (Student's table, to full double precision):"""
import math

import pytest

from cifar_lab.book import stats

T_975 = {1: 12.706204736174698, 2: 4.302652729911275, 3: 3.182446305284263, 4: 2.7764451051977987,
         5: 2.5705818356363146, 6: 2.4469118511449692, 8: 2.306004135204166}


def t4_two_sided_p(t: float) -> float:
    """P(|T| > t) for Student's t with 4 degrees of freedom, from its CDF
    F(t) = 1/2 + sin(θ)/2 (1 + cos²(θ)/2), θ = atan(t/2)."""
    theta = math.atan(abs(t) / 2)
    cdf = 0.5 + math.sin(theta) / 2 * (1 + math.cos(theta) ** 2 / 2)
    return 2 * (1 - cdf)


def test_the_interval_of_a_mean_is_student_t_with_n_minus_1_degrees_of_freedom():
    """Mutants: the normal quantile 1.96 instead of Student's t; the population std (divided by n) instead of
    the sample std (n - 1); the interval of one observation (std) instead of the mean's (std / sqrt(n))."""
    three = stats.summarize([1.0, 2.0, 4.0])   # mean 7/3, sample variance 7/3
    assert three.mean == pytest.approx(7 / 3) and three.n == 3
    assert three.std == pytest.approx(math.sqrt(7 / 3))
    half = T_975[2] * math.sqrt(7 / 3) / math.sqrt(3)
    assert (three.low, three.high) == pytest.approx((7 / 3 - half, 7 / 3 + half))
    assert three.half_width == pytest.approx(half)
    five = stats.summarize([0.90, 0.91, 0.88, 0.89, 0.92])   # mean 0.90, sample variance 0.00025
    assert five.mean == pytest.approx(0.90) and five.std == pytest.approx(math.sqrt(0.00025))
    assert five.half_width == pytest.approx(T_975[4] * math.sqrt(0.00025) / math.sqrt(5))


def test_welch_with_equal_spreads_and_sizes_has_4_degrees_of_freedom_and_the_closed_form_p():
    """Mutants: a one-sided p-value (half of this); the difference taken the other way round (other minus
    ours); the standard error without dividing each variance by its n."""
    found = stats.compare([1.0, 2.0, 4.0], [3.0, 4.0, 6.0])   # the second is the first plus 2: equal variances
    se = math.sqrt(7 / 3 / 3 + 7 / 3 / 3)
    assert found.difference == pytest.approx(-2.0)
    assert found.df == pytest.approx(4.0)
    assert (found.low, found.high) == pytest.approx((-2.0 - T_975[4] * se, -2.0 + T_975[4] * se))
    assert found.p_value == pytest.approx(t4_two_sided_p(-2.0 / se), rel=1e-9)
    assert found.verdict == stats.NO_CLEAR  # the interval, about -5.46 to 1.46, includes 0


def test_welch_degrees_of_freedom_follow_the_formula_when_the_spreads_differ():
    """Mutant: the pooled test's degrees of freedom (n1 + n2 - 2 = 7) instead of Welch's (about 4.35 here)."""
    ours, other = [10.0, 10.2, 10.4, 10.6], [6.0, 9.0, 8.1, 9.6, 8.4]
    va = (sum((v - 10.3) ** 2 for v in ours) / 3) / 4
    mean_other = sum(other) / 5
    vb = (sum((v - mean_other) ** 2 for v in other) / 4) / 5
    df = (va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 4)
    found = stats.compare(ours, other)
    assert found.df == pytest.approx(df) and abs(found.df - 7) > 2
    assert found.verdict == stats.BETTER and found.low > 0
    # the same numbers by SciPy, a second and independent computation
    scipy_stats = pytest.importorskip("scipy.stats")
    reference = scipy_stats.ttest_ind(ours, other, equal_var=False)
    assert found.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    half = scipy_stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert (found.low, found.high) == pytest.approx((found.difference - half, found.difference + half))


def test_lower_is_better_turns_the_word_not_the_numbers():
    """Mutant: `higher_is_better=False` ignored (a slower time called better)."""
    slower = stats.compare([12.0, 12.1, 11.9], [10.0, 10.1, 9.9], higher_is_better=False)
    assert slower.verdict == stats.WORSE and slower.difference == pytest.approx(2.0)


def test_one_seed_has_no_interval_and_no_verdict_but_no_clear_difference():
    """Mutant: a one-seed comparison that declares a winner from the difference of two single numbers."""
    one = stats.summarize([0.9])
    assert (one.mean, one.std, one.low, one.high, one.half_width) == (0.9, None, None, None, None)
    assert stats.ONE_SEED in one.text()
    found = stats.compare([0.99], [0.80, 0.81])
    assert found.verdict == stats.NO_CLEAR and found.low is None and found.p_value is None
    assert stats.ONE_SEED in found.sentence("a", "b")
    assert stats.seeds_for_half_width([0.9], 0.01) is None
    with pytest.raises(ValueError):
        stats.summarize([])


def test_zero_variance_gives_an_exact_interval():
    """Mutant: a division by a zero standard error (ZeroDivisionError or NaN) when every seed agrees."""
    same = stats.summarize([0.5, 0.5, 0.5])
    assert same.std == 0.0 and same.low == same.high == 0.5
    better = stats.compare([0.6, 0.6, 0.6], [0.5, 0.5, 0.5])
    assert better.verdict == stats.BETTER and better.low == better.high == pytest.approx(0.1)
    assert better.p_value == 0.0
    tie = stats.compare([0.5, 0.5], [0.5, 0.5, 0.5])
    assert tie.verdict == stats.NO_CLEAR and tie.p_value == 1.0
    assert stats.seeds_for_half_width([0.5, 0.5, 0.5], 0.001) == 2


def test_the_seeds_an_interval_needs():
    """Sample std 1 (values -1, 0, 1): the half-width with n seeds is t(0.975, n - 1) / sqrt(n): 8.98, 2.48,
    1.59, 1.24 for n = 2 to 5. Mutants: the normal quantile instead of t (it would answer 3 for 2.0); n - 1 in
    the square root; an off-by-one in the search."""
    values = [-1.0, 0.0, 1.0]
    assert T_975[2] / math.sqrt(3) > 2.0 >= T_975[3] / math.sqrt(4)
    assert stats.seeds_for_half_width(values, 2.0) == 4
    assert T_975[3] / math.sqrt(4) > 1.5 >= T_975[4] / math.sqrt(5)
    assert stats.seeds_for_half_width(values, 1.5) == 5
    assert stats.seeds_for_half_width(values, 1e-6) is None   # more than 1,000 seeds


def test_the_seeds_a_difference_needs():
    """Both sides with sample std 1: with n seeds each, Welch's df is 2 (n - 1) and the half-width is
    t(0.975, 2 (n - 1)) sqrt(2 / n): 4.30, 2.27, 1.73, 1.46 for n = 2 to 5. Mutant: one side's spread only
    (sqrt(1 / n): it would answer 3 for 2.0)."""
    ours, other = [-1.0, 0.0, 1.0], [9.0, 10.0, 11.0]
    assert T_975[4] * math.sqrt(2 / 3) > 2.0 >= T_975[6] * math.sqrt(2 / 4)
    assert stats.seeds_for_difference(ours, other, 2.0) == 4
    assert T_975[6] * math.sqrt(2 / 4) > 1.5 >= T_975[8] * math.sqrt(2 / 5)
    assert stats.seeds_for_difference(ours, other, 1.5) == 5
    assert stats.seeds_for_difference(ours, other, 0.0) is None
    assert stats.seeds_for_difference([1.0], other, 1.0) is None
