"""``stats.log_median_se`` for many series at once: the same numbers, computed in bulk.

History holds a year of nightly runs of hundreds of cases; per night and case, ``log_median_se``
draws 400 bootstrap medians. Here the same estimates are computed across cases with whole-array
operations, and **every value is identical to the one-case function's** (``tests/test_batch_stats.py``
holds them against each other on random inputs):

- *Bootstrap medians.* Each side keeps its own generator, seeded from its sorted samples exactly as
  ``stats.bootstrap_medians`` seeds it. Its draws are reproduced from the generator's raw 64-bit
  outputs the way numpy's ``Generator.integers`` turns them into indices below ``n`` (Lemire's
  multiply-shift on each 32-bit half, low half first): ``index = (u32 * n) >> 32``. Where that
  method would reject a draw and take another (a leftover below its threshold, about once in
  10^8 draws for n = 20) the side is recomputed the one-case way. Because ``index`` grows with
  ``u32`` and the samples are sorted, a resample's median is found by selecting the middle order
  statistics of its raw draws (``numpy.partition``) and mapping only those to indices — the value
  ``numpy.median`` returns for the same resample, bit for bit ((a + b) / 2 for an even count).

(``compare`` no longer draws at all: ``inferperf.analysis.exact``.)
"""

from __future__ import annotations

import multiprocessing
import os
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from typing import Any, Callable, Sequence

import numpy as np

from inferperf.analysis.settings import DEFAULT_BOOTSTRAP
from inferperf.analysis.stats import (
    _seed,
    bootstrap_medians,
)

#: raw draws held at once per chunk of sides (uint32: 4 bytes each, 32 MiB a chunk)
CHUNK_DRAWS = 1 << 23
#: below this many draws in all, worker processes cost more than they save
PARALLEL_DRAWS = 1 << 26
_LOW32 = np.uint64(0xFFFFFFFF)


