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

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from inferperf.analysis.stats import bootstrap_ratio, verdict

#: a slowdown of 0.0 is the A/A condition
DEFAULT_SLOWDOWNS: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05, 0.10)
BASE_UNITS = 100

#: measures ``rounds`` round times of a workload of ``units`` work units
Measure = Callable[[int, int], list[float]]


def numpy_workload(size: int = 96) -> Measure:
    """Round times of ``units`` chained ``size``-square float64 products (about 40 us each here)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size))
    b = rng.standard_normal((size, size)) / size

    def measure(units: int, rounds: int) -> list[float]:
        times = []
        x = a
        for _ in range(rounds + 1):  # first round is a warm-up
            start = time.perf_counter()
            x = a
            for _ in range(units):
                x = x @ b
            times.append(time.perf_counter() - start)
        return times[1:]

    return measure


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
    min_change: float,
    alpha: float,
    progress: Callable[[str], None] | None = None,
) -> list[DetectionRow]:
    rows = []
    for rounds in rounds_options:
        for slowdown in slowdowns:
            flagged = 0
            for _ in range(trials):
                base = measure(BASE_UNITS, rounds)
                contender = measure(int(round(BASE_UNITS * (1 + slowdown))), rounds)
                called = verdict(bootstrap_ratio(base, contender, resamples=500), min_change=min_change, alpha=alpha)
                flagged += called != "same" if slowdown == 0 else called == "slower"
            rows.append(DetectionRow(rounds, slowdown, trials, flagged / trials))
            if progress is not None:
                progress(f"rounds={rounds} slowdown={slowdown:.0%}: {flagged}/{trials}")
    return rows


def render_rows(rows: Sequence[DetectionRow], min_change: float, alpha: float) -> str:
    slowdowns = sorted({r.slowdown for r in rows})
    rounds_options = sorted({r.rounds for r in rows})
    header = ["rounds", *("false alarms (A/A)" if s == 0 else f"{s:.0%} detected" for s in slowdowns)]
    lines = [
        f"Detection with min-change {min_change:.0%}, alpha {alpha} ({rows[0].trials} trials per cell)" if rows else "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lookup = {(r.rounds, r.slowdown): r.rate for r in rows}
    for rounds in rounds_options:
        lines.append("| " + " | ".join([str(rounds), *(f"{lookup[rounds, s]:.0%}" for s in slowdowns)]) + " |")
    return "\n".join(lines) + "\n"
