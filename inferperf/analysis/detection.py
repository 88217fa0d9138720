"""How well does ``inferperf compare`` tell a real slowdown from noise on this machine?

Each trial measures a workload twice, as two separate runs would (one block of rounds, then the
other): unchanged (A/A) and with a known slowdown injected by doing proportionally more of the
same work (1% slower = 101 work units instead of 100). The two blocks go through the same
statistics and verdict as ``inferperf compare``. The detection rate per slowdown and the
false-alarm rate (A/A trials called faster or slower) come out per number of rounds.

The workload is numpy only (no torch), a chain of small matrix products, so the experiment
runs anywhere in a few minutes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from inferperf.analysis.exact import exact_ratio
from inferperf.analysis.stats import RatioEstimate, verdict

#: a slowdown of 0.0 is the A/A condition
DEFAULT_SLOWDOWNS: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05, 0.10)
BASE_UNITS = 100

#: measures ``rounds`` round times of a workload of ``units`` work units
Measure = Callable[[int, int], list[float]]


def matrix_chain(units: int, size: int = 96) -> Callable[[], np.ndarray]:
    """The known work both power experiments time: ``units`` chained ``size``-square float64
    products (about 40 us each here), so 5% slower is 5% more units of the same work."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size))
    b = rng.standard_normal((size, size)) / size

    def chain() -> np.ndarray:
        x = a
        for _ in range(units):
            x = x @ b
        return x

    return chain


def numpy_workload(size: int = 96) -> Measure:
    """Round times of ``units`` work units of ``matrix_chain``, the first round a warm-up."""

    def measure(units: int, rounds: int) -> list[float]:
        chain = matrix_chain(units, size)
        times = []
        for _ in range(rounds + 1):  # first round is a warm-up
            start = time.perf_counter()
            chain()
            times.append(time.perf_counter() - start)
        return times[1:]

    return measure


@dataclass(frozen=True)
class Trial:
    """One A/B (or A/A) comparison: the contender/base ratio of medians and its p-value."""

    rounds: int
    slowdown: float
    ratio: float
    p_value: float


@dataclass(frozen=True)
class DetectionRow:
    rounds: int
    slowdown: float
    trials: int
    #: fraction of trials called "slower" (for slowdown 0: called slower or faster = false alarm)
    rate: float


def run_trials(
    measure: Measure,
    *,
    rounds_options: Sequence[int],
    slowdowns: Sequence[float] = DEFAULT_SLOWDOWNS,
    trials: int,
    progress: Callable[[str], None] | None = None,
) -> list[Trial]:
    """Measure every (rounds, slowdown) cell ``trials`` times; verdicts are applied afterwards,
    so one experiment answers for any ``--min-change``."""
    results = []
    for rounds in rounds_options:
        for slowdown in slowdowns:
            for _ in range(trials):
                base = measure(BASE_UNITS, rounds)
                contender = measure(int(round(BASE_UNITS * (1 + slowdown))), rounds)
                estimate = exact_ratio(base, contender)
                results.append(Trial(rounds, slowdown, estimate.ratio, estimate.p_value))
            if progress is not None:
                progress(f"rounds={rounds} slowdown={slowdown:.0%}: {trials} trials")
    return results


def _called(trial: Trial, min_change: float, alpha: float) -> bool:
    estimate = RatioEstimate(trial.ratio, trial.ratio, trial.ratio, trial.p_value, "exact")
    called = verdict(estimate, min_change=min_change, alpha=alpha)
    return called != "same" if trial.slowdown == 0 else called == "slower"


def detection_rows(trials: Sequence[Trial], *, min_change: float, alpha: float) -> list[DetectionRow]:
    """Detection rate per (rounds, slowdown) under ``compare``'s verdict at these settings."""
    cells: dict[tuple[int, float], list[Trial]] = {}
    for trial in trials:
        cells.setdefault((trial.rounds, trial.slowdown), []).append(trial)
    return [
        DetectionRow(rounds, slowdown, len(cell), sum(_called(t, min_change, alpha) for t in cell) / len(cell))
        for (rounds, slowdown), cell in sorted(cells.items())
    ]


def noise_floor(trials: Sequence[Trial], rounds: int, *, alpha: float, false_alarms: float = 0.01) -> float | None:
    """The smallest ``--min-change`` that keeps A/A false alarms at or below ``false_alarms``.

    Between two separate runs a machine drifts (frequency, neighbours, caches) by more than the
    rounds inside one run can show, so significance alone flags unchanged code; the effect
    threshold has to sit above that drift. Returns None without A/A trials for ``rounds``.
    """
    same = [t for t in trials if t.rounds == rounds and t.slowdown == 0]
    if not same:
        return None
    # |log ratio| of the A/A trials the test found significant, largest first: the floor sits
    # just above the one that would make the false-alarm count exceed its allowance
    shifts = sorted((abs(math.log(t.ratio)) for t in same if t.p_value < alpha), reverse=True)
    allowed = int(math.floor(false_alarms * len(same) + 1e-9))
    if len(shifts) <= allowed:
        return 0.0
    return math.exp(shifts[allowed]) * (1 + 1e-6) - 1


def render_rows(rows: Sequence[DetectionRow], min_change: float, alpha: float) -> str:
    slowdowns = sorted({r.slowdown for r in rows})
    rounds_options = sorted({r.rounds for r in rows})
    header = ["rounds", *("false alarms (A/A)" if s == 0 else f"{s:.0%} detected" for s in slowdowns)]
    lines = [
        f"Detection with min-change {min_change:.1%}, alpha {alpha} ({rows[0].trials} trials per cell)" if rows else "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lookup = {(r.rounds, r.slowdown): r.rate for r in rows}
    for rounds in rounds_options:
        lines.append("| " + " | ".join([str(rounds), *(f"{lookup[rounds, s]:.0%}" for s in slowdowns)]) + " |")
    return "\n".join(lines) + "\n"


def render_report(trials: Sequence[Trial], *, min_change: float, alpha: float) -> str:
    """The table at the given settings, then this machine's noise floor and the table at it."""
    text = render_rows(detection_rows(trials, min_change=min_change, alpha=alpha), min_change, alpha)
    rounds_options = sorted({t.rounds for t in trials})
    floors = {rounds: noise_floor(trials, rounds, alpha=alpha) for rounds in rounds_options}
    known = {rounds: floor for rounds, floor in floors.items() if floor is not None}
    if not known:
        return text
    text += "\nNoise floor: the smallest --min-change keeping A/A false alarms at or below 1%\n"
    text += "| rounds | noise floor | A/A ratio, 5th-95th percentile |\n|---|---|---|\n"
    for rounds, floor in known.items():
        ratios = [t.ratio for t in trials if t.rounds == rounds and t.slowdown == 0]
        low, high = np.percentile(ratios, [5, 95])
        text += f"| {rounds} | {floor:.1%} | {low:.3f}-{high:.3f} |\n"
    for rounds, floor in known.items():
        if floor > min_change:
            rows = [r for r in detection_rows(trials, min_change=floor, alpha=alpha) if r.rounds == rounds]
            text += "\n" + render_rows(rows, floor, alpha)
    return text
