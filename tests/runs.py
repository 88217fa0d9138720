"""Synthetic pytest-benchmark runs, shaped as pytest-benchmark 3.x, 4.x and 5.x write them."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Mapping, Sequence


def stats_of(samples: Sequence[float], with_data: bool = True) -> dict:
    """pytest-benchmark's ``stats`` of ``samples`` (seconds per round)."""
    ordered = sorted(samples)
    n = len(ordered)
    q1, q3 = ordered[n // 4], ordered[(3 * n) // 4]
    stats = {
        "min": ordered[0],
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
        "stddev": statistics.stdev(ordered) if n > 1 else 0,
        "rounds": n,
        "median": statistics.median(ordered),
        "iqr": q3 - q1,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": 0,
        "stddev_outliers": 0,
        "outliers": "0;0",
        "ld15iqr": ordered[0],
        "hd15iqr": ordered[-1],
        "ops": 1 / statistics.fmean(ordered),
        "total": sum(ordered),
        "iterations": 1,
    }
    if with_data:
        stats["data"] = list(samples)
    return stats


def make_run(
    cases: Mapping[str, Sequence[float]],
    *,
    version: str = "5.1.0",
    with_data: bool = True,
    with_extra: bool = True,
    extra: Mapping[str, Mapping[str, object]] | None = None,
    machine: Mapping[str, object] | None = None,
) -> dict:
    benchmarks = []
    for case_id, samples in cases.items():
        technique, _, rest = case_id.partition("/")
        info: dict = {}
        if with_extra:
            info = {"case_id": case_id, "technique": technique, "items_per_round": 1}
            parts = rest.split("-")
            if len(parts) == 5:
                info.update(model=parts[0], device=parts[1], dtype=parts[2], variant=parts[3], batch=int(parts[4][2:]))
        info.update((extra or {}).get(case_id, {}))
        benchmarks.append(
            {
                "group": None,
                "name": f"test_{technique}[{rest}]",
                "fullname": f"perf_tests/test_{technique}.py::test_{technique}[{rest}]",
                "params": {"case": rest},
                "param": rest,
                "extra_info": info,
                "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": 5, "max_time": 1.0,
                            "min_time": 5e-06, "warmup": False},
                "stats": stats_of(samples, with_data),
            }
        )
    return {
        "machine_info": dict(machine or {"node": "box", "processor": "x86_64", "python_version": "3.11.7"}),
        "commit_info": {"id": "abc123", "branch": "main", "dirty": False},
        "benchmarks": benchmarks,
        "datetime": "2026-11-23T10:00:00.000000",
        "version": version,
    }


def write_run(path: Path, run: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run), encoding="utf-8")
    return path
