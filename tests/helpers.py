"""Helpers the tests of the tooling share: the repository's root, pytest in a fresh interpreter, the
test SSE server in a child process, and the skip for a missing extra. (Fixtures live in
``tests/conftest.py``; helpers are imported.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

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


def start_sse_server(log_path: Path, env: Mapping[str, str] | None = None) -> tuple[Any, str]:
    """``tests/sse_server.py`` started in a child process on a free port, ready (it lists its one
    model): (its ``ServerProcess``, to stop; its base URL ``http://127.0.0.1:PORT/v1``)."""
    from inferperf.serving.openai.client import list_models
    from inferperf.serving.process import ServerProcess, free_port

    pytest.importorskip("httpx")
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    server = ServerProcess("the test SSE server", start_timeout_s=30)

    def ready() -> bool:
        try:
            return list_models(base, 1.0) == ["test-model"]
        except Exception:
            return False

    server.launch([sys.executable, str(REPO / "tests" / "sse_server.py"), str(port)], log_path, ready, env)
    return server, base
