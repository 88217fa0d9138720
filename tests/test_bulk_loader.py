"""The loader's fast path (``inferperf.record.bulk``) against its case-by-case checks.

The fast path may decline a run (None: the run is checked case by case) but must never accept one
the case-by-case checks reject, nor read an accepted one differently. Real runs from
``results/reference`` are mutated a field at a time, a few hundred ways, and both paths read each.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from inferperf.record import bulk, load

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference"
RUNS = ["quick-cpu-zen4.json", "generation-served-quick-cpu-zen3.json"]

#: values a hostile or broken file may hold anywhere
ODD_VALUES: list[Any] = [
    None, "x", "", True, False, 0, -1, 1, 20, 20.0, -0.0, 0.5, 1.5, -2.5, float("nan"), float("inf"), -float("inf"),
    2**70, 10**400, [], [1.0], {}, {"contended": True},
]


def _read(data: dict[str, Any], fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[str]]:
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(bulk, "benchmarks", lambda *_: None)
        return load.check_run(data, Path("run.json"))  # neither path changes what it reads


def _mutations(run: dict[str, Any], rng: random.Random, count: int):
    keys = sorted({k for b in run["benchmarks"] for k in b.get("extra_info", {})})
    for _ in range(count):
        data = copy.deepcopy(run)
        bench = rng.choice(data["benchmarks"])
        where = rng.choice(["stats", "stats", "data", "extra", "extra", "extra", "top", "options"])
        value = rng.choice(ODD_VALUES)
        if where == "stats":
            bench["stats"][rng.choice(["min", "max", "mean", "median", "stddev", "rounds", "iqr"])] = value
        elif where == "data" and bench["stats"].get("data"):
            data_list = bench["stats"]["data"]
            choice = rng.random()
            if choice < 0.6:
                data_list[rng.randrange(len(data_list))] = value
            elif choice < 0.8:
                data_list.pop()
            else:
                bench["stats"]["data"] = value
        elif where == "extra":
            if rng.random() < 0.1:
                bench["extra_info"] = value
            else:
                bench.setdefault("extra_info", {})[rng.choice(keys)] = value
        elif where == "top":
            field = rng.choice(["name", "fullname", "extra_info", "stats"])
            if rng.random() < 0.2:
                bench.pop(field, None)
            else:
                bench[field] = value
        else:
            bench["options"] = value if rng.random() < 0.5 else {"timer": value}
        yield data


@pytest.mark.parametrize("name", RUNS)
def test_the_fast_path_accepts_nothing_the_case_by_case_checks_reject(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    run = json.loads((REFERENCE / name).read_text())
    fast_run, fast_problems = _read(run, True, monkeypatch)
    slow_run, slow_problems = _read(run, False, monkeypatch)
    assert not slow_problems and fast_run == slow_run  # the untouched run: read the same both ways
    assert bulk.benchmarks(run["benchmarks"], load.EXTRA_INFO_KEYS) is not None  # and the fast path took it
    declined = 0
    for data in _mutations(run, random.Random(name), 200):
        fast_run, fast_problems = _read(data, True, monkeypatch)
        slow_run, slow_problems = _read(data, False, monkeypatch)
        assert fast_problems == slow_problems
        assert fast_run == slow_run
        declined += bulk.benchmarks(data["benchmarks"], load.EXTRA_INFO_KEYS) is None
    assert declined > 70  # the mutations reached the checks: most runs are broken, so declined


def test_a_plain_pytest_benchmark_run_takes_the_fast_path_too(monkeypatch: pytest.MonkeyPatch) -> None:
    run = json.loads((REFERENCE / RUNS[0]).read_text())
    run["machine_info"].pop("inferperf")
    for bench in run["benchmarks"]:
        bench.pop("extra_info")
    fast_run, _ = _read(run, True, monkeypatch)
    slow_run, _ = _read(run, False, monkeypatch)
    assert fast_run is not None and fast_run == slow_run
    assert bulk.benchmarks(run["benchmarks"], None) is not None


def test_runs_read_in_other_processes_are_the_runs_read_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    for index, name in enumerate(RUNS):
        (folder / f"000{index}_{name}").write_bytes((REFERENCE / name).read_bytes())
    (folder / "0009_broken.json").write_text("{not json")
    here = load.load_runs([folder])
    monkeypatch.setattr(load, "PARALLEL_BYTES", 0)  # every file beyond the first in a pool process
    there = load.load_runs([folder])
    assert there.runs == here.runs and there.skipped == here.skipped and len(here.runs) == 2
    assert "0009_broken.json" in here.skipped[0]
    broken = folder / "0009_broken.json"
    with pytest.raises(load.RecordError, match="not valid JSON"):  # named explicitly: an error, not a skip
        load.load_runs([folder / f"0000_{RUNS[0]}", broken])
