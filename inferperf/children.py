"""The one way the suite starts and stops a child process: its own session, its output in a log, a bounded stop.

Every child the suite starts goes through ``Child`` — a case under ``--isolate``
(``inferperf.isolation``), a server (``inferperf.serving.process``: Triton, ``transformers serve``,
llama.cpp) and each side's pytest run of ``inferperf ab`` (``inferperf.ab.blocks``):

- **its own session** (process group), so stopping it stops whatever it started (DataLoader
  workers, a server it launched);
- **its output in a log file**, whose last lines every failure quotes (``Child.tail``);
- **a bounded stop**: a first signal to the group (SIGINT for a pytest run, which then writes the
  results it finished; SIGTERM for a server), SIGKILL to the group if it has not exited within the
  grace, and once it has exited, SIGKILL to whatever is left of its group — nothing it started
  outlives it.

Stdlib only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

#: how long a child may take to exit after the first signal before SIGKILL
DEFAULT_GRACE_S = 5.0
#: after SIGKILL, how long to wait for the kernel to reap it
KILL_WAIT_S = 10.0


def signal_name(number: int) -> str:
    """``9`` -> ``SIGKILL (9)``."""
    try:
        return f"{signal.Signals(number).name} ({number})"
    except ValueError:
        return str(number)


def last_lines(path: Path | None, count: int = 15, *, width: int = 300) -> tuple[str, ...]:
    """The last ``count`` meaningful lines of a log file (decoded leniently, long lines cut).

    The interpreter's list of loaded extension modules, printed after a fatal error, is left out:
    one line of kilobytes that says nothing about the crash.
    """
    if path is None:
        return ()
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.fstat(fh.fileno()).st_size - 256_000))
            lines = deque((line.decode("utf-8", "replace").rstrip() for line in fh), maxlen=count * 4)
    except OSError:
        return ()
    kept = [line[:width] for line in lines if line.strip() and not line.startswith("Extension modules:")]
    return tuple(kept[-count:])


@dataclass(frozen=True)
class Ended:
    """How a child ended: its exit code (negative: the signal that ended it), whether it was
    stopped for time, and how long it ran."""

    returncode: int
    timed_out: bool
    seconds: float

    def describe(self, timeout_s: float | None) -> str:
        """One phrase: ``exited with code 3``, ``died by signal SIGSEGV (11)``, ``timed out after 60 s``."""
        if self.timed_out:
            return f"timed out after {timeout_s:g} s and was stopped"
        if self.returncode < 0:
            return f"died by signal {signal_name(-self.returncode)}"
        return f"exited with code {self.returncode}"


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Child:
    """A started child process in a session of its own, logging to ``log_path``."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path
        self.started = time.perf_counter()

    @classmethod
    def start(
        cls, command: Sequence[str], log_path: Path, *, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> "Child":
        """Start ``command`` with stdout and stderr to ``log_path`` and no stdin, SIGINT at its default.

        A process started from a shell's background job inherits SIGINT ignored, and a Python child
        then never raises KeyboardInterrupt: the stop's first, gentle signal would do nothing (a
        clean-clone CI run started with ``nohup … &`` failed this way)."""
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                list(command), cwd=cwd, env=None if env is None else dict(env), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_default_sigint,
            )
        return cls(process, log_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout_s: float | None) -> int | None:
        """The exit code, or None if it still runs after ``timeout_s``."""
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def send_signal(self, sig: int, *, group: bool = True) -> None:
        """``sig`` to the child's process group (or the child alone); a group already gone is fine."""
        try:
            if group:
                os.killpg(self.process.pid, sig)
            else:
                os.kill(self.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, first: int = signal.SIGTERM, grace_s: float = DEFAULT_GRACE_S) -> int:
        """``first`` to the group, SIGKILL to the group after ``grace_s``, then SIGKILL to what is left
        of the group once the child has exited. Returns the exit code (negative: a signal)."""
        if self.process.poll() is None:
            self.send_signal(first)
            if self.wait(grace_s) is None:
                self.send_signal(signal.SIGKILL)
                self.wait(KILL_WAIT_S)
        self.send_signal(signal.SIGKILL)  # the group's stragglers: what it started must not outlive it
        code = self.process.poll()
        return code if code is not None else -signal.SIGKILL

    def run_to_end(
        self,
        timeout_s: float | None,
        *,
        first: int = signal.SIGTERM,
        grace_s: float = DEFAULT_GRACE_S,
        before_stop: Callable[["Child"], None] | None = None,
    ) -> Ended:
        """Wait for the child to end, or stop it after ``timeout_s`` (``before_stop`` runs first: ask it
        where it is, say). An interrupt of the parent (Ctrl-C, SIGTERM) stops the child too, then
        propagates. Whatever it started is killed with its group either way."""
        timed_out = False
        try:
            if self.wait(timeout_s) is None:
                timed_out = True
                if before_stop is not None:
                    before_stop(self)
                self.stop(first, grace_s)
        except BaseException:
            self.stop(first, grace_s)
            raise
        code = self.stop(first, grace_s)  # exited already: only the group's stragglers are killed
        return Ended(code, timed_out, time.perf_counter() - self.started)

    def tail(self, lines: int = 15) -> str:
        """The log's last ``lines`` meaningful lines, as one text."""
        return "\n".join(last_lines(self.log_path, lines))


def run(
    command: Sequence[str],
    log_path: Path,
    *,
    timeout_s: float | None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    first: int = signal.SIGTERM,
    grace_s: float = DEFAULT_GRACE_S,
    before_stop: Callable[[Child], None] | None = None,
) -> Ended:
    """Start ``command`` as a ``Child`` and ``run_to_end``."""
    return Child.start(command, log_path, env=env, cwd=cwd).run_to_end(timeout_s, first=first, grace_s=grace_s, before_stop=before_stop)
