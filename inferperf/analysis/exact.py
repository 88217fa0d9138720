"""Exact, deterministic statistics for two sets of round times: no random draws, one matrix behind all.

For base round times ``x`` (n) and contender round times ``y`` (m), every statistic is read off the
n x m pairwise log-ratios ``d_ij = log(y_j / x_i)``, sorted:

- the **ratio** is the Hodges–Lehmann estimate of the shift in log time, ``exp(median(d))``: for a
  pure slowdown by a factor c every ``y`` is ``c x`` in distribution and the estimate is ``c``
  (the ratio of medians estimates the same thing, with a wider spread);
- the **p-value** is the exact two-sided Mann–Whitney test: ``U`` counts the positive ``d`` (half
  for each zero), and its null distribution for (n, m) is the Gaussian-binomial recurrence, or —
  with ties — the exact permutation distribution of the tied midranks (a subset-sum over the pooled
  sample), never a normal approximation;
- the **interval** is the distribution-free Moses interval: the k-th smallest and k-th largest
  ``d``, k the Mann–Whitney critical count at the interval's level. So the interval at level
  1 − α excludes 1 exactly when the test rejects at α: an interval and a p-value can no longer
  disagree, as a bootstrap interval and a rank test could.

Everything is a deterministic function of the samples: the same files give the same verdicts on
every machine, and swapping the sides inverts the ratio and the interval exactly. ``estimates`` does
all cases of a comparison at once, grouped by (n, m), with whole-array sorts.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator, Sequence

import numpy as np

from inferperf.analysis.settings import DEFAULT_CONFIDENCE
from inferperf.analysis.stats import RatioEstimate, min_mann_whitney_p

#: cases whose n x m matrices are sorted together (bounds the memory of a fleet's comparison)
CHUNK_CELLS = 1 << 23


@lru_cache(maxsize=None)
def null_cdf(n: int, m: int) -> np.ndarray:
    """P(U ≤ u) for u = 0 … n·m under the null, no ties: the Gaussian-binomial coefficients of
    (n, m) over C(n + m, n), by the recurrence c(n, m; u) = c(n − 1, m; u − m) + c(n, m − 1; u)."""
    # counts[j] holds the distribution for (i, j) as i grows; float64 is exact below 2^53 and only
    # the ratios matter above it
    counts = [np.ones(1) for _ in range(m + 1)]  # i = 0: one arrangement, U = 0
    for i in range(1, n + 1):
        row = [np.ones(1)]  # j = 0: U = 0
        for j in range(1, m + 1):
            size = i * j + 1
            current = np.zeros(size)
            current[: len(row[j - 1])] += row[j - 1]  # the largest is a y: adds nothing
            shifted = counts[j]  # the largest is an x: it beats all j y's ... (i - 1, j) shifted by j
            current[j : j + len(shifted)] += shifted
            row.append(current)
        counts = row
    distribution = counts[m]
    return np.cumsum(distribution) / distribution.sum()


def critical_count(n: int, m: int, confidence: float) -> int:
    """The largest k with P(U ≤ k − 1) < (1 − confidence) / 2 (0: no interval at that level).

    Strictly below, as the verdicts' ``p < alpha`` is: the interval at level 1 − α then excludes 1
    exactly when the two-sided p-value is below α."""
    return int(np.searchsorted(null_cdf(n, m), (1.0 - confidence) / 2.0, side="left"))


#: the tied null's subset-sum costs items x (m + 1) x (sum of doubled ranks + 1) operations: about
#: 1e10 for 200 rounds a side (25 s). Past this, where both sides are large (n = m ≈ 40 and up), the
#: tie-corrected normal approximation of the same conditional null is used; its p-values there are
#: within 0.001 of the exact ones (tests/test_exact.py checks both at the boundary)
EXACT_TIED_WORK = 3e7


def _tied_normal_p_value(scores: np.ndarray, m: int, observed: int) -> float:
    """The rank-sum test's two-sided p-value under the normal approximation of the tied conditional
    null (mean and variance exact given the ties; continuity-corrected), for large samples."""
    count = len(scores)
    n = count - m
    mean = m * (count + 1) / 2.0
    _, ties = np.unique(scores, return_counts=True)
    variance = n * m / 12.0 * ((count + 1) - float(np.sum(ties ** 3 - ties)) / (count * (count - 1)))
    if variance <= 0:
        return 1.0
    from scipy.stats import norm

    distance = max(0.0, abs(observed / 2.0 - mean) - 0.5)  # observed: the doubled midranks' sum
    return float(min(1.0, 2.0 * norm.sf(distance / np.sqrt(variance))))


def _tied_p_value(x: np.ndarray, y: np.ndarray) -> float:
    """The exact two-sided p-value of the contender's rank sum given the pooled sample's ties."""
    pooled = np.concatenate([x, y])
    order = np.argsort(pooled, kind="stable")
    ranks = np.empty(len(pooled))
    sorted_values = pooled[order]
    start = 0
    while start < len(pooled):  # midranks, doubled to integers
        end = start
        while end + 1 < len(pooled) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = start + end + 2
        start = end + 1
    scores = ranks.astype(np.int64)
    m = len(y)
    observed = int(scores[len(x):].sum())
    total = int(scores.sum())
    if len(scores) * (m + 1) * (total + 1) > EXACT_TIED_WORK:
        return _tied_normal_p_value(scores, m, observed)
    # ways[k][s]: subsets of k items whose doubled ranks sum to s
    ways = np.zeros((m + 1, total + 1))
    ways[0, 0] = 1.0
    for score in scores:
        ways[1:, score:] += ways[:-1, : total + 1 - score].copy()
    distribution = ways[m] / ways[m].sum()
    lower = distribution[: observed + 1].sum()
    upper = distribution[observed:].sum()
    return float(min(1.0, 2.0 * min(lower, upper)))


@dataclass(frozen=True)
class Estimates:
    """The exact statistics of many pairs as arrays, in the order the pairs were given (what a
    fleet's comparison reads in bulk; ``estimates`` makes one ``RatioEstimate`` of each)."""

    ratio: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p_value: np.ndarray
    min_p_value: np.ndarray


def _group(base: np.ndarray, contender: np.ndarray, confidence: float, with_p: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ratio, interval and p-value of every case of one (n, m): base (cases, n), contender
    (cases, m), times > 0.

    Only four order statistics of each row are needed — the two middle ones (the median) and the
    k-th from each end (the interval) — so each row is partitioned around them, not sorted."""
    cases, n = base.shape
    m = contender.shape[1]
    cells = n * m
    log_base, log_contender = np.log(base), np.log(contender)
    d = (log_contender[:, None, :] - log_base[:, :, None]).reshape(cases, cells)
    k = critical_count(n, m, confidence)
    middle = ((cells - 1) // 2, cells // 2)
    wanted = sorted({*middle, *((k - 1, cells - k) if k > 0 else ())})
    part = np.partition(d, wanted, axis=1)
    ratio = np.exp((part[:, middle[0]] + part[:, middle[1]]) / 2)  # numpy's median of the row
    if k > 0:
        low, high = np.exp(part[:, k - 1]), np.exp(part[:, cells - k])
    else:
        low, high = np.zeros(cases), np.full(cases, math.inf)
    if not with_p:  # intervals alone (the technique view): the test's counts are not needed
        return ratio, low, high, np.full(cases, math.nan)
    u = np.count_nonzero(d > 0, axis=1) + 0.5 * np.count_nonzero(d == 0, axis=1)
    cdf = null_cdf(n, m)
    whole = np.clip(u.astype(np.int64), 0, cells)
    below = cdf[whole]  # P(U ≤ u)
    above = 1.0 - np.where(whole >= 1, cdf[np.maximum(whole - 1, 0)], 0.0)  # P(U ≥ u)
    p = np.minimum(1.0, 2.0 * np.minimum(below, above))
    pooled = np.sort(np.concatenate([log_base, log_contender], axis=1), axis=1)
    for row in np.flatnonzero((np.diff(pooled, axis=1) == 0).any(axis=1)):  # ties: the exact conditional null
        p[row] = _tied_p_value(log_base[row], log_contender[row])
    return ratio, low, high, p


def estimate_arrays(
    pairs: Sequence[tuple[Sequence[float], Sequence[float]]], *, confidence: float = DEFAULT_CONFIDENCE, with_p: bool = True
) -> Estimates:
    """The exact statistics of every (base, contender) pair of round times (each side at least two),
    computed together: grouped by sample sizes, each group converted to arrays once. Without
    ``with_p`` the p-values are NaN (what needs only the ratio and interval skips the test)."""
    count = len(pairs)
    found = Estimates(*(np.empty(count) for _ in range(5)))
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, (a, b) in enumerate(pairs):
        groups[(len(a), len(b))].append(index)
    for (n, m), members in groups.items():
        per_chunk = max(1, CHUNK_CELLS // (n * m))
        chunks = [members[start : start + per_chunk] for start in range(0, len(members), per_chunk)]
        for chunk, (ratio, low, high, p) in zip(chunks, _map_rows(pairs, chunks, confidence, with_p)):
            found.ratio[chunk], found.low[chunk], found.high[chunk], found.p_value[chunk] = ratio, low, high, p
        found.min_p_value[members] = min_mann_whitney_p(n, m)
    return found


#: rows of one (n, m) worth splitting between threads (below, starting them costs more)
THREADED_ROWS = 4096


def _map_rows(
    pairs: Sequence[tuple[Sequence[float], Sequence[float]]], chunks: list[list[int]], confidence: float, with_p: bool
) -> Iterator[tuple[np.ndarray, ...]]:
    """``_group`` of each chunk of pair indices; a large chunk's rows are split between threads,
    one per core this process may use: numpy's partition, logs and comparisons release the GIL,
    so a fleet's statistics run on every core (1.6x on two)."""

    def group(rows: list[int]) -> tuple[np.ndarray, ...]:
        base = np.array([pairs[i][0] for i in rows], dtype=np.float64)
        contender = np.array([pairs[i][1] for i in rows], dtype=np.float64)
        return _group(base, contender, confidence, with_p)

    threads = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8)
    for chunk in chunks:
        if threads < 2 or len(chunk) < THREADED_ROWS:
            yield group(chunk)
            continue
        step = -(-len(chunk) // threads)
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(group, [chunk[i : i + step] for i in range(0, len(chunk), step)]))
        yield tuple(np.concatenate(column) for column in zip(*parts))


def estimates(pairs: Sequence[tuple[Sequence[float], Sequence[float]]], *, confidence: float = DEFAULT_CONFIDENCE) -> list[RatioEstimate]:
    """The exact estimate of every (base, contender) pair of round times (each side at least two)."""
    found = estimate_arrays(pairs, confidence=confidence)
    return [
        RatioEstimate(ratio=r, low=lo, high=hi, p_value=pv, method="exact", min_p_value=floor)
        for r, lo, hi, pv, floor in zip(
            found.ratio.tolist(), found.low.tolist(), found.high.tolist(), found.p_value.tolist(), found.min_p_value.tolist()
        )
    ]


def exact_ratio(base: Sequence[float], contender: Sequence[float], *, confidence: float = DEFAULT_CONFIDENCE) -> RatioEstimate:
    """One case's exact estimate (``estimates`` of one pair)."""
    return estimates([(base, contender)], confidence=confidence)[0]
