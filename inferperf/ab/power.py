"""``inferperf detection-power --ab``: the interleaved-blocks design measured on known work.

A pool of A/A blocks and a pool of A/B blocks of a one-case pytest-benchmark suite written into an
empty folder, each run in a fresh process exactly as ``inferperf ab`` runs a side; the candidate does
a known share more of the same work (105 units of a chain of small matrix products instead of 100:
a real slowdown). Random subsets of each size are judged as ``ab`` judges: detection and
false-alarm rates per number of blocks.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from inferperf.ab.blocks import Design, make_side_folders, run_blocks
from inferperf.ab.sides import AbError, Side, SideName
from inferperf.analysis.ab_verdicts import Block, load_blocks, process_samples
from inferperf.analysis.abstats import PairedBlocks, ab_verdict
from inferperf.analysis.detection import BASE_UNITS, matrix_chain
from inferperf.analysis.settings import Thresholds
from inferperf.text import shown

#: the suite each process runs: one line that names the benchmark below as its test
WORKLOAD_FILE = "test_power_workload.py"
WORKLOAD_SUITE = "from inferperf.ab.power import workload_benchmark as test_power_workload  # noqa: F401\n"
SLOWDOWN_ENV = "INFERPERF_POWER_SLOWDOWN"
ROUNDS = 20


def workload_benchmark(benchmark: Any) -> None:
    """The pool's one case: ``BASE_UNITS`` chained products, times (1 + ``$INFERPERF_POWER_SLOWDOWN``)."""
    units = int(round(BASE_UNITS * (1 + float(os.environ.get(SLOWDOWN_ENV, "0")))))
    benchmark.extra_info["units"] = units
    benchmark.pedantic(matrix_chain(units), rounds=ROUNDS, warmup_rounds=2, iterations=1)


@dataclass(frozen=True)
class PowerRow:
    blocks: int
    trials: int
    false_alarms: float
    detected: float
    #: wall time of one trial's blocks (both sides), from the measured process times
    trial_s: float


def power_experiment(
    pool: int,
    slowdown: float,
    blocks_options: Sequence[int],
    trials: int,
    thresholds: Thresholds,
    store: Path,
    seed: int,
    progress: Callable[[str], None],
) -> tuple[list[PowerRow], Path, float]:
    """Real fresh processes: ``pool`` A/A blocks and ``pool`` A/B blocks (the candidate does ``slowdown``
    more work), then ``trials`` random subsets of each size in ``blocks_options`` judged as ``ab`` judges.
    Returns the rows, the folder holding every run, and the mean seconds per process."""
    too_many = [size for size in blocks_options if size > pool]
    if too_many:  # before 4 x pool processes run, not after
        raise AbError(f"--blocks {too_many[0]} is more than the pool of {pool} blocks (--pool)")
    rng = random.Random(seed)
    root = store / f"power-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
    with tempfile.TemporaryDirectory(prefix="inferperf-power-") as suite:
        (Path(suite) / WORKLOAD_FILE).write_text(WORKLOAD_SUITE, encoding="utf-8")
        pools: dict[str, list[Block]] = {}
        seconds: list[float] = []
        for label, extra in (("aa", 0.0), ("ab", slowdown)):
            sides: dict[SideName, Side] = {
                "base": Side("base", suite, Path(suite), sys.executable, {SLOWDOWN_ENV: "0"}, ()),
                "candidate": Side("candidate", suite, Path(suite), sys.executable, {SLOWDOWN_ENV: str(extra)}, ()),
            }
            folder = root / label
            make_side_folders(folder)
            design = Design(folder.name, rng.randrange(2**31), pool, [WORKLOAD_FILE], {}, label == "aa")
            run_blocks(sides, [WORKLOAD_FILE], folder, design, blocks=pool, progress=lambda line: progress(f"{label}: {line}"))
            seconds += [r.seconds for r in design.runs]
            pools[label], _ = load_blocks(folder)
    rows = []
    mean_s = sum(seconds) / len(seconds)
    prepared = {label: _pool_blocks(blocks, thresholds) for label, blocks in pools.items()}
    for size in blocks_options:
        calls = {"aa": 0, "ab": 0}
        for label in ("aa", "ab"):
            pool_blocks = prepared[label]
            if len(pool_blocks.d) < size:  # a pool run failed: fewer complete blocks than asked for
                raise AbError(f"--blocks {size}: only {len(pool_blocks.d)} complete {label} blocks in {shown(root / label)}")
            for _ in range(trials):
                estimate = pool_blocks.estimate(rng.sample(range(len(pool_blocks.d)), size), confidence=thresholds.confidence)
                verdict = ab_verdict(estimate, min_change=thresholds.min_change, alpha=thresholds.alpha)
                calls[label] += verdict in ("slower", "faster") if label == "aa" else verdict == "slower"
        rows.append(PowerRow(size, trials, calls["aa"] / trials, calls["ab"] / trials, size * 2 * mean_s))
    return rows, root, mean_s


def _pool_blocks(blocks: Sequence[Block], thresholds: Thresholds) -> PairedBlocks:
    """The pool's blocks of its one case, bootstrap replicates computed once for every trial."""
    (case_id,) = {c for _, base, _ in blocks for c in base.benchmarks}
    base = [process_samples(b.benchmarks[case_id]) for _, b, _ in blocks]
    candidate = [process_samples(c.benchmarks[case_id]) for _, _, c in blocks]
    return PairedBlocks(base, candidate, thresholds.resamples)


def power_table(rows: Sequence[PowerRow], slowdown: float, thresholds: Thresholds, process_s: float) -> str:
    lines = [
        f"ab design, real fresh processes ({process_s:.2f} s each): min-change {thresholds.min_change:.0%}, alpha {thresholds.alpha:g}",
        f"| blocks | false alarms (A/A) | {slowdown:.0%} detected | wall time per verdict |",
        "|---|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| {row.blocks} | {row.false_alarms:.1%} | {row.detected:.1%} | {row.trial_s / 60:.1f} min |")
    return "\n".join(lines) + "\n"
