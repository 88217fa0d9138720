"""Running an A/B experiment: blocks of both sides in fresh processes, in a seeded random order.

Each run is a child of its own (``inferperf.children``): a session of its own, its output in the
run's ``.log``, and a bound: after ``run_timeout_s`` it gets SIGINT (pytest stops, pytest-benchmark
writes what finished), then SIGKILL. A run that hangs or fails is recorded as such in ``ab.json``
(exit code, ``timed_out``) and the design goes on; judging uses the complete blocks.
"""

from __future__ import annotations

import json
import random
import signal
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Sequence

from inferperf import children
from inferperf.ab import DEFAULT_RUN_TIMEOUT_S
from inferperf.ab.sides import SIDES, Side, SideName
from inferperf.files import atomic_write
from inferperf.text import shown

#: after SIGINT, how long pytest may take to write its JSON before SIGKILL
STOP_GRACE_S = 30.0


@dataclass
class RunRecord:
    block: int
    side: SideName
    position: int
    returncode: int
    seconds: float
    path: str
    #: stopped after ``--run-timeout`` (a hung side is a failed run; the design goes on)
    timed_out: bool = False


@dataclass
class Design:
    """What ``ab.json`` holds: enough to re-run or re-judge the experiment."""

    started: str
    seed: int
    blocks_planned: int
    pytest_args: list[str]
    sides: dict[str, dict[str, object]]
    aa: bool
    runs: list[RunRecord] = field(default_factory=list)
    orders: list[list[str]] = field(default_factory=list)
    stopped_early_after: int | None = None
    #: each run's bound (``--run-timeout``): a run still going then is stopped and recorded as failed
    run_timeout_s: float | None = DEFAULT_RUN_TIMEOUT_S

    def save(self, folder: Path) -> None:
        atomic_write(folder / "ab.json", (json.dumps(asdict(self), indent=2) + "\n").encode())


def new_run_folder(store: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = store / stamp
    suffix = 1
    while folder.exists():  # never reuse (or overwrite) an earlier experiment's folder
        suffix += 1
        folder = store / f"{stamp}-{suffix}"
    make_side_folders(folder)
    return folder


def make_side_folders(folder: Path) -> None:
    """``folder/base`` and ``folder/candidate``, which must not exist yet."""
    for side in SIDES:
        (folder / side).mkdir(parents=True)


def run_blocks(
    sides: Mapping[SideName, Side],
    pytest_args: Sequence[str],
    folder: Path,
    design: Design,
    *,
    blocks: int,
    progress: Callable[[str], None],
    decided: Callable[[int], bool] | None = None,
    looks: Sequence[int] = (),
    run_timeout_s: float | None = DEFAULT_RUN_TIMEOUT_S,
) -> Design:
    """Run the blocks (stopping after a look where ``decided`` says so); every run kept, the design saved as it goes."""
    order_rng = random.Random(design.seed)
    started = time.perf_counter()
    for block in range(1, blocks + 1):
        order = list(SIDES)
        order_rng.shuffle(order)
        design.orders.append([str(name) for name in order])
        for position, name in enumerate(order):
            side = sides[name]
            out = folder / name / f"{block:04d}.json"
            log = folder / name / f"{block:04d}.log"
            # SIGINT first: pytest stops and pytest-benchmark still writes the cases it finished
            ended = children.run(side.command(pytest_args, out), log, timeout_s=run_timeout_s, env=side.environment(),
                                 cwd=side.directory, first=signal.SIGINT, grace_s=STOP_GRACE_S)
            design.runs.append(RunRecord(block, name, position, ended.returncode, round(ended.seconds, 3), str(out.relative_to(folder)),
                                         timed_out=ended.timed_out))
            if ended.returncode != 0:
                progress(f"block {block}: the {name} run {ended.describe(run_timeout_s)} (see {shown(log)})")
        design.save(folder)
        spent = time.perf_counter() - started
        left = spent / block * (blocks - block)
        progress(f"block {block} of {blocks} ({' then '.join(order)}): {spent:.0f} s so far, about {left:.0f} s left")
        if decided is not None and block in looks and block < blocks and decided(block):
            design.stopped_early_after = block
            design.save(folder)
            progress(f"decided after {block} blocks (--until-decided)")
            break
    return design
