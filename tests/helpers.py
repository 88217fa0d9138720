"""Helpers the tests of the tooling share: the repository's root, pytest in a fresh interpreter, and
the skip for a missing extra. (Fixtures live in ``tests/conftest.py``; helpers are imported.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_pytest(*args: str, cwd: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run pytest in a fresh interpreter (the way a user does), capturing its output."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def needs(module: str, extra: str):
    """Skip a test when an optional extra is missing, naming the extra to install."""
    return pytest.importorskip(module, reason=f"install the [{extra}] extra: pip install -e '.[{extra}]'")
