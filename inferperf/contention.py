"""How much else was running while a case was measured: other processes' CPU, hypervisor steal, load.

On a shared VM a busy neighbour can slow a case 5–85x and nothing in the timings says so. Around
the timed rounds we read the kernel's CPU counters (``/proc/stat``: every CPU's busy and steal
ticks) and this process tree's own CPU time (``/proc/<pid>/stat`` of this process and all its
descendants: DataLoader workers, a Triton host). What the machine's CPUs spent on *other*
processes, over their capacity in that window, is ``other_cpu_fraction``; the time the
hypervisor gave to other guests is ``steal_fraction``. Either at or above the threshold marks the
case ``contended``. The window runs from the first warm-up round to the last timed round (steady
state throughout), so that cases of a few milliseconds still span enough kernel ticks. Stdlib only;
where ``/proc`` is missing the fractions are null with the reason.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Mapping

#: fewer capacity ticks than this (USER_HZ, usually 100/s per CPU: 0.1 s on 2 CPUs) cannot tell a
#: busy neighbour (a whole CPU, 50% of 2) from the odd tick of a daemon
MIN_WINDOW_TICKS = 20


#: a case whose timed rounds ran while other processes used at least this share of the CPUs
#: (or the hypervisor stole it) is marked contended
DEFAULT_CONTENTION_THRESHOLD = 0.10


@dataclass(frozen=True)
class CpuCounters:
    """A snapshot: all CPUs' ticks by kind, and this process tree's CPU ticks."""

    busy: int
    steal: int
    total: int
    tree: int
    wall_s: float


def _proc_stat_cpu() -> tuple[int, int, int]:
    """(busy, steal, total) ticks summed over all CPUs, from the first line of ``/proc/stat``."""
    with open("/proc/stat", encoding="ascii") as fh:
        fields = fh.readline().split()
    if not fields or fields[0] != "cpu":
        raise OSError("unexpected /proc/stat format")
    values = [int(v) for v in fields[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (values + [0] * 8)[:8]
    # guest time is already counted in user/nice, so it is not added again
    busy = user + nice + system + irq + softirq
    return busy, steal, busy + idle + iowait + steal


def _process_ticks(stat_line: str) -> tuple[int, int]:
    """(ppid, utime + stime) from a ``/proc/<pid>/stat`` line (the command name may hold spaces)."""
    rest = stat_line[stat_line.rindex(")") + 2 :].split()
    # rest[0] is the state; ppid is field 4 of the line, utime/stime fields 14/15
    return int(rest[1]), int(rest[11]) + int(rest[12])


def _all_processes() -> dict[int, tuple[int, int]]:
    """Every process now: pid -> (ppid, CPU ticks), from ``/proc/<pid>/stat``."""
    found: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                found[int(entry)] = _process_ticks(fh.read())
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
    return found


def _descendants(root: int, processes: dict[int, tuple[int, int]]) -> list[int]:
    """``root`` and every descendant of it among ``processes``."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in processes.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def process_tree(root: int) -> list[int]:
    """``root`` and all its living descendants (``scripts/pause-tests`` stops them together)."""
    return _descendants(root, _all_processes())


def _tree_ticks(root: int) -> int:
    """CPU ticks of ``root`` and all its living descendants (reaped children count in ``root``)."""
    processes = _all_processes()
    return sum(processes[pid][1] for pid in _descendants(root, processes) if pid in processes)


def snapshot() -> CpuCounters | None:
    """The counters now, or None where ``/proc`` cannot be read."""
    try:
        busy, steal, total = _proc_stat_cpu()
        tree = _tree_ticks(os.getpid())
    except (OSError, ValueError):
        return None
    return CpuCounters(busy, steal, total, tree, time.perf_counter())


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def contention_between(
    before: CpuCounters | None, after: CpuCounters | None, threshold: float = DEFAULT_CONTENTION_THRESHOLD
) -> dict[str, object]:
    """``extra_info.contention`` for the window between two snapshots."""
    record: dict[str, object] = {
        "other_cpu_fraction": None,
        "steal_fraction": None,
        "loadavg": _loadavg(),
        "contended": None,
        "window_s": None,
        "reason": None,
    }
    if before is None or after is None:
        record["reason"] = "/proc/stat is not readable on this system"
        return record
    capacity = after.total - before.total
    record["window_s"] = round(after.wall_s - before.wall_s, 4)
    if capacity < MIN_WINDOW_TICKS:
        record["reason"] = f"rounds too short to measure ({capacity} CPU ticks, need {MIN_WINDOW_TICKS})"
        return record
    other = max(0, (after.busy - before.busy) - (after.tree - before.tree))
    other_fraction = min(1.0, other / capacity)
    steal_fraction = min(1.0, max(0, after.steal - before.steal) / capacity)
    record["other_cpu_fraction"] = round(other_fraction, 4)
    record["steal_fraction"] = round(steal_fraction, 4)
    record["contended"] = other_fraction >= threshold or steal_fraction >= threshold
    return record


def is_contended(contention: object) -> bool:
    """Whether a recorded ``contention`` value marks its case as contended."""
    return isinstance(contention, Mapping) and contention.get("contended") is True
