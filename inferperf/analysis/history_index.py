"""An index of a results store for ``inferperf history``: each run's points, kept between nights.

History needs, per run, little of its JSON: when it ran, the commit, the machine's fingerprint, and
per case the median, the uncertainty of its log (a bootstrap of the raw samples), items/s and
whether it was contended. Reading and bootstrapping every run of a year of nights again each night
is what made history slow; the index keeps those values per file and a new night only adds its own.

The store is SQLite (Python's ``sqlite3``: in the standard library, a single file, transactional,
safe with two readers and a writer, and written by the same code on every platform). It is a
cache, never the only copy of a result: the JSON files stay the record. Each file's row holds its
size and modification time; a file whose stat changed is read again, a file gone is dropped, a
file added is read, and an index written by another layout version (``INDEX_VERSION``), or that
cannot be opened as a database, is rebuilt from the JSON files. Its default place is the user's
cache folder (``$XDG_CACHE_HOME/inferperf/history/``, named by the store's absolute path), never
inside the store, which a nightly job may commit.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator, overload

from inferperf.analysis.history import (
    CasePoint,
    RunPoints,
    _require_runs,
    machine_of,
    reference_note,
    run_points,
)
from inferperf.record.fingerprint import MachineIdentity
from inferperf.record.keys import RecordError
from inferperf.record.load import collection_paused, json_files, load_run
from inferperf.text import shown

#: bump when what a row holds, or how a value in it is computed, changes: older indexes are rebuilt
INDEX_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, machine TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    usable INTEGER NOT NULL, reason TEXT, when_iso TEXT, commit_id TEXT, identity TEXT
);
CREATE TABLE IF NOT EXISTS points (
    path TEXT NOT NULL, case_id TEXT NOT NULL, median_s REAL NOT NULL, log_se REAL NOT NULL,
    items_per_s REAL NOT NULL, contended INTEGER NOT NULL, PRIMARY KEY (path, case_id)
);
"""


@overload
def _to_db(text: str) -> str: ...
@overload
def _to_db(text: None) -> None: ...
def _to_db(text: str | None) -> str | None:
    """Text as SQLite can hold it: a file name's undecodable bytes (surrogate escapes) survive as
    the UTF-8 bytes they stand for, one character per byte, and ``_from_db`` gives them back."""
    return None if text is None else text.encode("utf-8", "surrogateescape").decode("latin-1")


@overload
def _from_db(text: str) -> str: ...
@overload
def _from_db(text: None) -> None: ...
def _from_db(text: str | None) -> str | None:
    return None if text is None else text.encode("latin-1").decode("utf-8", "surrogateescape")


def default_index_path(root: Path) -> Path:
    """Where the index of ``root`` lives by default: the user's cache folder, keyed by the store's path."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.blake2b(str(root.resolve()).encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
    return cache / "inferperf" / "history" / f"{digest}.sqlite"


@dataclass(frozen=True)
class IndexUpdate:
    """What bringing the index up to date did."""

    read: int
    reused: int
    dropped: int
    rebuilt: bool


def _open(path: Path) -> tuple[sqlite3.Connection, bool]:
    """The index at ``path``, created or rebuilt when missing, unreadable or of another version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rebuilt = False
    for attempt in range(2):
        try:
            connection = sqlite3.connect(path, timeout=60)
            connection.executescript(_SCHEMA)
            row = connection.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
            if row is not None and row[0] == str(INDEX_VERSION):
                return connection, rebuilt
            if row is None and not connection.execute("SELECT 1 FROM files LIMIT 1").fetchone():
                connection.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (str(INDEX_VERSION),))
                connection.commit()
                return connection, rebuilt
            connection.close()
        except sqlite3.DatabaseError:
            if attempt:
                raise RecordError(f"{shown(path)}: the history index cannot be written; pass --no-index") from None
        # another layout, or not a database: start again from the JSON files
        path.unlink(missing_ok=True)
        rebuilt = True
    raise RecordError(f"{shown(path)}: the history index cannot be rebuilt; pass --no-index")


def update_index(root: Path, index: Path) -> IndexUpdate:
    """Bring the index of the store ``root`` up to date with its JSON files, reading only what changed."""
    connection, rebuilt = _open(index)
    with connection:
        known = {row[0]: (row[1], row[2]) for row in connection.execute("SELECT path, size, mtime_ns FROM files")}
        present: dict[str, tuple[Path, str, int, int]] = {}
        for path in json_files(root):
            machine = machine_of(root, path)
            if machine is None:
                continue
            info = path.stat()
            present[_to_db(str(path.relative_to(root)))] = (path, machine, info.st_size, info.st_mtime_ns)  # type: ignore[index]
        gone = [key for key in known if key not in present]
        changed = [key for key, (_, _, size, mtime) in present.items() if known.get(key) != (size, mtime)]
        for key in gone + changed:
            connection.execute("DELETE FROM files WHERE path = ?", (key,))
            connection.execute("DELETE FROM points WHERE path = ?", (key,))
        _read_into(connection, [present[key] for key in changed], root)
    connection.close()
    return IndexUpdate(read=len(changed), reused=len(present) - len(changed), dropped=len(gone), rebuilt=rebuilt)


