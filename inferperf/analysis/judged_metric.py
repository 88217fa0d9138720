"""``--metric KEY``: judge a per-round metric of the record instead of the round time.

A case that keeps per-round values (``extra_info.round_metrics[KEY]``, one per timed round: the
generation and served cases) can be judged on any of them by ``compare``, ``history`` and ``ab``
with the same statistics and verdicts as the round time. Each benchmark of a run is replaced by
one whose "seconds per round" are that metric's per-round values; a case without the metric
leaves the comparison (and the command says how many did).

A pure transform: ``judged_on(run, key)`` returns a new run and the cases it left out; the loader
and the runs it returns are untouched, so a command applies it where it judges, and nothing else
in the process changes what it reads.

Direction: every statistic of the suite reads lower as better. A metric where higher is better
(a name ending ``_per_s`` or ``_rps``, or ``good_fraction``) is judged on its reciprocal, so a
verdict "slower" means "worse" either way and the ratio of medians is the inverse ratio of the
metric (the median of reciprocals is the reciprocal of the median).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal, Mapping, Sequence

import numpy as np

from inferperf.analysis.settings import SettingError
from inferperf.record.run import Benchmark, Run, Summary

Direction = Literal["lower", "higher"]
_HIGHER_SUFFIXES = ("_per_s", "_rps")
_HIGHER_NAMES = ("good_fraction",)

#: the per-round metrics cases record (technique 6 local: generation_metrics; served: round_summary)
KNOWN: tuple[str, ...] = (
    "ttft_s", "tpot_s", "output_tokens_per_s",
    "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s", "e2e_p99_s", "goodput_rps", "error_rate",
)


def check_key(key: str) -> None:
    """A --metric the records cannot carry is bad input (UsageError: one line, exit 2)."""
    if key not in KNOWN:
        raise SettingError(f"--metric: {key!r} is not a per-round metric; known: {', '.join(KNOWN)}")


def direction(key: str) -> Direction:
    return "higher" if key.endswith(_HIGHER_SUFFIXES) or key in _HIGHER_NAMES else "lower"


def per_round_values(extra: Mapping[str, object], key: str) -> tuple[float, ...] | None:
    """The case's per-round values of ``key``, as "lower is better" positive numbers, or None."""
    rounds = extra.get("round_metrics")
    values = rounds.get(key) if isinstance(rounds, Mapping) else None
    if not isinstance(values, list) or not values:
        return None
    kept = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0]
    if len(kept) != len(values):
        return None  # a round without the value (no completed request, say): the case cannot be judged on it
    return tuple(1.0 / v for v in kept) if direction(key) == "higher" else tuple(kept)


@dataclass(frozen=True)
class Judged:
    """Runs as judged on a metric, and the cases left out for want of it."""

    runs: list[Run]
    left_out: frozenset[str]


def _judged_benchmark(bench: Benchmark, key: str) -> Benchmark | None:
    values = per_round_values(bench.extra, key)
    if values is None:
        return None
    array = np.asarray(values)
    q1, q3 = np.percentile(array, [25, 75])
    summary = Summary(min=float(array.min()), max=float(array.max()), mean=float(array.mean()),
                      stddev=float(array.std(ddof=1)) if len(array) > 1 else 0.0, median=float(np.median(array)),
                      rounds=len(array), iqr=float(q3 - q1))
    # items/s is the round's own notion: a metric has one item per round
    extra = {**bench.extra, "items_per_round": 1, "items_per_s": None, "judged_metric": key}
    return replace(bench, samples=values, summary=summary, extra=extra)


def judged_on(runs: Sequence[Run], key: str | None) -> Judged:
    """``runs`` with every benchmark's samples and summary replaced by ``key``'s per-round values
    (``key`` None: the runs as they are). A case without the metric is dropped and named."""
    if key is None:
        return Judged(list(runs), frozenset())
    judged, left_out = [], set()
    for run in runs:
        kept = {}
        for case_id, bench in run.benchmarks.items():
            new = _judged_benchmark(bench, key)
            if new is None:
                left_out.add(case_id)
            else:
                kept[case_id] = new
        judged.append(replace(run, benchmarks=kept))
    return Judged(judged, frozenset(left_out))


def describe(key: str) -> str:
    """How the command's output names what it judged."""
    if direction(key) == "higher":
        return f"judging {key} (higher is better: judged on its reciprocal, 'slower' reads 'worse')"
    return f"judging {key} (per timed round; lower is better)"
