"""scripts/gpu-check's phase logic, run on the CPU: each phase its own process, SIGINT at its limit."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import REPO


@pytest.mark.slow
def test_a_phase_past_its_limit_is_interrupted_and_still_writes_its_json(tmp_path):
    out = tmp_path / "gpu"
    faulty = "tests/perf_cases/faulty_cases.py"
    result = subprocess.run(
        [sys.executable, "scripts/gpu-check", "--out", str(out), "--device", "cpu",
         "--phase", "null:60:-k null --rounds 20",
         "--phase", f"hang:8:{faulty} -k 'ok_first or hang'"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    summary = (out / "summary.md").read_text()
    assert "| null |" in summary and "| hang |" in summary and "SIGINT at its limit" in summary, summary + (out / "hang.log").read_text()[-3000:]
    assert "null/none-cpu-fp32-noop-bs1" in summary
    interrupted = json.loads((out / "hang.json").read_text())
    assert [b["extra_info"]["case_id"] for b in interrupted["benchmarks"]] == ["faulty/none-cpu-fp32-ok_first-bs1"]
    assert "interrupted" in interrupted["machine_info"]["inferperf"]["failed"][0]["reason"]


def test_the_default_phases_fit_a_15_minute_lease():
    listed = subprocess.run([sys.executable, "scripts/gpu-check", "--list"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    total = float(listed.strip().splitlines()[-1].split()[1])
    assert total <= 9 * 60  # leaves start-up, the wheel install and a rerun margin inside 15 minutes
    assert "--isolate" in listed


def test_a_bad_phase_is_a_usage_error():
    result = subprocess.run([sys.executable, "scripts/gpu-check", "--phase", "nolimit"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2 and "NAME:SECONDS:PYTEST_ARGS" in result.stderr
