"""Change-point detection on a benchmark's history: a penalized piecewise-constant fit (PELT).

Method (Killick, Fearnhead & Eckley 2012, "Optimal detection of changepoints with a linear
computational cost", JASA 107(500)), on the log of each run's median time:

- each run ``i`` has a value ``y_i = log(median_i)`` and an uncertainty ``s_i`` (standard error
  of the log-median, from a bootstrap of its raw samples, or from its summary statistics);
- nights differ by more than their within-run uncertainty (machine state, other tenants), so
  every point gets variance ``s_i**2 + tau**2``, where ``tau`` is the night-to-night noise,
  estimated from consecutive differences with the largest 10% trimmed (``night_noise``), so a
  step or an outlier night barely moves it;
- the cost of a segment is its weighted squared deviation from its weighted mean (a Gaussian
  log-likelihood up to constants), the penalty per change is ``penalty * log(n)`` (BIC-like,
  default ``penalty = 4``, about twice BIC: on 300 simulated flat 30-night series with 2% noise it found no step, and it placed an 8% step exactly in 92% of series and within one night in 99%), and PELT finds the exact optimum with pruning (checked against brute-force optimal partitioning on random series in ``tests/test_changepoint.py``);
- a detected step must also be at least ``min_change`` in size, and each is reported with a
  z-score of the difference of the adjacent segments' means and the two-sided confidence
  ``1 - p``. Steps that fail either test are merged away and the fit repeated.

Like asv's step detection, this fits piecewise-constant levels; unlike a fixed threshold it uses
each run's own uncertainty, so a noisy run counts for less.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import special

# the standard normal through scipy.special, as scipy.stats.norm computes it (sf(x) = ndtr(-x),
# ppf = ndtri, pdf = exp(-x^2/2)/sqrt(2 pi)) without importing scipy.stats, which parses every
# distribution's docstring at import: most of a history run's start-up
_NORM_PDF_C = np.sqrt(2 * np.pi)


def _norm_sf(x: float) -> float:
    return float(special.ndtr(-x))

from inferperf.analysis.settings import DEFAULT_PENALTY, DEFAULT_STEP_CONFIDENCE

#: 1 / Phi^-1(3/4): MAD to standard deviation for Gaussian noise
_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Segment:
    start: int  # index of the first point
    stop: int  # one past the last point
    level: float  # weighted mean of log values
    level_var: float  # variance of that mean


@dataclass(frozen=True)
class Step:
    """A change between point ``index - 1`` and point ``index``."""

    index: int
    #: relative change of the time: exp(after - before) - 1 (+0.08: 8% slower)
    change: float
    z: float
    confidence: float


def night_noise(values: np.ndarray, uncertainties: np.ndarray, keep: float = 0.9) -> float:
    """Robust estimate of the noise between runs beyond their own uncertainty (``tau``).

    The spread of consecutive differences, with the largest ``1 - keep`` of them (where steps
    and outliers land) trimmed away and the trimming corrected for, assuming Gaussian noise.
    More efficient than the MAD (which underestimates often enough on 30 points to make pure
    noise look like steps), and a step moves it little.

    Parameters
    ----------
    values : numpy.ndarray
        Log median times, in run order.
    uncertainties : numpy.ndarray
        Standard errors of those values.
    keep : float
        Fraction of the smallest absolute differences kept.

    Returns
    -------
    float
        ``tau >= 0``; 0 when consecutive runs differ no more than their uncertainties explain.
    """
    if len(values) < 3:
        return 0.0
    diffs = np.diff(values)
    deviations = np.sort(np.abs(diffs - np.median(diffs)))
    kept = deviations[: max(2, int(math.ceil(keep * len(deviations))))]
    # E[x^2 | |x| < q] / sigma^2 for x ~ N(0, sigma^2), q its two-sided ``keep`` quantile
    q = float(special.ndtri(0.5 + keep / 2.0))
    truncated_variance = 1.0 - 2.0 * q * float(np.exp(-q**2 / 2.0) / _NORM_PDF_C) / keep
    spread = math.sqrt(float(np.mean(kept**2)) / truncated_variance) / math.sqrt(2.0)
    within = float(np.median(uncertainties)) if len(uncertainties) else 0.0
    return math.sqrt(max(0.0, spread**2 - within**2))


def _weights(uncertainties: np.ndarray, tau: float) -> np.ndarray:
    variance = uncertainties**2 + tau**2
    floor = max(1e-12, float(np.median(variance)) * 1e-3)
    return 1.0 / np.maximum(variance, floor)


class _Costs:
    """O(1) weighted segment costs from prefix sums."""

    def __init__(self, values: np.ndarray, weights: np.ndarray) -> None:
        self.w = np.concatenate([[0.0], np.cumsum(weights)])
        self.wy = np.concatenate([[0.0], np.cumsum(weights * values)])
        self.wyy = np.concatenate([[0.0], np.cumsum(weights * values * values)])

    def cost(self, start: int, stop: int) -> float:
        w = self.w[stop] - self.w[start]
        wy = self.wy[stop] - self.wy[start]
        wyy = self.wyy[stop] - self.wyy[start]
        return float(wyy - wy * wy / w) if w > 0 else 0.0

    def costs(self, starts: np.ndarray, stop: int) -> np.ndarray:
        """``cost(s, stop)`` for every ``s < stop`` in ``starts`` at once (the same arithmetic,
        elementwise; every weight is positive, so a non-empty segment's total weight is too)."""
        w = self.w[stop] - self.w[starts]
        wy = self.wy[stop] - self.wy[starts]
        return self.wyy[stop] - self.wyy[starts] - wy * wy / w

    def segment(self, start: int, stop: int) -> Segment:
        w = self.w[stop] - self.w[start]
        return Segment(start, stop, float((self.wy[stop] - self.wy[start]) / w), float(1.0 / w))


def pelt(values: np.ndarray, weights: np.ndarray, penalty: float, min_size: int = 2) -> list[int]:
    """Indices where new segments start (excluding 0), minimising cost + penalty per change.

    Parameters
    ----------
    values, weights : numpy.ndarray
        Points and their weights (inverse variances).
    penalty : float
        Cost of one more change point.
    min_size : int
        Fewest points in a segment: with 2, one outlier night is never a segment of its own.

    Returns
    -------
    list of int
        Sorted change indices.
    """
    n = len(values)
    costs = _Costs(values, weights)
    best = np.full(n + 1, math.inf)
    best[0] = -penalty
    last = np.zeros(n + 1, dtype=int)
    # the candidate starts, ascending: argmin's first minimum is then the smallest start among equal
    # costs, the tie-break of the one-at-a-time min over (cost, start)
    candidates = np.zeros(1, dtype=np.intp)
    for stop in range(1, n + 1):
        valid = candidates[stop - candidates >= min_size]
        if valid.size:
            totals = best[valid] + costs.costs(valid, stop) + penalty
            chosen = int(np.argmin(totals))
            best[stop], last[stop] = totals[chosen], valid[chosen]
        if math.isfinite(best[stop]):
            candidates = np.append(candidates, stop)
        # PELT pruning, exact under a minimum segment length: a start s can be dropped once a later
        # split t beats it (best[s] + C(s, t) > best[t]; splitting never raises this cost), but only
        # if t is a feasible split for every future stop, i.e. at least min_size before stop + 1.
        # Pruning against t = stop itself (as before) dropped starts that stops in between still
        # needed: suboptimal fits, once a false newest step.
        t = stop - min_size + 1
        if t >= 1 and math.isfinite(best[t]):
            before = candidates[candidates < t]
            kept = before[best[before] + costs.costs(before, t) <= best[t]]
            candidates = np.concatenate([kept, candidates[candidates >= t]])
    if not math.isfinite(best[n]):
        return []
    changes = []
    position = n
    while position > 0:
        position = int(last[position])
        if position > 0:
            changes.append(position)
    return sorted(changes)


def pelt_many(series: Sequence[tuple[np.ndarray, np.ndarray]], penalty: float, min_size: int = 2) -> list[list[int]]:
    """``pelt(values, weights, penalty, min_size)`` for many series of one length at once.

    The same recursion, pruning and tie-break (the smallest start among equal totals), with the
    candidate starts of every series held as a mask and each stop's totals computed for all series
    in one array operation — the values ``pelt`` finds one series at a time
    (``tests/test_changepoint.py`` holds them against each other).
    """
    if not series:
        return []
    n = len(series[0][0])
    if any(len(values) != n for values, _ in series):
        raise ValueError("pelt_many: every series must have the same length")
    count = len(series)
    weights = np.stack([w for _, w in series])
    values = np.stack([v for v, _ in series])
    zero = np.zeros((count, 1))
    w = np.concatenate([zero, np.cumsum(weights, axis=1)], axis=1)
    wy = np.concatenate([zero, np.cumsum(weights * values, axis=1)], axis=1)
    wyy = np.concatenate([zero, np.cumsum(weights * values * values, axis=1)], axis=1)
    best = np.full((count, n + 1), math.inf)
    best[:, 0] = -penalty
    last = np.zeros((count, n + 1), dtype=np.intp)
    candidate = np.zeros((count, n + 1), dtype=bool)
    candidate[:, 0] = True
    starts = np.arange(n + 1)

    def costs(stop: int, upto: int) -> np.ndarray:
        # cost(s, stop) for every s < upto, each series: _Costs.cost's arithmetic, elementwise
        sw = w[:, stop : stop + 1] - w[:, :upto]
        swy = wy[:, stop : stop + 1] - wy[:, :upto]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sw > 0, wyy[:, stop : stop + 1] - wyy[:, :upto] - swy * swy / sw, 0.0)

    for stop in range(1, n + 1):
        valid = candidate[:, :stop] & (stop - starts[:stop] >= min_size)
        if valid.any():
            totals = np.where(valid, best[:, :stop] + costs(stop, stop) + penalty, math.inf)
            chosen = np.argmin(totals, axis=1)
            found = valid.any(axis=1)
            rows = np.flatnonzero(found)
            best[rows, stop] = totals[rows, chosen[rows]]
            last[rows, stop] = chosen[rows]
        candidate[:, stop] = np.isfinite(best[:, stop])
        t = stop - min_size + 1
        if t >= 1:
            prunable = np.isfinite(best[:, t])
            if prunable.any():
                keep = best[:, :t] + costs(t, t) <= best[:, t : t + 1]
                candidate[:, :t] &= keep | ~prunable[:, None]
    out: list[list[int]] = []
    for row in range(count):
        if not math.isfinite(best[row, n]):
            out.append([])
            continue
        changes, position = [], n
        while position > 0:
            position = int(last[row, position])
            if position > 0:
                changes.append(position)
        out.append(sorted(changes))
    return out


