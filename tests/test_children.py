"""The one child-process helper: its own session, a bounded stop that reaches the whole group, the log tail."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from inferperf.children import Child, last_lines, run

#: a child that ignores SIGTERM and starts a grandchild (which ignores it too), then waits forever
STUBBORN = '''
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
print("grandchild", grandchild.pid, flush=True)
print("ready", flush=True)
time.sleep(600)
'''


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie still answers kill(0): it is gone once it is no longer running
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def _wait_for(log: Path, text: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert text in log.read_text(), log.read_text()


def test_a_child_that_ignores_sigterm_is_killed_with_its_group_within_the_grace(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    child = Child.start([sys.executable, "-c", STUBBORN], log)
    _wait_for(log, "ready")
    grandchild = int(log.read_text().split("grandchild ")[1].split()[0])
    assert os.getpgid(child.pid) == child.pid != os.getpgid(0)  # a session of its own
    started = time.monotonic()
    code = child.stop(signal.SIGTERM, grace_s=1.0)
    assert code == -signal.SIGKILL and time.monotonic() - started < 15
    deadline = time.monotonic() + 10
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(grandchild), "the grandchild outlived the stop"


def test_a_child_past_its_timeout_is_stopped_and_says_so(tmp_path: Path) -> None:
    asked: list[int] = []
    ended = run([sys.executable, "-c", "import time; print('working', flush=True); time.sleep(600)"], tmp_path / "slow.log",
                timeout_s=1.0, first=signal.SIGINT, grace_s=5.0, before_stop=lambda c: asked.append(c.pid))
    assert ended.timed_out and asked and ended.returncode != 0 and ended.seconds < 15
    assert ended.describe(1.0) == "timed out after 1 s and was stopped"
    lines = last_lines(tmp_path / "slow.log")
    assert lines[0] == "working" and lines[-1] == "KeyboardInterrupt"  # SIGINT first: Python's own way to stop


@pytest.mark.parametrize(("code", "phrase"), [("raise SystemExit(3)", "exited with code 3"), ("import os; os.abort()", "died by signal SIGABRT (6)")])
def test_how_a_child_ended_is_one_phrase(tmp_path: Path, code: str, phrase: str) -> None:
    ended = run([sys.executable, "-c", code], tmp_path / "log", timeout_s=30)
    assert not ended.timed_out and ended.describe(30) == phrase
