"""The estimate every comparison reports, its verdict, and what history and ab share with it.

A comparison's ``RatioEstimate`` is contender / base of seconds per round (> 1: the contender is
slower) with an interval and a two-sided p-value: from the raw samples by the exact statistics of
``inferperf.analysis.exact`` (``method == "exact"``), or, where either side kept only pytest-
benchmark's summary, by the documented fallback here (``summary_ratio``: delta method, Welch's
t). A change needs both significance and a minimum effect, symmetric in log space: slower at
``ratio >= 1 + m``, faster at ``ratio <= 1 / (1 + m)`` (``verdict``).

Also here: the seeded bootstrap of one side's median (``bootstrap_medians``, seeded from the sorted
samples so the result does not depend on any order), which history's per-night uncertainty
(``log_median_se``) and ``ab``'s two-level interval (``symmetric_interval``) still use.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from inferperf.analysis.settings import DEFAULT_BOOTSTRAP, DEFAULT_CONFIDENCE
from inferperf.record.run import Summary

Verdict = Literal["faster", "slower", "same", "not comparable"]
#: ``exact``: the Hodges–Lehmann ratio, Moses interval and exact Mann–Whitney test of the raw
#: samples (``inferperf.analysis.exact``); ``summary``: the fallback for runs saved without them
Method = Literal["exact", "summary"]

#: the Gaussian efficiency factor of the median: SE(median) ~ 1.2533 * sigma / sqrt(n)
_MEDIAN_SE_FACTOR = math.sqrt(math.pi / 2)
#: sigma of a normal distribution from its inter-quartile range
_IQR_TO_SIGMA = 1.0 / 1.3489795


@dataclass(frozen=True)
class RatioEstimate:
    """``ratio`` of medians with its ``low``..``high`` interval and a two-sided ``p_value``."""

    ratio: float
    low: float
    high: float
    p_value: float
    method: Method
    #: the smallest p-value the test could reach with these sample sizes (None: not computed)
    min_p_value: float | None = None


def _seed(samples: np.ndarray) -> int:
    digest = hashlib.blake2b(np.sort(samples).astype(np.float64).tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def bootstrap_medians(samples: npt.ArrayLike, resamples: int = DEFAULT_BOOTSTRAP) -> np.ndarray:
    """Medians of ``resamples`` bootstrap resamples of ``samples``.

    Parameters
    ----------
    samples : sequence of float
        Observed values (seconds per round).
    resamples : int
        Number of bootstrap resamples.

    Returns
    -------
    numpy.ndarray
        ``resamples`` medians; deterministic for a given multiset of samples.
    """
    values = np.asarray(samples, dtype=np.float64)
    rng = np.random.default_rng(_seed(values))
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    return np.median(np.sort(values)[picks], axis=1)


def symmetric_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval by order statistics ``k`` and ``n - 1 - k`` (exact under inversion)."""
    ordered = np.sort(values)
    k = int(math.floor((1.0 - confidence) / 2.0 * len(ordered)))
    return float(ordered[k]), float(ordered[len(ordered) - 1 - k])


def min_mann_whitney_p(n: int, m: int) -> float:
    """The smallest two-sided p-value Mann-Whitney U can give for sample sizes ``n`` and ``m``.

    Complete separation of the samples is the most extreme outcome: it has probability
    ``1 / C(n + m, n)`` on each side.
    """
    return min(1.0, 2.0 / math.comb(n + m, n))


@dataclass(frozen=True)
class SummaryStats:
    median: float
    mean: float
    stddev: float
    rounds: int
    iqr: float | None = None

    @classmethod
    def of(cls, summary: Summary) -> "SummaryStats":
        """A run's pytest-benchmark summary of one case, for the summary-only statistics."""
        return cls(median=summary.median, mean=summary.mean, stddev=summary.stddev, rounds=summary.rounds, iqr=summary.iqr)

    def sigma(self) -> float:
        """A spread estimate: from the IQR when known (robust to outliers), else the stddev."""
        if self.iqr is not None and self.iqr > 0:
            return self.iqr * _IQR_TO_SIGMA
        return self.stddev

    def log_median_se(self) -> float:
        """Standard error of ``log(median)`` by the delta method: ``1.2533 * sigma / sqrt(n) / median``."""
        return _MEDIAN_SE_FACTOR * self.sigma() / math.sqrt(max(1, self.rounds)) / self.median


def log_median_se(samples: npt.ArrayLike, resamples: int = 400) -> float:
    """Standard error of ``log(median)`` of ``samples``, from the bootstrap of the median.

    Parameters
    ----------
    samples : sequence of float
        Raw seconds per round (three or more).
    resamples : int
        Bootstrap resamples.

    Returns
    -------
    float
        The standard deviation of the log of the bootstrap medians.
    """
    medians = bootstrap_medians(samples, resamples)
    return float(np.std(np.log(medians), ddof=1))


def summary_ratio(
    base: SummaryStats, contender: SummaryStats, *, confidence: float = DEFAULT_CONFIDENCE
) -> RatioEstimate:
    """Fallback when raw samples are missing: delta method on the log-ratio of medians.

    ``SE(median) ~ 1.2533 * sigma / sqrt(n)`` with sigma from the IQR (or the stddev), the
    interval is ``exp(log(ratio) +/- z * SE(log ratio))``, and significance is Welch's t-test on
    the means and standard deviations. Symmetric under swapping the sides.

    Parameters
    ----------
    base, contender : SummaryStats
        pytest-benchmark's summary statistics of each side (seconds per round).
    confidence : float
        Coverage of the interval.

    Returns
    -------
    RatioEstimate
        ``method == "summary"``; with one round on a side the interval is infinite and p is 1.
    """
    ratio = contender.median / base.median
    if base.rounds < 2 or contender.rounds < 2:
        return RatioEstimate(ratio, 0.0, math.inf, 1.0, "summary")
    se_log = math.hypot(base.log_median_se(), contender.log_median_se())
    from scipy import (
        stats as sps,  # imported when needed: scipy.stats is slow to import
    )
    z = float(sps.norm.ppf(0.5 + confidence / 2.0))
    low, high = ratio * math.exp(-z * se_log), ratio * math.exp(z * se_log)
    if base.stddev == 0 and contender.stddev == 0:
        p_value = 1.0 if base.mean == contender.mean else 0.0
    else:
        p_value = float(
            sps.ttest_ind_from_stats(
                base.mean, base.stddev, base.rounds, contender.mean, contender.stddev, contender.rounds,
                equal_var=False,
            ).pvalue
        )
    return RatioEstimate(ratio, low, high, p_value, "summary")


def verdict(estimate: RatioEstimate, *, min_change: float, alpha: float) -> Verdict:
    """``slower``/``faster`` need ``p < alpha`` and an effect of at least ``min_change``.

    Parameters
    ----------
    estimate : RatioEstimate
        Contender / base ratio of seconds per round.
    min_change : float
        Minimum relative effect, e.g. 0.03 for 3%; symmetric in log space.
    alpha : float
        Significance level.

    Returns
    -------
    str
        ``"slower"``, ``"faster"`` or ``"same"``.
    """
    if estimate.p_value >= alpha:
        return "same"
    if estimate.ratio >= 1.0 + min_change:
        return "slower"
    if estimate.ratio <= 1.0 / (1.0 + min_change):
        return "faster"
    return "same"