#: run files read and reduced together: their bootstraps share the bulk path, and memory stays
#: bounded by a batch, not by the store (a cold index of 730 runs peaked at 870 MB read all at once)
READ_BATCH = 16

FileRow = tuple[str, str, int, int, int, "str | None", "str | None", "str | None", "str | None"]
PointRow = tuple[str, str, float, float, float, int]


def _read_into(connection: sqlite3.Connection, files: list[tuple[Path, str, int, int]], root: Path) -> None:
    """Read the changed files and store their points: batches of files reduced in forked workers
    across the CPUs when there are many (a cold index of a year of nights), else here."""
    from inferperf.analysis import batch_stats

    batches = [files[start : start + READ_BATCH] for start in range(0, len(files), READ_BATCH)]
    workers = min(len(batches), batch_stats.cpus())
    if workers > 1:
        try:
            context = multiprocessing.get_context("fork")
        except ValueError:
            context = None
        if context is not None:
            with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=batch_stats.serial_only) as pool:
                for rows in pool.map(_reduce_batch, batches, [root] * len(batches)):
                    _store(connection, rows)
            return
    for batch in batches:
        _store(connection, _reduce_batch(batch, root))


def _store(connection: sqlite3.Connection, rows: list[tuple[FileRow, list[PointRow]]]) -> None:
    for file_row, point_rows in rows:
        connection.execute("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", file_row)
        connection.executemany("INSERT INTO points VALUES (?, ?, ?, ?, ?, ?)", point_rows)


def _reduce_batch(files: list[tuple[Path, str, int, int]], root: Path) -> list[tuple[FileRow, list[PointRow]]]:
    """Each file's row and its points' rows (an unreadable file: its row with the reason)."""
    with collection_paused():
        return _reduce_files(files, root)


def _reduce_files(files: list[tuple[Path, str, int, int]], root: Path) -> list[tuple[FileRow, list[PointRow]]]:
    rows: list[tuple[FileRow, list[PointRow]]] = []
    loaded = []
    for path, machine, size, mtime in files:
        key, machine_key = _to_db(str(path.relative_to(root))), _to_db(machine)
        try:
            run = load_run(path, label=shown(f"{machine}/{path.stem}"))
        except RecordError as exc:
            rows.append(((key, machine_key, size, mtime, 0, _to_db(str(exc)), None, None, None), []))  # type: ignore[arg-type]
            continue
        loaded.append((key, machine_key, size, mtime, run))
    for (key, machine, size, mtime, _), points in zip(loaded, run_points([entry[4] for entry in loaded])):
        identity = json.dumps(list(points.identity.facts)) if points.identity is not None else None
        rows.append(
            (
                (key, machine, size, mtime, 1, None, points.when.isoformat(), _to_db(points.commit), identity),
                [(key, _to_db(case_id), c.median_s, c.log_se, c.items_per_s, int(c.contended)) for case_id, c in points.cases.items()],
            )
        )
    return rows


def indexed_points(root: Path, index: Path, only: str | None = None) -> tuple[dict[str, list[RunPoints]], list[str], IndexUpdate]:
    """``history.machine_points`` from the index: the same runs and values, after bringing it up to date."""
    if not root.is_dir():
        raise RecordError(f"{shown(root)}: not a results folder")
    update = update_index(root, index)
    connection = sqlite3.connect(index, timeout=60)
    try:
        per_machine: dict[str, list[RunPoints]] = {}
        skipped = reference_note(root)
        where, args = ("WHERE machine = ?", (_to_db(only),)) if only is not None else ("", ())
        files = connection.execute(f"SELECT path, machine, usable, reason, when_iso, commit_id, identity FROM files {where} ORDER BY path", args).fetchall()
        cases: dict[str, dict[str, CasePoint]] = {}
        for path, case_id, median, log_se, items, contended in _points(connection, only):
            cases.setdefault(path, {})[_from_db(case_id)] = CasePoint(median, log_se, items, bool(contended))  # type: ignore[index]
    finally:
        connection.close()
    for path, machine, usable, reason, when_iso, commit, identity in files:
        if not usable:
            skipped.append(f"skipped {_from_db(reason)}")
            continue
        facts = tuple(tuple(pair) for pair in json.loads(identity)) if identity else None
        per_machine.setdefault(_from_db(machine), []).append(  # type: ignore[arg-type]
            RunPoints(root / _from_db(path), datetime.fromisoformat(when_iso), _from_db(commit), MachineIdentity(facts) if facts else None, cases.get(path, {}))  # type: ignore[arg-type]
        )
    _require_runs(root, per_machine, only, skipped)
    for runs in per_machine.values():
        runs.sort(key=lambda r: (r.when, r.path.name))
    return per_machine, skipped, update


def _points(connection: sqlite3.Connection, only: str | None) -> Iterator[tuple[str, str, float, float, float, int]]:
    if only is None:
        yield from connection.execute("SELECT path, case_id, median_s, log_se, items_per_s, contended FROM points")
        return
    yield from connection.execute(
        "SELECT p.path, p.case_id, p.median_s, p.log_se, p.items_per_s, p.contended FROM points p "
        "JOIN files f ON f.path = p.path WHERE f.machine = ?",
        (_to_db(only),),
    )
