"""The one summary of a latency distribution: percentiles, and a distribution-free interval around each.

Every latency the suite reports as a percentile — local generation's TTFT and per-token gaps, the
served cases' TTFT/TPOT/ITL/E2E, Triton's request latencies under load — goes through
``percentile`` (one value) or ``distribution`` (the record's summary of many), so a p99 means the
same thing in every case: numpy's linear interpolation between order statistics.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

#: the percentiles of each latency a served record carries (99.9 written p999)
PERCENTILES: tuple[float, ...] = (50, 90, 99, 99.9)
#: confidence of the distribution-free interval around each percentile
PERCENTILE_CONFIDENCE = 0.95


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (linear interpolation, numpy's default), None for no values."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else None


def percentile_key(q: float) -> str:
    """50 -> ``p50``, 99.9 -> ``p999``."""
    return "p" + (str(int(q)) if float(q).is_integer() else str(q).replace(".", ""))


def percentile_interval(sorted_values: np.ndarray, q: float, confidence: float = PERCENTILE_CONFIDENCE) -> tuple[float, float] | None:
    """A distribution-free interval for the ``q``-th percentile: the order statistics whose ranks
    bracket a Binomial(n, q/100) draw with ``confidence`` (no resampling; exact for any distribution).
    None when there are too few values to reach that confidence on both sides."""
    from scipy.stats import binom

    n = len(sorted_values)
    if n < 2:
        return None
    tail = (1 - confidence) / 2
    lower_rank = int(binom.ppf(tail, n, q / 100))  # P(B < lower_rank) <= tail
    upper_rank = int(binom.ppf(1 - tail, n, q / 100)) + 1
    if lower_rank < 1 or upper_rank > n:
        return None
    return float(sorted_values[lower_rank - 1]), float(sorted_values[upper_rank - 1])


def distribution(values: Sequence[float], percentiles: Sequence[float] = PERCENTILES) -> dict[str, object] | None:
    """n, mean, max and each percentile of ``values`` with a 95% interval around it (None: no values)."""
    if not len(values):
        return None
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    summary: dict[str, object] = {"n": int(len(ordered)), "mean": float(ordered.mean()), "max": float(ordered[-1])}
    for q in percentiles:
        name = percentile_key(q)
        summary[name] = float(np.percentile(ordered, q))
        interval = percentile_interval(ordered, q)
        summary[f"{name}_ci"] = list(interval) if interval else None
    return summary


def value(summary: Mapping[str, object] | None, name: str) -> float | None:
    """One figure of a ``distribution`` summary (``p99``, ``mean``, …), None where there is none."""
    if summary is None:
        return None
    found = summary.get(name)
    return float(found) if isinstance(found, (int, float)) else None
