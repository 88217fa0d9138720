"""The loader's fast path for a fleet's files: every check of ``load._benchmark`` made column by
column over all benchmarks of a run at once.

A run of 25,000 benchmarks is half a million round times and a million ``extra_info`` values;
checked one by one in Python that took longer than all the statistics of a comparison. Here the
checks are whole-column operations (the set of types seen in a column, numpy over its numbers).
The fast path accepts only runs the case-by-case checks accept too, in the commonest shape
(every time a float, every summary value present): ``benchmarks`` returns None for anything else
— any problem, any unusual but valid shape — and the loader then checks case by case, which names
each problem. ``tests/test_bulk_loader.py`` holds the two paths to the same answers.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import chain
from typing import Any, Mapping, Sequence

import numpy as np

from inferperf.record.keys import Key
from inferperf.record.run import Benchmark, Summary
from inferperf.record.values import finite_number

_NUMBER_TYPES = {float, int}


def benchmarks(raws: Sequence[Any], keys: Mapping[str, Key] | None) -> dict[str, Benchmark] | None:
    """The run's benchmarks by case id when every check passes, else None (check case by case).

    ``keys``: the documented ``extra_info`` keys whose types are checked (an inferperf run), or
    None for a plain pytest-benchmark run.
    """
    if not raws or any(type(raw) is not dict for raw in raws):
        return None
    for field in ("name", "fullname"):
        if not {type(raw[field]) for raw in raws if field in raw} <= {str}:
            return None
    extras = [raw.get("extra_info", {}) for raw in raws]
    options = [raw.get("options") for raw in raws]
    stats = [raw.get("stats") for raw in raws]
    if any(type(extra) is not dict for extra in extras) or any(type(s) is not dict for s in stats):
        return None
    if not {type(o) for o in options} <= {dict, type(None)}:
        return None
    if keys is not None and not _extras_fine(extras, keys):
        return None
    summaries = _summaries(stats)
    if summaries is None:
        return None
    samples = _samples(stats, [s.rounds for s in summaries])
    if samples is None:
        return None
    case_ids = [extra.get("case_id") or raw.get("fullname") or raw.get("name") for raw, extra in zip(raws, extras)]
    if any(type(c) is not str or not c for c in case_ids) or len(set(case_ids)) != len(case_ids):
        return None
    found = {}
    for index, (raw, extra, option, summary, times, case_id) in enumerate(zip(raws, extras, options, summaries, samples, case_ids)):
        timer = option.get("timer") if option else None
        name = raw.get("fullname") or raw.get("name") or f"benchmarks[{index}]"
        found[case_id] = Benchmark(case_id, name, summary, times, dict(extra), str(timer) if timer else None)
    return found


def _extras_fine(extras: list[dict[str, Any]], keys: Mapping[str, Key]) -> bool:
    """No documented key of any ``extra_info`` has a value of the wrong type or out of its range."""
    types_of: dict[str, set[type]] = defaultdict(set)
    for name, kind_of in {(name, type(value)) for extra in extras for name, value in extra.items()}:
        types_of[name].add(kind_of)
    for name, kinds in types_of.items():
        key = keys.get(name)
        if key is None or kinds <= key.plain_types:
            continue
        if not kinds <= key.plain_types | key.number_types:
            return False
        # a column of numbers and nulls: null reads as NaN, so NaNs beyond the nulls are NaNs
        column = [extra.get(name) for extra in extras]
        if not kinds <= {float, int, type(None)}:  # a key of several kinds: its numbers alone
            column = [v for v in column if type(v) in key.number_types]
        try:
            numbers = np.asarray(column, dtype=np.float64)
        except OverflowError:  # an integer no float holds: the one-by-one check says which
            return False
        if int(np.count_nonzero(np.isnan(numbers))) != column.count(None) or bool(np.any(np.isinf(numbers))):
            return False
        if not _meets(key.constraint, numbers[~np.isnan(numbers)]):
            return False
    return True


def _meets(constraint: str, numbers: np.ndarray) -> bool:
    if constraint == "positive":
        return bool(np.all(numbers > 0))
    if constraint == "nonnegative":
        return bool(np.all(numbers >= 0))
    if constraint == "fraction":
        return bool(np.all((numbers >= 0) & (numbers <= 1)))
    return True


def _column(stats: list[dict[str, Any]], name: str) -> np.ndarray | None:
    """One summary statistic of every benchmark, when each is a finite float or int."""
    try:
        values = [s[name] for s in stats]
    except KeyError:
        return None
    if not {type(v) for v in values} <= _NUMBER_TYPES or any(type(v) is int and abs(v) >= 1 << 53 for v in values):
        return None
    column = np.asarray(values, dtype=np.float64)
    return column if bool(np.all(np.isfinite(column))) else None


def _summaries(stats: list[dict[str, Any]]) -> list[Summary] | None:
    found = [_column(stats, name) for name in ("min", "max", "mean", "median", "stddev")]
    rounds: list[Any] = [s.get("rounds") for s in stats]
    columns = [c for c in found if c is not None]
    if len(columns) < len(found) or not {type(r) for r in rounds} <= {int}:
        return None
    low, high, mean, middle, stddev = columns
    if not all(bool(np.all(times > 0)) for times in (low, high, mean, middle)) or not bool(np.all(stddev >= 0)):
        return None
    if min(rounds) < 1 or not bool(np.all((low <= middle) & (middle <= high))):
        return None
    iqrs = [finite_number(s.get("iqr")) for s in stats]
    kept = [v if v is not None and v >= 0 else None for v in iqrs]  # the one-by-one path drops the rest too
    return [
        Summary(min=a, max=b, mean=c, stddev=d, median=e, rounds=r, iqr=q)
        for a, b, c, d, e, r, q in zip(low.tolist(), high.tolist(), mean.tolist(), stddev.tolist(), middle.tolist(), rounds, kept)
    ]


def _samples(stats: list[dict[str, Any]], rounds: list[int]) -> list[tuple[float, ...] | None] | None:
    """Every benchmark's raw round times (None where none were saved), when every one is a
    positive finite float and there are as many as its rounds."""
    datas = [s.get("data") for s in stats]
    kept = [d for d in datas if d is not None]
    if not kept:
        return [None] * len(stats)
    if any(type(d) is not list or not d for d in kept):
        return None
    if any(d is not None and len(d) != r for d, r in zip(datas, rounds)):
        return None
    if set(map(type, chain.from_iterable(kept))) != {float}:
        return None
    times = np.fromiter(chain.from_iterable(kept), dtype=np.float64, count=sum(map(len, kept)))
    if not bool(np.all(np.isfinite(times) & (times > 0))):
        return None
    return [None if d is None else tuple(d) for d in datas]
