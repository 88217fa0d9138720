"""``inferperf validate``: is a saved run a complete inferperf record?

It rejects everything the loader rejects (the same checks, every problem listed), then checks
the registry's promises: ``machine_info.inferperf`` with every required key, every benchmark with
every required ``extra_info`` key, no undocumented key, and a measured throughput and latency.
"""

from __future__ import annotations

import math
from pathlib import Path

from inferperf.record.keys import (
    EXTRA_INFO_KEYS,
    MACHINE_KEYS,
    MEASURED_KEYS,
    key_problems,
)
from inferperf.record.load import read_run
from inferperf.text import shown


def validate_run(path: Path) -> list[str]:
    """Every problem with ``path`` as an inferperf run (empty: it carries every documented key)."""
    run, problems = read_run(path)
    if run is None:
        return problems
    name = shown(path)
    machine = run.machine.get("inferperf")
    if not isinstance(machine, dict):
        problems.append(f"{name}: machine_info.inferperf is missing (not written by the inferperf conftest?)")
    else:
        problems += [f"{name}: {line}" for line in key_problems(MACHINE_KEYS, machine, "machine_info.inferperf", require=True)]
        if not machine.get("versions"):
            problems.append(f"{name}: machine_info.inferperf.versions is empty")
    if not run.benchmarks:
        problems.append(f"{name}: 'benchmarks' is empty: nothing was measured")
    for bench in run.benchmarks.values():
        where = f"{name}: {shown(bench.name)}"
        problems += [f"{where}: {line}" for line in key_problems(EXTRA_INFO_KEYS, bench.extra, "extra_info", require=True)]
        for key in MEASURED_KEYS:
            value = bench.extra.get(key)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
                problem = f"{where}: extra_info.{key} is {value!r}, expected a positive number"
                if problem not in problems and key in bench.extra:
                    problems.append(problem)
    return problems
