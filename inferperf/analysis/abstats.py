"""Statistics for many runs per side: interleaved blocks (``inferperf ab``) or groups of runs.

Between two runs a machine drifts (clock, cache, neighbours) by more than the rounds inside one
run can show; judged by its rounds alone, an unchanged build "changes" (Abedi & Brecht 2017).
So the unit of evidence is the **process**: each run's median time. Two designs:

- **Paired blocks** (``inferperf ab``): each block runs both sides once, in a seeded random order,
  in fresh processes. Per case and block, ``d = log(median candidate / median base)``; the
  estimate is the mean of the ``d`` (a geometric-mean ratio). Its interval is a **two-level
  bootstrap** (Kalibera & Jones 2013): resample blocks, then rounds within each process, and
  recompute. Significance is a **paired sign-flip (permutation) test** on the ``d``: the random
  order within each block makes base and candidate exchangeable under "no change", so flipping
  the signs of ``d`` gives the exact null distribution (all 2^n flips up to n = 16 blocks, else
  20,000 random flips).
- **Unpaired groups** (``inferperf compare --base … --candidate …`` with different counts): the
  difference of the mean log medians, a two-level bootstrap within each side, and a permutation
  test that shuffles the process labels.

Verdicts: ``slower``/``faster`` need ``p < alpha`` and an estimate beyond ``--min-change``
(symmetric in log space); ``same`` needs the whole interval inside the ``--min-change`` band;
anything else is ``inconclusive`` — too few blocks to tell.

Blocks needed: with ``sigma`` the block-to-block standard deviation of ``d`` (measured by an A/A
run), detecting a change of ``log(1 + m)`` at level ``alpha`` with power ``1 - beta`` takes about
``((z(1 - alpha/2) + z(1 - beta)) * sigma / log(1 + m))^2`` blocks (the normal approximation of
the paired test).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import numpy.typing as npt

from inferperf.analysis.settings import DEFAULT_BOOTSTRAP
from inferperf.analysis.stats import symmetric_interval

AbVerdict = Literal["slower", "faster", "same", "inconclusive"]
Design = Literal["paired", "unpaired"]

#: below this many blocks the sign-flip test enumerates every flip
EXACT_FLIPS_UP_TO = 16
RANDOM_FLIPS = 20_000


@dataclass(frozen=True)
class ProcessSamples:
    """One process's raw round times of one case (seconds), and its median."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return float(np.median(self.samples))


@dataclass(frozen=True)
class AbEstimate:
    """Candidate over base: ``ratio`` of times (> 1: slower) with its interval and p-value."""

    ratio: float
    low: float
    high: float
    p_value: float
    blocks: int
    design: Design
    #: block-to-block standard deviation of the log ratios (paired) or of the log medians (unpaired)
    sigma: float

    @property
    def change(self) -> float:
        return self.ratio - 1.0


def _rng(*parts: npt.ArrayLike) -> np.random.Generator:
    """A generator seeded from the data, so the same runs always give the same answer."""
    digest = hashlib.blake2b(digest_size=8)
    for part in parts:
        digest.update(np.sort(np.asarray(part, dtype=np.float64)).tobytes())
    return np.random.default_rng(int.from_bytes(digest.digest(), "little"))


def _replicates(processes: Sequence[ProcessSamples], rng: np.random.Generator, count: int) -> np.ndarray:
    """Level 2 of the bootstrap: ``count`` log medians per process from its rounds resampled, shape (processes, count)."""
    rows = []
    for process in processes:
        samples = np.asarray(process.samples, dtype=np.float64)
        rows.append(np.log(np.median(samples[rng.integers(0, len(samples), size=(count, len(samples)))], axis=1)))
    return np.stack(rows)


def _log_medians(processes: Sequence[ProcessSamples]) -> np.ndarray:
    return np.log([p.median for p in processes])


