"""The bulk statistics give exactly the one-case statistics' values (random inputs, hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferperf.analysis import batch_stats
from inferperf.analysis.batch_stats import bootstrap_medians_many
from inferperf.analysis.stats import bootstrap_medians

#: round times: positive, sometimes tied (rounded), of the lengths runs have (2..40 rounds)
times = st.lists(st.floats(1e-4, 1.0), min_size=2, max_size=40).map(lambda xs: xs)
tied_times = st.lists(st.sampled_from([0.010, 0.011, 0.012, 0.013]), min_size=2, max_size=12)
sides = st.one_of(times, tied_times)


@given(st.lists(sides, min_size=1, max_size=12), st.sampled_from([10, 37, 200]))
@settings(max_examples=60, deadline=None)
def test_bulk_bootstrap_medians_equal_the_one_side_function(samples, resamples):
    bulk = bootstrap_medians_many(samples, resamples)
    for values, medians in zip(samples, bulk):
        assert np.array_equal(medians, bootstrap_medians(values, resamples))


def test_a_rejected_draw_takes_the_one_side_path(monkeypatch):
    """Where Lemire's method would draw again, the side is recomputed the one-side way.

    Rejections are rare (about 1 in 10^8 draws at n = 20), so the test makes every draw look like
    a candidate: the fallback must then give the one-side values for every side.
    """
    real = batch_stats._medians_of_group

    def everything_rejected(sorted_values, seeds, resamples):
        medians, _ = real(sorted_values, seeds, resamples)
        return np.full_like(medians, np.nan), np.ones(len(seeds), dtype=bool)

    monkeypatch.setattr(batch_stats, "_medians_of_group", everything_rejected)
    samples = [np.linspace(0.01, 0.02, 20), np.linspace(0.5, 0.7, 7)]
    for values, medians in zip(samples, bootstrap_medians_many(samples, 100)):
        assert np.array_equal(medians, bootstrap_medians(values, 100))


@pytest.mark.parametrize("n", [3, 20, 41])
def test_the_draws_are_numpys_integers(n):
    seed = 123456789 + n
    draws = batch_stats._draws(seed, 500 * n).astype(np.uint64)
    indices = (draws * np.uint64(n)) >> np.uint64(32)
    assert np.array_equal(indices.reshape(500, n), np.random.default_rng(seed).integers(0, n, size=(500, n)))


@given(st.lists(st.lists(st.floats(1e-4, 1.0), min_size=3, max_size=30), min_size=1, max_size=10))
@settings(max_examples=40, deadline=None)
def test_bulk_log_median_ses_equal_the_one_side_function(samples):
    from inferperf.analysis.batch_stats import log_median_ses
    from inferperf.analysis.stats import log_median_se

    assert log_median_ses(samples) == [log_median_se(s) for s in samples]
