"""The change-point fit is exact: PELT with pruning equals brute-force optimal partitioning."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from inferperf.analysis.changepoint import _Costs, pelt


def optimal_partitioning(values: np.ndarray, weights: np.ndarray, penalty: float, min_size: int) -> float:
    """The minimum of cost + penalty per change over every segmentation, by brute force (O(n^2))."""
    costs = _Costs(values, weights)
    n = len(values)
    best = [math.inf] * (n + 1)
    best[0] = -penalty
    for stop in range(1, n + 1):
        for start in range(0, stop - min_size + 1):
            if math.isfinite(best[start]):
                best[stop] = min(best[stop], best[start] + costs.cost(start, stop) + penalty)
    return best[n]


def fitted_cost(values: np.ndarray, weights: np.ndarray, penalty: float, changes: list[int]) -> float:
    costs = _Costs(values, weights)
    bounds = [0, *changes, len(values)]
    return sum(costs.cost(a, b) for a, b in zip(bounds, bounds[1:])) + penalty * len(changes)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    st.lists(st.floats(-1, 1, allow_nan=False, allow_infinity=False), min_size=4, max_size=30),
    st.lists(st.floats(0.2, 5.0), min_size=30, max_size=30),
    st.floats(0.01, 2.0),
    st.integers(1, 4),
)
def test_pelt_finds_the_exact_optimum(raw, raw_weights, penalty, min_size):
    values = np.round(np.asarray(raw), 2)  # repeated levels make ties, where pruning errs first
    weights = np.asarray(raw_weights[: len(values)])
    changes = pelt(values, weights, penalty, min_size)
    assert all(b - a >= min_size for a, b in zip([0, *changes], [*changes, len(values)]))
    assert math.isclose(fitted_cost(values, weights, penalty, changes), optimal_partitioning(values, weights, penalty, min_size), rel_tol=1e-9, abs_tol=1e-9)


def test_a_series_the_old_pruning_got_wrong():
    # pruning against `stop` (not `stop - min_size + 1`) dropped the start a later stop needed:
    # it fitted changes at [3, 5], a false extra step; the optimum has one change, at 5
    values = np.array([-0.4, -0.2, 0.7, 1.7, -1.8, 1.2, 1.8, 1.0])
    weights = np.array([1.82, 3.625, 2.658, 2.004, 3.782, 3.471, 1.776, 1.577])
    assert pelt(values, weights, 2.2134856034383112, 2) == [5]


def test_thousands_of_random_series_fit_optimally():
    # noisy short series with low penalties: many changes, where the old pruning missed 2.5% of fits
    rng = np.random.default_rng(7)
    for _ in range(2000):
        n = int(rng.integers(4, 16))
        values = np.round(rng.normal(0, 1, n), 1)
        weights = rng.uniform(0.2, 5, n)
        penalty = float(rng.uniform(0.01, 3))
        min_size = int(rng.integers(1, 4))
        changes = pelt(values, weights, penalty, min_size)
        optimum = optimal_partitioning(values, weights, penalty, min_size)
        assert math.isclose(fitted_cost(values, weights, penalty, changes), optimum, rel_tol=1e-9, abs_tol=1e-9), (values, weights, penalty)


@given(
    st.lists(st.lists(st.floats(-1, 1), min_size=12, max_size=12), min_size=1, max_size=6),
    st.floats(0.1, 20),
    st.sampled_from([1, 2, 3]),
)
@settings(max_examples=80, deadline=None)
def test_pelt_many_equals_pelt_series_by_series(raw, penalty, min_size):
    from inferperf.analysis.changepoint import pelt_many

    rng = np.random.default_rng(len(raw))
    series = [(np.asarray(v) + np.repeat([0.0, 0.5], 6), rng.uniform(0.5, 2.0, 12)) for v in raw]
    assert pelt_many(series, penalty, min_size) == [pelt(v, w, penalty, min_size) for v, w in series]


def test_detect_steps_many_equals_detect_steps():
    from inferperf.analysis.changepoint import detect_steps, detect_steps_many

    rng = np.random.default_rng(9)
    series = [
        (list(np.log(0.05) + rng.normal(0, 0.01, n) + np.where(np.arange(n) >= n // 2, 0.08 * (i % 2), 0)), list(rng.uniform(0.001, 0.004, n)))
        for i, n in enumerate([30, 30, 30, 17, 2, 30, 17])
    ]
    assert detect_steps_many(series, min_change=0.03) == [detect_steps(v, s, min_change=0.03) for v, s in series]
