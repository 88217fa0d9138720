"""Helpers for the tests of the tooling."""

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


@pytest.fixture(autouse=True, scope="session")
def _private_cache_folder(tmp_path_factory):
    """History's index (and any other user cache) goes to a folder of this test session, not ~/.cache."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if previous is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = previous
