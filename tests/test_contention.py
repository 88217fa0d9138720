"""A case measured beside a CPU hog is marked contended; alone, it is not — judged against the machine.

CI runners have neighbours: "alone" cannot mean "the machine is idle". The machine's own background
is measured first (the same counters, over windows in which this test runs nothing), and each half
is judged against it: the case alone must read no more than that background (its own process tree
is never counted as contention), and is required to be uncontended only when the background is
quiet (otherwise that half is skipped, naming the load); beside the hogs it must read the hogs'
share on top of the background and be marked contended, whatever the background was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from inferperf.contention import (
    DEFAULT_CONTENTION_THRESHOLD,
    contention_between,
    snapshot,
)
from tests.helpers import run_pytest

BUSY = "tests/perf_cases/busy_cases.py"
#: the background window: long enough (2 s on 2 CPUs: 400 ticks) for a neighbour's duty cycle to show
BACKGROUND_WINDOW_S = 2.0
#: a background below this leaves room under the threshold for the case's own measurement noise
QUIET_BACKGROUND = DEFAULT_CONTENTION_THRESHOLD / 2
#: how much a neighbour's load may vary between the background windows and the case's window
BACKGROUND_DRIFT = 0.15


def _contention(tmp_path, name: str) -> dict:
    out = tmp_path / f"{name}.json"
    result = run_pytest(BUSY, "--benchmark-only", f"--benchmark-json={out}")
    assert result.returncode == 0, result.stdout[-2000:]
    return json.loads(out.read_text())["benchmarks"][0]["extra_info"]["contention"]


def background_other_cpu_fraction(window_s: float = BACKGROUND_WINDOW_S) -> float:
    """Other processes' share of the CPUs while this process sleeps: what a neighbour costs right now."""
    before = snapshot()
    time.sleep(window_s)
    fraction = contention_between(before, snapshot())["other_cpu_fraction"]
    assert isinstance(fraction, float), "the background window was too short to measure"
    return fraction


def _busy_reason(background: float) -> str:
    cores = background * (os.cpu_count() or 1)
    return f"machine busy: {cores:.2f} of a core used by other processes (background other_cpu_fraction {background:.2f})"


needs_proc = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs /proc (Linux)")


@needs_proc
@pytest.mark.alone
def test_a_case_alone_reads_no_more_than_the_machines_background(tmp_path):
    before = background_other_cpu_fraction()
    alone = _contention(tmp_path, "alone")
    after = background_other_cpu_fraction()
    background = max(before, after)
    # the case's own CPU (and its children's) is never counted as someone else's
    assert alone["other_cpu_fraction"] <= background + BACKGROUND_DRIFT, (alone, before, after)
    assert alone["contended"] is (alone["other_cpu_fraction"] >= DEFAULT_CONTENTION_THRESHOLD or alone["steal_fraction"] >= DEFAULT_CONTENTION_THRESHOLD)
    if background >= QUIET_BACKGROUND or alone["other_cpu_fraction"] >= QUIET_BACKGROUND:
        pytest.skip(_busy_reason(max(background, alone["other_cpu_fraction"])) + ": 'alone is not contended' cannot be judged")
    assert alone["contended"] is False, alone


@needs_proc
@pytest.mark.alone
def test_a_case_beside_a_cpu_hog_is_contended(tmp_path):
    background = background_other_cpu_fraction()
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.5)
        beside = _contention(tmp_path, "beside")
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait(10)
    # a hog per CPU takes at least a third of the CPUs beside the case: the detection has to see them
    # on top of the background. A busy background leaves less room (a neighbour, the hogs and the
    # case share the CPUs), so the bar is capped where the case still gets its share of a CPU.
    assert beside["contended"] is True, (beside, background)
    assert beside["other_cpu_fraction"] > min(0.6, background + 0.3), (beside, background)


def test_a_window_too_short_or_without_proc_says_why():
    first = snapshot()
    short = contention_between(first, first)
    assert short["contended"] is None and "too short" in short["reason"]
    missing = contention_between(None, None)
    assert missing["other_cpu_fraction"] is None and "/proc/stat" in missing["reason"]


def test_compare_marks_and_can_exclude_contended_cases(tmp_path, capsys):
    from inferperf.cli import main
    from tests.runs import make_run, write_run

    case = "busy/none-cpu-fp32-python_loop-bs1"
    quiet = {"contention": {"other_cpu_fraction": 0.01, "steal_fraction": 0.0, "contended": False}}
    busy = {"contention": {"other_cpu_fraction": 0.6, "steal_fraction": 0.0, "contended": True}}
    a = write_run(tmp_path / "a.json", make_run({case: [0.020, 0.021, 0.020, 0.022, 0.021] * 4}, extra={case: quiet}))
    b = write_run(tmp_path / "b.json", make_run({case: [0.050, 0.051, 0.049, 0.052, 0.050] * 4}, extra={case: busy}))
    assert main(["compare", str(a), str(b)]) == 0
    assert "contended in" in capsys.readouterr().out
    assert main(["compare", str(a), str(b), "--exclude-contended", "--fail-on-regression"]) == 2  # nothing left to compare
    assert "nothing was compared" in capsys.readouterr().err