def _draws(seed: int, count: int) -> np.ndarray:
    """The first ``count`` 32-bit draws ``Generator.integers`` takes from ``default_rng(seed)``."""
    raw = np.random.PCG64(seed).random_raw((count + 1) // 2)
    # little-endian uint32 view of each 64-bit output: its low half, then its high half — the order
    # PCG64's buffered next_uint32 hands them out
    return raw.view(np.uint32)[:count]


@cache
def _selection_network(n: int, outputs: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Compare-exchanges that put the order statistics ``outputs`` of ``n`` values in place.

    Batcher's odd-even merge sort for the next power of two, without the comparators that touch a
    position >= n (those would only move padding that sorts last) nor those no output depends on.
    """
    size = 1
    while size < n:
        size *= 2
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    live, kept = set(outputs), []
    for a, b in reversed([(a, b) for a, b in pairs if b < n]):
        if a in live or b in live:
            kept.append((a, b))
            live |= {a, b}
    return tuple(reversed(kept))


@cache
def _bucket_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """For each high half h of a draw: the smallest and largest index ``(u * n) >> 32`` of a draw in it."""
    h = np.arange(1 << 16, dtype=np.uint64)
    low = (h << np.uint64(16)) * np.uint64(n) >> np.uint64(32)
    high = (((h + np.uint64(1)) << np.uint64(16)) - np.uint64(1)) * np.uint64(n) >> np.uint64(32)
    return low.astype(np.intp), high.astype(np.intp)


def _middle_indices(rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The indices ``(u * n) >> 32`` of each row's middle order statistics ((n-1)//2 and n//2).

    The index grows with the draw, so the order statistics of the indices are the indices of the
    draws' order statistics; and those of the draws' high 16 bits are the high bits of theirs. A
    selection network on the high halves (the rows as columns: a few vector operations over the
    whole chunk, where ``numpy.partition`` works row by row) gives each row's middle high halves; a
    half holding a single index settles it, and the rare rows whose half straddles an index
    boundary (about n in 65,536) are settled from their full draws.
    """
    low, high = (n - 1) // 2, n // 2
    columns = [np.ascontiguousarray(c) for c in (rows >> np.uint32(16)).astype(np.uint16).T]
    spare = np.empty_like(columns[0])
    for a, b in _selection_network(n, (low, high)):
        np.minimum(columns[a], columns[b], out=spare)
        np.maximum(columns[a], columns[b], out=columns[b])
        columns[a], spare = spare, columns[a]
    smallest, largest = _bucket_indices(n)
    found = []
    for position in (low, high):
        half = columns[position]
        index = smallest[half]
        unsettled = np.flatnonzero(index != largest[half])
        if unsettled.size:
            exact = np.partition(rows[unsettled], position, axis=-1)[:, position].astype(np.uint64)
            index[unsettled] = ((exact * np.uint64(n)) >> np.uint64(32)).astype(np.intp)
        found.append(index)
    return found[0], found[1]


def _medians_of_group(sorted_values: np.ndarray, seeds: Sequence[int], resamples: int) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap medians of sides that all have ``n`` samples: (medians per side, rejected mask)."""
    sides, n = sorted_values.shape
    draws = np.stack([_draws(seed, resamples * n) for seed in seeds])  # (sides, resamples * n) uint32
    # Lemire rejects a draw when its leftover (u32 * n mod 2^32) is below (2^32 - n) % n < n:
    # leftover < n flags every such draw (and a few harmless others, which take the slow path too)
    rejected = ((draws * np.uint32(n)) < np.uint32(n)).any(axis=1)
    index_low, index_high = _middle_indices(draws.reshape(sides * resamples, n), n)
    side = np.repeat(np.arange(sides), resamples)
    medians = (sorted_values[side, index_low] + sorted_values[side, index_high]) / 2
    return medians.reshape(sides, resamples), rejected


def bootstrap_medians_many(samples: Sequence[Any], resamples: int = DEFAULT_BOOTSTRAP) -> list[np.ndarray]:
    """``stats.bootstrap_medians(s, resamples)`` for every ``s`` in ``samples``, in bulk.

    Parameters
    ----------
    samples : sequence of sequences of float
        Raw seconds per round of each side (any lengths).
    resamples : int
        Bootstrap resamples per side.

    Returns
    -------
    list of numpy.ndarray
        For each side, its ``resamples`` medians, identical to the one-side function's.
    """
    arrays = [np.asarray(s, dtype=np.float64) for s in samples]
    out: list[np.ndarray | None] = [None] * len(arrays)
    by_length: dict[int, list[int]] = defaultdict(list)
    for index, values in enumerate(arrays):
        by_length[len(values)].append(index)
    for n, members in by_length.items():
        if n == 0:
            for index in members:
                out[index] = bootstrap_medians(arrays[index], resamples)  # numpy's own error or result
            continue
        per_chunk = max(1, CHUNK_DRAWS // (resamples * n))
        for start in range(0, len(members), per_chunk):
            chunk = members[start : start + per_chunk]
            sorted_values = np.sort(np.stack([arrays[i] for i in chunk]), axis=1)
            medians, rejected = _medians_of_group(sorted_values, [_seed(arrays[i]) for i in chunk], resamples)
            for row, index in enumerate(chunk):
                out[index] = bootstrap_medians(arrays[index], resamples) if rejected[row] else medians[row]
    return [m for m in out if m is not None]


def _log_se_chunk(samples: Sequence[np.ndarray], resamples: int) -> np.ndarray:
    medians = np.stack(bootstrap_medians_many(samples, resamples))
    return np.std(np.log(medians), axis=1, ddof=1)


def _in_chunks(work: Callable[..., np.ndarray], items: Sequence[Any], draws_per_item: int, *args: Any) -> np.ndarray:
    """``work(chunk, *args)`` over ``items`` in chunks, concatenated in order; across this machine's
    CPUs in forked worker processes when there is enough work to pay for them (each chunk returns
    only its small result, never the bootstrap medians)."""
    per_chunk = max(1, CHUNK_DRAWS // max(1, draws_per_item))
    chunks = [items[start : start + per_chunk] for start in range(0, len(items), per_chunk)]
    workers = min(len(chunks), cpus())
    if workers < 2 or len(items) * draws_per_item < PARALLEL_DRAWS:
        return np.concatenate([work(chunk, *args) for chunk in chunks])
    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # no fork on this platform: one process
        return np.concatenate([work(chunk, *args) for chunk in chunks])
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return np.concatenate(list(pool.map(work, chunks, *[[a] * len(chunks) for a in args])))


_SERIAL = False


def serial_only() -> None:
    """In a worker process that is itself one of several: compute here, start no workers of its own."""
    global _SERIAL
    _SERIAL = True


def cpus() -> int:
    """CPUs this process may use (1 in a worker that must not start workers of its own)."""
    if _SERIAL:
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _draws_per_side(samples: Sequence[np.ndarray], resamples: int) -> int:
    return resamples * max(1, int(np.mean([len(s) for s in samples]))) if len(samples) else resamples


def log_median_ses(samples: Sequence[Any], resamples: int = 400) -> list[float]:
    """``stats.log_median_se(s, resamples)`` for every ``s`` in ``samples``, in bulk (the same values)."""
    if not samples:
        return []
    arrays = [np.asarray(s, dtype=np.float64) for s in samples]
    return [float(se) for se in _in_chunks(_log_se_chunk, arrays, _draws_per_side(arrays, resamples), resamples)]
