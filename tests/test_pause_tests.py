"""``scripts/pause-tests``: the command's processes really stop together, and its exit status is kept."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO

#: a child and its own child each watch the clock for 1.5 s and print the longest gap they saw
WATCHER = """
import subprocess, sys, time
inner = subprocess.Popen([sys.executable, "-c", "import time\\nend, last, gap = time.monotonic() + 1.5, time.monotonic(), 0.0\\n"
                          "while time.monotonic() < end:\\n    now = time.monotonic(); gap = max(gap, now - last); last = now\\nprint(gap)"],
                         stdout=subprocess.PIPE, text=True)
end, last, gap = time.monotonic() + 1.5, time.monotonic(), 0.0
while time.monotonic() < end:
    now = time.monotonic(); gap = max(gap, now - last); last = now
print(gap, inner.communicate()[0].strip())
sys.exit(3)
"""


def test_pause_tests_stops_the_whole_tree_and_keeps_the_exit_status() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "pause-tests"), "--every", "0.3", "--pause", "0.4", "--", sys.executable, "-c", WATCHER],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 3, result.stderr  # the command's own
    outer, inner = (float(gap) for gap in result.stdout.split())
    assert outer >= 0.35 and inner >= 0.35, result.stdout  # both were stopped for a 0.4 s pause, not just the first
    assert "pause-tests: " in result.stderr and " pauses, " in result.stderr


def test_pause_tests_usage_errors_are_one_line() -> None:
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "pause-tests"), "--every", "x", "--", "true"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == ["pause-tests: argument --every: expected LOW,HIGH seconds, got 'x'"]
