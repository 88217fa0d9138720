"""Statistics of the comparison, checked on synthetic signals (hypothesis for the properties)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferperf.analysis.exact import exact_ratio
from inferperf.analysis.stats import (
    SummaryStats,
    min_mann_whitney_p,
    summary_ratio,
    verdict,
)

samples = st.lists(st.floats(min_value=1e-4, max_value=10.0, allow_nan=False), min_size=3, max_size=30)
scales = st.floats(min_value=0.2, max_value=5.0)


@settings(max_examples=60, deadline=None)
@given(samples)
def test_a_run_compared_with_itself_shows_no_change(times):
    estimate = exact_ratio(times, times)
    # the rounds' spread is still there: the interval is centred on 1, not a point (as a bootstrap
    # drawing the same resamples on both sides made it)
    assert estimate.ratio == pytest.approx(1.0, rel=1e-12) and estimate.low <= 1.0 <= estimate.high
    assert estimate.low == pytest.approx(1 / estimate.high, rel=1e-12)
    assert estimate.p_value == 1.0
    assert verdict(estimate, min_change=0.0, alpha=0.05) not in ("slower", "faster")


@settings(max_examples=60, deadline=None)
@given(samples, scales)
def test_scaling_one_side_by_k_gives_ratio_k(times, k):
    estimate = exact_ratio(times, [t * k for t in times])
    assert estimate.ratio == pytest.approx(k, rel=1e-9)
    assert estimate.low <= estimate.ratio * (1 + 1e-9) and estimate.high >= estimate.ratio * (1 - 1e-9)


@settings(max_examples=60, deadline=None)
@given(samples, samples)
def test_swapping_sides_inverts_ratio_and_interval(a, b):
    forward, backward = exact_ratio(a, b), exact_ratio(b, a)
    assert forward.ratio == pytest.approx(1 / backward.ratio, rel=1e-12)
    # too few rounds for an interval at that level: [0, inf), which inverts to itself
    assert forward.low == pytest.approx(1 / backward.high if backward.high != math.inf else 0.0, rel=1e-12)
    assert forward.high == pytest.approx(1 / backward.low if backward.low else math.inf, rel=1e-12)
    assert forward.p_value == pytest.approx(backward.p_value)
    flips = {"slower": "faster", "faster": "slower", "same": "same"}
    assert verdict(forward, min_change=0.02, alpha=0.05) == flips[verdict(backward, min_change=0.02, alpha=0.05)]


@settings(max_examples=40, deadline=None)
@given(samples, samples, st.randoms(use_true_random=False))
def test_sample_order_does_not_change_the_result(a, b, rnd):
    shuffled_a, shuffled_b = list(a), list(b)
    rnd.shuffle(shuffled_a)
    rnd.shuffle(shuffled_b)
    assert exact_ratio(a, b) == exact_ratio(shuffled_a, shuffled_b)


def test_a_clear_slowdown_is_detected_and_a_null_is_not():
    rng = np.random.default_rng(1)
    base = 1.0 + 0.01 * rng.standard_normal(30)
    slower = 1.10 * (1.0 + 0.01 * rng.standard_normal(30))
    same = 1.0 + 0.01 * rng.standard_normal(30)
    assert verdict(exact_ratio(base, slower), min_change=0.03, alpha=0.01) == "slower"
    assert verdict(exact_ratio(slower, base), min_change=0.03, alpha=0.01) == "faster"
    assert verdict(exact_ratio(base, same), min_change=0.03, alpha=0.01) == "same"
    estimate = exact_ratio(base, slower)
    assert estimate.low < 1.10 < estimate.high


def test_significant_but_tiny_change_is_same():
    base = np.linspace(1.0, 1.001, 50)
    contender = base * 1.01  # 1%: significant with 50 tight samples, below a 3% minimum effect
    estimate = exact_ratio(base, contender)
    assert estimate.p_value < 0.01
    assert verdict(estimate, min_change=0.03, alpha=0.01) == "same"
    assert verdict(estimate, min_change=0.005, alpha=0.01) == "slower"


def test_min_p_value_tells_when_rounds_are_too_few():
    assert min_mann_whitney_p(3, 3) == pytest.approx(0.1)
    assert min_mann_whitney_p(10, 10) < 1e-4
    # with 3 rounds each, even complete separation is not significant at 0.05
    assert exact_ratio([1.0, 1.1, 1.2], [2.0, 2.1, 2.2]).p_value == pytest.approx(0.1)


def test_summary_fallback_is_centred_and_symmetric():
    a = SummaryStats(median=1.0, mean=1.0, stddev=0.02, rounds=20)
    b = SummaryStats(median=1.2, mean=1.2, stddev=0.02, rounds=20)
    forward, backward = summary_ratio(a, b), summary_ratio(b, a)
    assert forward.method == "summary" and forward.ratio == pytest.approx(1.2)
    assert forward.low < 1.2 < forward.high
    assert forward.low == pytest.approx(1 / backward.high) and forward.high == pytest.approx(1 / backward.low)
    assert forward.p_value < 0.001
    assert verdict(forward, min_change=0.03, alpha=0.01) == "slower"


def test_summary_fallback_with_one_round_claims_nothing():
    one = SummaryStats(median=1.0, mean=1.0, stddev=0.0, rounds=1)
    estimate = summary_ratio(one, SummaryStats(median=2.0, mean=2.0, stddev=0.0, rounds=1))
    assert estimate.p_value == 1.0 and math.isinf(estimate.high)
    assert verdict(estimate, min_change=0.03, alpha=0.01) == "same"