def _merge_weak_steps(
    y: np.ndarray, costs: _Costs, changes: list[int], min_change: float, confidence: float
) -> tuple[list[Step], list[Segment]]:
    """Merge away the weakest step that fails ``min_change`` or ``confidence`` until none does."""
    while True:
        bounds = [0, *changes, len(y)]
        segments = [costs.segment(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        steps = []
        weakest: tuple[float, int] | None = None
        for index, (before, after) in enumerate(zip(segments[:-1], segments[1:])):
            delta = after.level - before.level
            z = delta / math.sqrt(before.level_var + after.level_var)
            step_conf = 1.0 - 2.0 * _norm_sf(abs(z))
            step = Step(after.start, math.expm1(delta), z, step_conf)
            if step_conf < confidence or abs(delta) < math.log1p(min_change):
                if weakest is None or abs(z) < weakest[0]:
                    weakest = (abs(z), index)
            steps.append(step)
        if weakest is None:
            return steps, segments
        del changes[weakest[1]]  # merge the weakest failing step and refit the levels


def detect_steps_many(
    series: Sequence[tuple[Sequence[float], Sequence[float]]],
    *,
    min_change: float,
    penalty: float = DEFAULT_PENALTY,
    confidence: float = DEFAULT_STEP_CONFIDENCE,
) -> list[tuple[list[Step], list[Segment], float]]:
    """``detect_steps`` for each (values, uncertainties), the PELT fits of equal lengths together."""
    prepared = []
    for values, uncertainties in series:
        y = np.asarray(values, dtype=np.float64)
        s = np.asarray(uncertainties, dtype=np.float64)
        tau = night_noise(y, s) if len(y) >= 3 else 0.0
        prepared.append((y, s, tau, _weights(s, tau) if len(y) >= 3 else None))
    by_length: dict[int, list[int]] = {}
    for index, (y, _, _, _) in enumerate(prepared):
        if len(y) >= 3:
            by_length.setdefault(len(y), []).append(index)
    changes: dict[int, list[int]] = {}
    for length, members in by_length.items():
        fits = pelt_many([(prepared[i][0], prepared[i][3]) for i in members], penalty * math.log(length))  # type: ignore[misc]
        changes.update(zip(members, fits))
    out: list[tuple[list[Step], list[Segment], float]] = []
    for index, (y, s, tau, weights) in enumerate(prepared):
        if weights is None:
            out.append(([], [_Costs(y, np.ones_like(y)).segment(0, len(y))] if len(y) else [], 0.0))
            continue
        steps, segments = _merge_weak_steps(y, _Costs(y, weights), changes[index], min_change, confidence)
        out.append((steps, segments, tau))
    return out


def detect_steps(
    values: Sequence[float],
    uncertainties: Sequence[float],
    *,
    min_change: float,
    penalty: float = DEFAULT_PENALTY,
    confidence: float = DEFAULT_STEP_CONFIDENCE,
) -> tuple[list[Step], list[Segment], float]:
    """Steps in a series of log median times, with their segments and the night noise ``tau``.

    Parameters
    ----------
    values : sequence of float
        ``log(median time)`` per run, oldest first.
    uncertainties : sequence of float
        Standard error of each value.
    min_change : float
        Smallest relative change reported as a step.
    penalty : float
        Multiplier of ``log(n)`` in the per-change penalty.
    confidence : float
        Smallest confidence (1 - two-sided p) for a reported step.

    Returns
    -------
    (steps, segments, tau)
    """
    y = np.asarray(values, dtype=np.float64)
    s = np.asarray(uncertainties, dtype=np.float64)
    if len(y) < 3:
        return [], [_Costs(y, np.ones_like(y)).segment(0, len(y))] if len(y) else [], 0.0
    tau = night_noise(y, s)
    weights = _weights(s, tau)
    costs = _Costs(y, weights)
    changes = pelt(y, weights, penalty * math.log(len(y)))
    steps, segments = _merge_weak_steps(y, costs, changes, min_change, confidence)
    return steps, segments, tau
