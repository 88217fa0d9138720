"""Benchmark cases that die the ways native code dies; collected only when named on the command line.

Used by ``tests/test_durability.py`` (and runnable by hand) to show that the journal keeps every
finished case and that ``--isolate`` costs only the case that crashed:
``pytest perf_tests/test_null.py tests/perf_cases/faulty_cases.py --benchmark-only --isolate --case-timeout 20``.
The file name does not match ``test_*.py``, so ``pytest`` alone never runs it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

import pytest

from inferperf.cases import Case, Tier
from inferperf.measure import Workload
from inferperf.params import parametrize_cases
from inferperf.settings import Budget

TECHNIQUE = "faulty"
BUDGETS: dict[Tier, Budget] = {"quick": Budget(rounds=20, warmup_rounds=2), "standard": Budget(20, 2)}


def _segfault() -> None:
    ctypes.string_at(0)  # reads address 0: SIGSEGV in native code, as a broken kernel would


def _abort() -> None:
    os.abort()  # SIGABRT, as a failed C++ assertion in a native library


def _hang() -> None:
    time.sleep(3600)  # a deadlocked kernel or a stuck server call


def _killed() -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # the kernel's out-of-memory killer


def _work() -> None:
    sum(range(2000))


#: variant -> what its timed step does after a few healthy rounds
STEPS = {"ok_first": None, "segfault": _segfault, "abort": _abort, "hang": _hang, "oom_kill": _killed, "assertion": None, "ok_last": None}


def faulty_cases(tier: Tier) -> list[Case]:
    return [Case(TECHNIQUE, "none", variant, "cpu") for variant in STEPS]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_cases(metafunc, faulty_cases)


def test_faulty(case: Case, measure_case) -> None:
    fault = STEPS[case.variant]
    calls = [0]

    def step() -> None:
        calls[0] += 1
        if fault is not None and calls[0] > 1:  # the first warm-up round is healthy
            fault()
        _work()

    measure_case(case, Workload(step, items_per_round=1, inference=False), BUDGETS)
    assert case.variant != "assertion", "a plain test failure after measuring"
