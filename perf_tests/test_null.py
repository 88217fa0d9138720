"""The null benchmark: the harness's own overhead per round (MLPerf's null backend).

Its step does nothing but the device sync every timed call ends with, so its median is the
floor under every other benchmark's round time.
"""

from __future__ import annotations

import pytest

from inferperf.cases import DEVICES, Case, Tier
from inferperf.measure import Workload
from inferperf.params import parametrize_cases
from inferperf.settings import Budget

BUDGETS: dict[Tier, Budget] = {"quick": Budget(rounds=200, warmup_rounds=10), "standard": Budget(1000, 50)}


def null_cases(tier: Tier) -> list[Case]:
    # no extra needed: the CPU null case runs (and checks the harness) even without torch
    return [Case("null", "none", "noop", device) for device in DEVICES]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_cases(metafunc, null_cases)


def test_null(case: Case, measure_case) -> None:
    info = measure_case(case, Workload(lambda: None, items_per_round=1, inference=False), BUDGETS)
    assert info["items_per_round"] == 1
