"""A CPU-bound benchmark case long enough to measure contention on; collected only when named.

``tests/test_contention.py`` runs it alone and beside a CPU hog.
"""

from __future__ import annotations

import pytest

from inferperf.cases import Case, Tier
from inferperf.measure import Workload
from inferperf.params import parametrize_cases
from inferperf.settings import Budget

BUDGETS: dict[Tier, Budget] = {"quick": Budget(rounds=25, warmup_rounds=2), "standard": Budget(25, 2)}


def busy_cases(tier: Tier) -> list[Case]:
    return [Case("busy", "none", "python_loop", "cpu")]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_cases(metafunc, busy_cases)


def test_busy(case: Case, measure_case) -> None:
    def step() -> None:
        total = 0
        for value in range(300_000):  # about 20 ms of one core's work
            total += value * value

    info = measure_case(case, Workload(step, items_per_round=1, inference=False), BUDGETS)
    assert info["contention"]["window_s"] > 0
