"""The durable journal of a run, and recovering pytest-benchmark JSON from it.

pytest-benchmark writes its JSON once, when the session ends: a native crash, an out-of-memory
kill or a CI timeout loses every case measured before it. So as each case ends, its complete
pytest-benchmark entry is appended to a journal next to the JSON output (``out/run.json`` ->
``out/run.json.journal``) and flushed to disk. The journal is JSON lines:

- ``{"kind": "header", ...}`` first: ``machine_info``, ``commit_info``, ``datetime``, ``version``;
- ``{"kind": "start", "nodeid", "case_id"}`` when a case starts;
- ``{"kind": "benchmark", "nodeid", "benchmark": {...}}``: the entry exactly as the JSON holds it;
- ``{"kind": "skipped" | "failed", "case_id", "reason"}``: what goes into ``machine_info.inferperf``;
- ``{"kind": "end", "nodeid", "case_id", "outcome", "reports": [...]}`` when a case ends;
- ``{"kind": "finish", "exitstatus"}`` when the session ends.

``recover`` turns a journal, complete or cut off mid-line, into valid pytest-benchmark JSON and
names the case that was running when the process died. Stdlib only: ``inferperf recover`` runs
where no framework is installed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from inferperf.record.keys import RecordError
from inferperf.record.load import read_json
from inferperf.text import shown

JOURNAL_SUFFIX = ".journal"
JOURNAL_FORMAT = 1


def journal_path(json_path: Path) -> Path:
    return Path(f"{os.fspath(json_path)}{JOURNAL_SUFFIX}")


def _dumps(record: Mapping[str, Any]) -> str:
    """One line of JSON; values JSON cannot hold become their repr (as pytest-benchmark does)."""
    return json.dumps(record, ensure_ascii=True, default=repr, allow_nan=True)


class JournalWriter:
    """Appends records to a journal, each flushed and synced to disk before returning."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.set_aside: Path | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            # an earlier run's journal (its run died unrecovered): keep it, never overwrite it
            self.set_aside = path.with_name(f"{path.name}.{int(path.stat().st_mtime)}")
            os.replace(path, self.set_aside)
        self._file = open(path, "a", encoding="ascii")  # noqa: SIM115 - open for the session's lifetime
        self.closed = False

    def write(self, record: Mapping[str, Any]) -> None:
        if self.closed:
            return
        self._file.write(_dumps(record) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self.closed:
            self._file.close()
            self.closed = True

    def remove(self) -> None:
        self.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


# --------------------------------------------------------------------------------------------
# Reading and recovering


@dataclass
class JournalContent:
    """What a journal holds, read leniently: a cut-off last line is expected after a crash."""

    path: Path
    header: dict[str, Any]
    benchmarks: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    #: nodeid -> the case's "end" record
    ended: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the case that started and never ended (the process died while it ran), if any
    running: dict[str, Any] | None = None
    finished: bool = False
    exitstatus: int | None = None
    notes: list[str] = field(default_factory=list)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        info = os.stat(path)
    except OSError as exc:
        raise RecordError(f"{shown(path)}: cannot read ({exc.strerror or exc})") from None
    import stat

    if not stat.S_ISREG(info.st_mode):
        raise RecordError(f"{shown(path)}: is not a regular file; refused without reading")
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            yield number, line


def read_journal(path: Path) -> JournalContent:
    """Parse ``path``; ``RecordError`` when it is not a journal at all."""
    content: JournalContent | None = None
    for number, raw in _lines(path):
        complete = raw.endswith(b"\n")
        try:
            record = json.loads(raw.decode("utf-8"))
            if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
                raise ValueError("not a journal record")
        except (ValueError, RecursionError):
            if content is None:
                raise RecordError(f"{shown(path)}: line {number} is not a journal header; not an inferperf journal") from None
            content.notes.append(
                f"{shown(path)}: line {number} " + ("was cut off mid-line (the process died while writing it); ignored" if not complete else "is unreadable; ignored")
            )
            continue
        kind = record["kind"]
        if content is None:
            if kind != "header":
                raise RecordError(f"{shown(path)}: line 1 is not a journal header; not an inferperf journal")
            content = JournalContent(path, record)
            continue
        if kind == "start":
            content.running = record
        elif kind == "benchmark" and isinstance(record.get("benchmark"), dict):
            content.benchmarks.append(record["benchmark"])
        elif kind in ("skipped", "failed") and isinstance(record.get("case_id"), str):
            entry = {"case_id": record["case_id"], "reason": str(record.get("reason", ""))}
            target = content.skipped if kind == "skipped" else content.failed
            if entry not in target:
                target.append(entry)
        elif kind == "end":
            content.ended[str(record.get("nodeid"))] = record
            if content.running is not None and content.running.get("nodeid") == record.get("nodeid"):
                content.running = None
        elif kind == "finish":
            content.finished = True
            content.exitstatus = record.get("exitstatus")
    if content is None:
        raise RecordError(f"{shown(path)}: empty; not an inferperf journal")
    return content


@dataclass
class Recovered:
    """A run rebuilt from its journal."""

    content: JournalContent
    output: dict[str, Any]

    @property
    def notes(self) -> list[str]:
        return self.content.notes

    def json_text(self) -> str:
        return json.dumps(self.output, ensure_ascii=True, indent=4, default=repr) + "\n"

    def summary(self) -> str:
        count = len(self.output["benchmarks"])
        running = self.content.running
        if running is not None:
            return (
                f"{count} benchmark(s) recovered; the process died while running "
                f"{running.get('case_id') or running.get('nodeid')} ({running.get('nodeid')})"
            )
        if not self.content.finished:
            return f"{count} benchmark(s) recovered; the process died between cases"
        return f"{count} benchmark(s) recovered; the session had finished (exit status {self.content.exitstatus})"


def recover(path: Path) -> Recovered:
    """The pytest-benchmark JSON of the journal at ``path``.

    Every finished case's entry is kept as journaled; ``machine_info.inferperf`` gets the skipped
    and failed cases, and the case that was running when the process died is added to ``failed``.
    """
    content = read_journal(path)
    header = content.header
    machine = dict(header.get("machine_info") or {})
    ours = dict(machine.get("inferperf") or {})
    skipped = [e for e in ours.get("skipped", []) if isinstance(e, dict)]
    failed = [e for e in ours.get("failed", []) if isinstance(e, dict)]
    skipped += [e for e in content.skipped if e not in skipped]
    failed += [e for e in content.failed if e not in failed]
    if content.running is not None:
        case_id = str(content.running.get("case_id") or content.running.get("nodeid"))
        failed.append({"case_id": case_id, "reason": "the process died while this case ran (recovered from the journal)"})
    if machine.get("inferperf") is not None:
        ours.update(skipped=skipped, failed=failed)
        machine["inferperf"] = ours
    seen: set[str] = set()
    benchmarks = []
    for entry in content.benchmarks:
        key = str(entry.get("fullname"))
        if key not in seen:  # a case journaled twice (a rerun) counts once, as pytest-benchmark would
            seen.add(key)
            benchmarks.append(entry)
    output = {
        "machine_info": machine,
        "commit_info": header.get("commit_info") or {},
        "benchmarks": benchmarks,
        "datetime": header.get("datetime"),
        "version": header.get("version"),
    }
    return Recovered(content, output)


def journal_matches_json(journal: Path, json_file: Path) -> bool:
    """Whether ``json_file`` holds every benchmark the journal recorded (the journal can go)."""
    try:
        content = read_journal(journal)
        data = read_json(json_file)
    except RecordError:
        return False
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        return False
    written = {b.get("fullname") for b in data["benchmarks"] if isinstance(b, dict)}
    return all(entry.get("fullname") in written for entry in content.benchmarks)
