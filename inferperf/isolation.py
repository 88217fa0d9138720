"""Running one case in a fresh child process, so a native crash costs one case, not the run.

The parent pytest session (``--isolate``) starts ``python -m pytest <nodeid>`` per case, in its
own process group, with the parent's calibration, a shared cache of built artefacts (random-init
checkpoints, the JPEG corpus, exported zoo models) and a journal of its own. The child's journal
is the only channel back: its benchmark entry, skip and failure notes, and its reports. A child
that dies by a signal, exits with a code pytest never uses for a finished test, or outlives
``--case-timeout`` becomes a failure naming the signal, code or timeout and the last lines it
printed. The child is started and stopped as every child of the suite is (``inferperf.children``).
Stdlib only.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from inferperf import children
from inferperf.children import last_lines, signal_name
from inferperf.journal import JournalContent, read_journal
from inferperf.record.keys import RecordError

#: the environment a child reads: it runs the case itself, takes the parent's calibration and
#: shares the parent's cache of built artefacts
CHILD_ENV = "INFERPERF_ISOLATED_CHILD"
CALIBRATION_ENV = "INFERPERF_CALIBRATION_FILE"
CACHE_ENV = "INFERPERF_CACHE_DIR"
#: where a child's faulthandler writes every thread's stack on ``STACK_DUMP_SIGNAL`` (pytest
#: captures the child's stderr while a test runs, so the dump needs a file of its own)
STACKS_ENV = "INFERPERF_STACKS_FILE"

#: exit codes of a pytest run whose test ran to its end (0 passed/skipped, 1 failed)
FINISHED_CODES = (0, 1)
#: after SIGTERM, how long a child may take to write its journal before SIGKILL
TERM_GRACE_S = 5.0
TAIL_LINES = 12
#: a child registers faulthandler for this signal; the parent sends it before stopping a child for time
STACK_DUMP_SIGNAL = signal.SIGUSR1
STACK_DUMP_WAIT_S = 1.0


@dataclass(frozen=True)
class ChildResult:
    """How a child ran: its exit, whether it was stopped for time, what it printed last and journaled."""

    returncode: int
    timed_out: bool
    seconds: float
    tail: tuple[str, ...]
    journal: JournalContent | None
    journal_problem: str | None = None
    #: every thread's stack, most recent call first, when the child was stopped for time
    stacks: tuple[str, ...] = ()

    def death(self, timeout_s: float | None) -> str | None:
        """Why the child did not finish its case normally, or None."""
        if self.timed_out:
            death = f"timed out after {timeout_s:g} s (--case-timeout); the child was stopped"
        elif self.returncode < 0:
            death = f"the child process died by signal {signal_name(-self.returncode)}"
        elif self.returncode not in FINISHED_CODES:
            death = f"the child process exited with code {self.returncode}"
        else:
            return None
        site = crash_site(self.stacks or self.tail)
        return f"{death}: {site}" if site else death


def _first_lines(path: Path, count: int = 40) -> tuple[str, ...]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return tuple(line.rstrip()[:300] for _, line in zip(range(count), fh) if line.strip())
    except OSError:
        return ()


def crash_site(lines: Sequence[str]) -> str | None:
    """Where a child died, from faulthandler's dump: ``Fatal Python error: … at file:line in function``.

    faulthandler prints the crashing (or, on ``SIGUSR1``, every) thread's stack, most recent call
    first; the first frame under the current thread is where it was.
    """
    fatal = next((line.strip() for line in lines if line.startswith("Fatal Python error")), None)
    frame = None
    for index, line in enumerate(lines):
        if line.startswith("Current thread") or (fatal is None and line.startswith("Thread 0x")):
            frame = next((f.strip() for f in lines[index + 1 :] if f.strip().startswith("File ")), None)
            break
    if frame is not None:
        frame = frame.replace("File ", "", 1)
    if fatal and frame:
        return f"{fatal} at {frame}"
    return fatal or (f"at {frame}" if frame else None)


def _dump_stacks(child: children.Child) -> None:
    """Ask a child that ran out of time where it is: its faulthandler prints every thread's stack."""
    child.send_signal(STACK_DUMP_SIGNAL, group=False)
    child.wait(STACK_DUMP_WAIT_S)


def run_child(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    journal: Path,
    timeout_s: float | None,
) -> ChildResult:
    """Run ``command`` to its end (or ``timeout_s``) and read back its journal."""
    stacks = log_path.with_suffix(".stacks")
    env = {**env, STACKS_ENV: str(stacks)}
    # SIGTERM first: the child's handler writes its journal; whatever it started dies with its group
    ended = children.run(command, log_path, timeout_s=timeout_s, env=env, cwd=cwd, first=signal.SIGTERM, grace_s=TERM_GRACE_S,
                         before_stop=_dump_stacks)
    content, problem = None, None
    if journal.exists():
        try:
            content = read_journal(journal)
        except RecordError as exc:
            problem = str(exc)
    return ChildResult(
        returncode=ended.returncode,
        timed_out=ended.timed_out,
        seconds=ended.seconds,
        tail=last_lines(log_path, TAIL_LINES * 5),
        stacks=_first_lines(stacks) if ended.timed_out else (),
        journal=content,
        journal_problem=problem,
    )
