"""compare's exact statistics: the Hodges–Lehmann ratio, the exact Mann–Whitney test and the Moses
interval, from one sorted matrix of pairwise log-ratios — checked against scipy, against brute-force
enumeration where there are ties, for coherence (the interval excludes 1 exactly when the test
rejects), bulk against one case, and for coverage by simulation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferperf.analysis.exact import critical_count, estimates, exact_ratio, null_cdf

times = st.lists(st.floats(1e-4, 1.0), min_size=2, max_size=25)
tied = st.lists(st.sampled_from([0.010, 0.011, 0.012, 0.013]), min_size=2, max_size=8)
sides = st.one_of(times, tied)


def test_the_null_distribution_is_the_exact_one():
    from scipy import stats

    rng = np.random.default_rng(0)
    for n, m in ((3, 3), (5, 7), (8, 8), (20, 20), (12, 30)):
        for _ in range(10):
            x, y = rng.lognormal(0, 0.05, n), rng.lognormal(0.02, 0.05, m)
            assert exact_ratio(x, y).p_value == pytest.approx(stats.mannwhitneyu(y, x, method="exact").pvalue, rel=1e-9)
    assert null_cdf(3, 3)[-1] == pytest.approx(1.0) and null_cdf(3, 3)[0] == pytest.approx(1 / 20)


def _brute_force_p(x, y):
    """The two-sided permutation p-value of the contender's midrank sum, by enumeration."""
    pooled = np.concatenate([x, y])
    from scipy.stats import rankdata

    ranks = rankdata(pooled)
    observed = ranks[len(x):].sum()
    sums = [ranks[list(c)].sum() for c in itertools.combinations(range(len(pooled)), len(y))]
    lower = np.mean([s <= observed + 1e-9 for s in sums])
    upper = np.mean([s >= observed - 1e-9 for s in sums])
    return min(1.0, 2 * min(lower, upper))


@given(tied, tied)
@settings(max_examples=40, deadline=None)
def test_ties_get_their_exact_permutation_p_value(x, y):
    if len(x) + len(y) > 12:
        return
    assert exact_ratio(x, y).p_value == pytest.approx(_brute_force_p(np.array(x), np.array(y)), abs=1e-9)


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.2])
def test_the_interval_excludes_1_exactly_when_the_test_rejects(alpha):
    rng = np.random.default_rng(7)
    disagreements = 0
    for trial in range(1500):
        n, m = int(rng.integers(4, 25)), int(rng.integers(4, 25))
        x = rng.lognormal(0, 0.05, n)
        y = rng.lognormal(rng.normal(0, 0.03), 0.05, m)
        e = exact_ratio(x, y, confidence=1 - alpha)
        disagreements += (e.low > 1 or e.high < 1) != (e.p_value < alpha)
    assert disagreements == 0


@given(st.lists(st.tuples(sides, sides), min_size=1, max_size=8), st.sampled_from([0.9, 0.95, 0.99]))
@settings(max_examples=40, deadline=None)
def test_bulk_equals_one_case(pairs, confidence):
    assert estimates(pairs, confidence=confidence) == [exact_ratio(a, b, confidence=confidence) for a, b in pairs]


def test_too_few_rounds_have_no_interval_at_that_level():
    assert critical_count(3, 3, 0.95) == 0
    e = exact_ratio([1.0, 1.1, 1.2], [2.0, 2.1, 2.2])
    assert (e.low, e.high) == (0.0, math.inf) and e.p_value == pytest.approx(0.1)


@pytest.mark.parametrize(("n", "noise"), [(20, "lognormal"), (20, "heavy"), (5, "lognormal"), (10, "heavy")])
def test_the_95_interval_covers_the_true_ratio_in_at_least_94_percent(n, noise):
    """Coverage by simulation: a 5% slowdown (every contender time 1.05x a draw from the base's
    distribution) under lognormal and heavy-tailed (Pareto-like) round noise."""
    rng = np.random.default_rng(11 + n)

    def draw(size):
        if noise == "lognormal":
            return rng.lognormal(-4, 0.05, size)
        return np.exp(-4) * (1 + 0.05 * rng.pareto(3.0, size))

    covered = 0
    trials = 1000
    pairs = [(draw(n), 1.05 * draw(n)) for _ in range(trials)]
    for e in estimates(pairs, confidence=0.95):
        covered += e.low <= 1.05 <= e.high
    assert covered / trials >= 0.94, covered / trials


def test_large_tied_samples_take_the_normal_approximation_of_the_same_null() -> None:
    """Past EXACT_TIED_WORK (about 45 rounds a side with ties) the tied null's subset-sum would cost
    seconds per case (200 a side: 25 s); its tie-corrected normal approximation agrees with it to
    0.001 at the boundary, and a run compared with itself (every value tied with its copy) gives 1."""
    from inferperf.analysis import exact

    rng = np.random.default_rng(1)
    for n in (30, 45):
        x, y = np.log(np.round(rng.lognormal(0, 0.05, n), 2)), np.log(np.round(rng.lognormal(0.02, 0.05, n), 2))
        exact_p = exact._tied_p_value(x, y)
        normal_p = exact._tied_normal_p_value(*_doubled_ranks(x, y))
        assert abs(exact_p - normal_p) < 0.001
    same = np.log(np.full(200, 231e-9))
    assert exact._tied_p_value(same, same) == 1.0
    quantized = np.log(np.round(rng.lognormal(0, 0.05, 200), 3))
    assert exact._tied_p_value(quantized, quantized) == pytest.approx(1.0, abs=1e-9)


def _doubled_ranks(x, y):
    from scipy.stats import rankdata

    scores = (2 * rankdata(np.concatenate([x, y]))).astype(np.int64)
    return scores, len(y), int(scores[len(x):].sum())
