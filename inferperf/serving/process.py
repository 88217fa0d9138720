"""A server process the session owns: free ports on 127.0.0.1, start, bounded readiness poll, stop by PID.

Shared by the Triton host and the OpenAI-compatible servers (``transformers serve``, llama.cpp),
so every server the suite starts has the same lifecycle, the one every child of the suite has
(``inferperf.children``): its own session (process group), its output kept in a log file that
every failure names with its last lines, SIGTERM to the group and then SIGKILL if it does not stop
within the bound.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

from inferperf.children import Child, last_lines

LOCALHOST = "127.0.0.1"


class ServerStartError(RuntimeError):
    """The server did not become ready; the message names its log."""


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOCALHOST, port))
        except OSError:
            return False
    return True


def free_port(avoid: Sequence[int] = ()) -> int:
    """A port nothing listens on now (the kernel's choice), not one of ``avoid``."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((LOCALHOST, 0))
            port = int(probe.getsockname()[1])
        if port not in avoid:
            return port
    raise OSError("no free TCP port on 127.0.0.1")


def tail(path: Path | None, lines: int = 15) -> str:
    return "\n".join(last_lines(path, lines))


class ServerProcess:
    """One child server: ``launch`` it (returns once ``ready()`` holds), ``stop`` it by PID."""

    def __init__(self, name: str, *, start_timeout_s: float, stop_timeout_s: float = 30.0) -> None:
        self.name = name
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.child: Child | None = None
        self.log_path: Path | None = None

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child is not None else None

    def alive(self) -> bool:
        return self.child is not None and self.child.alive()

    def exit_code(self) -> int | None:
        return self.child.poll() if self.child is not None else None

    def launch(self, command: Sequence[str], log_path: Path, ready: Callable[[], bool], env: Mapping[str, str] | None = None) -> None:
        """Start ``command`` logging to ``log_path``; poll ``ready`` until it holds or the bound passes."""
        self.stop()
        self.log_path = log_path
        environment = dict(os.environ if env is None else env)
        environment.setdefault("PYTHONUNBUFFERED", "1")
        self.child = Child.start(command, log_path, env=environment)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            code = self.child.poll()
            if code is not None:
                self.stop()
                raise ServerStartError(f"{self.name} exited with code {code} before it was ready; its log: {log_path}\n{tail(log_path)}")
            if ready():
                return
            time.sleep(0.25)
        self.stop()
        raise ServerStartError(f"{self.name} was not ready within {self.start_timeout_s:.0f} s; its log: {log_path}\n{tail(log_path)}")

    def failure(self, what: str) -> str:
        """A one-paragraph account of a failure: what, whether the server still runs, its log's last lines."""
        code = self.exit_code()
        state = f"{self.name} exited with code {code}" if code is not None else f"{self.name} is still running"
        return f"{what}; {state}; its log: {self.log_path}\n{tail(self.log_path, 10)}"

    def stop(self) -> None:
        """SIGTERM to the server's process group, then SIGKILL if it is still there after the bound."""
        child, self.child = self.child, None
        if child is not None:
            child.stop(signal.SIGTERM, self.stop_timeout_s)