def _group_bootstrap(processes: Sequence[ProcessSamples], rng: np.random.Generator, resamples: int) -> np.ndarray:
    """Two-level bootstrap of one group's mean log median: processes resampled, then each one's rounds."""
    replicates = _replicates(processes, rng, resamples)  # drawn before the picks: the answer for given runs stays the same
    picks = rng.integers(0, len(processes), size=(resamples, len(processes)))
    return _draw(replicates, picks, rng).mean(axis=1)


def _draw(replicates: np.ndarray, picks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For every picked process (level 1), one of its resampled log medians (level 2)."""
    return replicates[picks, rng.integers(0, replicates.shape[1], size=picks.shape)]


def sign_flip_p(differences: npt.ArrayLike, rng: np.random.Generator | None = None) -> float:
    """Two-sided p-value of the paired sign-flip test of ``mean(differences) == 0``.

    Parameters
    ----------
    differences : sequence of float
        One log ratio per block.
    rng : numpy.random.Generator, optional
        For the random flips beyond ``EXACT_FLIPS_UP_TO`` blocks.

    Returns
    -------
    float
        The fraction of sign assignments whose ``|mean|`` is at least the observed one
        (counting the observed assignment, so never 0).
    """
    d = np.asarray(differences, dtype=np.float64)
    if len(d) == 0 or not np.any(d):
        return 1.0
    observed = abs(d.mean()) * (1 - 1e-12)
    if len(d) <= EXACT_FLIPS_UP_TO:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(d))))
        means = np.abs(signs @ d) / len(d)
        return float(np.mean(means >= observed))
    rng = rng or _rng(d)
    signs = rng.choice((1.0, -1.0), size=(RANDOM_FLIPS, len(d)))
    means = np.abs(signs @ d) / len(d)
    return float((np.sum(means >= observed) + 1) / (RANDOM_FLIPS + 1))


def min_sign_flip_p(blocks: int) -> float:
    """The smallest p-value the sign-flip test can give with ``blocks`` blocks: 2 / 2^n."""
    return min(1.0, 2.0 / 2**blocks) if blocks <= 60 else 0.0


class PairedBlocks:
    """Blocks of paired processes, with each process's level-2 bootstrap replicates computed once.

    ``estimate(indices)`` judges any subset of the blocks (what ``detection-power --ab`` does a
    thousand times per pool) without resampling the rounds again.
    """

    def __init__(self, base: Sequence[ProcessSamples], candidate: Sequence[ProcessSamples], resamples: int = DEFAULT_BOOTSTRAP) -> None:
        if len(base) != len(candidate) or not base:
            raise ValueError("paired blocks need the same, non-zero number of runs per side")
        log_base, log_candidate = _log_medians(base), _log_medians(candidate)
        self.d = log_candidate - log_base
        self.rng = _rng(log_base, log_candidate)
        self.resamples = resamples
        self.replicates = _replicates(candidate, self.rng, resamples) - _replicates(base, self.rng, resamples)

    def estimate(self, indices: Sequence[int] | None = None, *, confidence: float) -> AbEstimate:
        chosen = np.arange(len(self.d)) if indices is None else np.asarray(indices)
        d = self.d[chosen]
        n = len(d)
        # level 1: blocks (both sides of a block together); level 2: one of its resampled differences
        picks = chosen[self.rng.integers(0, n, size=(self.resamples, n))]
        boot = _draw(self.replicates, picks, self.rng).mean(axis=1)
        low, high = symmetric_interval(boot, confidence)
        return AbEstimate(
            ratio=math.exp(float(d.mean())),
            low=math.exp(low),
            high=math.exp(high),
            p_value=sign_flip_p(d, self.rng),
            blocks=n,
            design="paired",
            sigma=float(np.std(d, ddof=1)) if n > 1 else math.nan,
        )


def paired_estimate(
    base: Sequence[ProcessSamples],
    candidate: Sequence[ProcessSamples],
    *,
    confidence: float,
    resamples: int = DEFAULT_BOOTSTRAP,
) -> AbEstimate:
    """Blocks ``i`` pair ``base[i]`` with ``candidate[i]``: geometric-mean ratio, two-level bootstrap, sign-flip test.

    Parameters
    ----------
    base, candidate : sequence of ProcessSamples
        One process per block and side, in block order.
    confidence : float
        Coverage of the interval.
    resamples : int
        Bootstrap resamples.

    Returns
    -------
    AbEstimate
        ``design == "paired"``; ``sigma`` is the block-to-block standard deviation of the log ratios.
    """
    return PairedBlocks(base, candidate, resamples).estimate(confidence=confidence)


def unpaired_estimate(
    base: Sequence[ProcessSamples],
    candidate: Sequence[ProcessSamples],
    *,
    confidence: float,
    resamples: int = DEFAULT_BOOTSTRAP,
    permutations: int = RANDOM_FLIPS,
) -> AbEstimate:
    """Groups of runs per side: difference of mean log medians, two-level bootstrap, label permutation."""
    if not base or not candidate:
        raise ValueError("each side needs at least one run")
    log_base, log_candidate = _log_medians(base), _log_medians(candidate)
    rng = _rng(log_base, log_candidate)
    boot_b = _group_bootstrap(base, rng, resamples)
    boot_c = _group_bootstrap(candidate, rng, resamples)
    low, high = symmetric_interval(boot_c - boot_b, confidence)
    observed = abs(log_candidate.mean() - log_base.mean()) * (1 - 1e-12)
    pooled = np.concatenate([log_base, log_candidate])
    shuffled = rng.permuted(np.tile(pooled, (permutations, 1)), axis=1)
    hits = int(np.sum(np.abs(shuffled[:, len(base) :].mean(axis=1) - shuffled[:, : len(base)].mean(axis=1)) >= observed))
    spread = np.concatenate([log_base - log_base.mean(), log_candidate - log_candidate.mean()])
    return AbEstimate(
        ratio=math.exp(float(log_candidate.mean() - log_base.mean())),
        low=math.exp(low),
        high=math.exp(high),
        p_value=float((hits + 1) / (permutations + 1)),
        blocks=min(len(base), len(candidate)),
        design="unpaired",
        sigma=float(np.std(spread, ddof=2)) if len(spread) > 2 else math.nan,
    )


def ab_verdict(estimate: AbEstimate, *, min_change: float, alpha: float) -> AbVerdict:
    """``slower``/``faster`` (significant and beyond the band), ``same`` (interval inside it), else ``inconclusive``."""
    upper, lower = 1.0 + min_change, 1.0 / (1.0 + min_change)
    if estimate.p_value < alpha and estimate.ratio >= upper:
        return "slower"
    if estimate.p_value < alpha and estimate.ratio <= lower:
        return "faster"
    if lower < estimate.low and estimate.high < upper:
        return "same"
    return "inconclusive"


def blocks_needed(sigma: float, *, min_change: float, alpha: float, power: float = 0.95) -> int | None:
    """Blocks for the paired test to detect ``min_change`` with ``power`` at ``alpha`` (normal approximation)."""
    if not math.isfinite(sigma) or sigma <= 0 or min_change <= 0:
        return None
    from scipy import (
        stats as sps,  # imported when needed: scipy.stats is slow to import
    )

    z = float(sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power))
    return max(int(math.ceil((z * sigma / math.log1p(min_change)) ** 2)), 6)


def look_schedule(max_blocks: int, first: int = 5) -> list[int]:
    """The blocks after which ``--until-decided`` looks: 5, 10, 20, 40, … and ``max_blocks``."""
    looks, k = [], first
    while k < max_blocks:
        looks.append(k)
        k *= 2
    return [*looks, max_blocks]


def spent_alpha(alpha: float, looks: int) -> float:
    """The level each look tests at: ``alpha / looks`` (Bonferroni spending keeps the overall rate <= alpha)."""
    return alpha / max(1, looks)
