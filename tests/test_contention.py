"""A case measured beside a CPU hog is marked contended; the same case alone is not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from inferperf.contention import contention_between, snapshot
from tests.conftest import run_pytest

BUSY = "tests/perf_cases/busy_cases.py"


def _contention(tmp_path, name: str) -> dict:
    out = tmp_path / f"{name}.json"
    result = run_pytest(BUSY, "--benchmark-only", f"--benchmark-json={out}")
    assert result.returncode == 0, result.stdout[-2000:]
    return json.loads(out.read_text())["benchmarks"][0]["extra_info"]["contention"]


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs /proc (Linux)")
def test_a_case_beside_a_cpu_hog_is_contended_and_alone_it_is_not(tmp_path):
    alone = _contention(tmp_path, "alone")
    assert alone["contended"] is False, alone
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.5)
        beside = _contention(tmp_path, "beside")
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait(10)
    assert beside["contended"] is True, beside
    assert beside["other_cpu_fraction"] > 0.3 > alone["other_cpu_fraction"]


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
