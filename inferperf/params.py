"""Turn case lists into pytest parameters: ids in axis order, skips with reasons a user can act on."""

from __future__ import annotations

from typing import Callable, Iterable

import pytest

from inferperf.cases import Case, Tier
from inferperf.extras import has_extra, missing_reason
from inferperf.hardware import device_unavailable_reason
from inferperf.settings import parse_devices


def skip_reason(case: Case) -> str | None:
    """Why ``case`` cannot run here, or None. Missing software is named before missing devices."""
    for extra in case.requires:
        if not has_extra(extra):
            return missing_reason(extra)
    return device_unavailable_reason(case.device)


def case_param(case: Case, selected: bool = True) -> "pytest.ParameterSet":
    """``case`` as a pytest parameter, skipped with the reason when it cannot run here.

    A case for a device the session did not select is deselected later; its reason is not
    worked out (finding whether CUDA is there means importing torch).
    """
    reason = skip_reason(case) if selected else None
    marks = [pytest.mark.skip(reason=reason)] if reason else []
    return pytest.param(case, id=case.id, marks=marks)


def parametrize_cases(metafunc: pytest.Metafunc, make_cases: Callable[[Tier], Iterable[Case]]) -> None:
    """Parametrize the ``case`` argument with ``make_cases(tier)`` for the session's ``--tier``."""
    if "case" not in metafunc.fixturenames:
        return
    tier: Tier = metafunc.config.getoption("--tier")
    cases = list(make_cases(tier))
    ids = [c.id for c in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{metafunc.module.__name__}: duplicate case ids {duplicates}")
    devices = parse_devices(metafunc.config.getoption("--device"))
    metafunc.parametrize("case", [case_param(c, c.device in devices) for c in cases])


def case_of(item: pytest.Item) -> Case | None:
    """The ``Case`` an item was parametrized with, or None (not an inferperf benchmark)."""
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get("case") if callspec is not None else None
    return value if isinstance(value, Case) else None
