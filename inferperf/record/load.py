"""The one strict loader of pytest-benchmark JSON runs (3.x, 4.x, 5.x; with or without raw samples
or inferperf keys), used by every command that reads runs.

Every problem is a one-line message naming the file (escaped when its name has odd characters)
and the field, never a traceback. ``read_run`` returns the run and *all* its problems (what
``inferperf validate`` prints); ``load_run`` raises ``RecordError`` with the first. Non-regular
files (FIFOs, devices, directories named ``*.json``) are refused without being opened, so nothing
can make a command hang. Folders are searched recursively for ``*.json``; inside a folder a bad
file is skipped with a line naming it, while a bad file named explicitly is an error.
"""

from __future__ import annotations

import gc
import json
import os
import stat
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from inferperf.record import bulk
from inferperf.record.keys import (
    EXTRA_INFO_KEYS,
    MACHINE_KEYS,
    SCHEMA_VERSION,
    RecordError,
    key_problems,
)
from inferperf.record.run import Benchmark, LoadReport, Run, Summary
from inferperf.record.values import finite_number
from inferperf.text import shown

#: the summary statistics every pytest-benchmark version writes (seconds per round)
_REQUIRED_STATS = ("min", "max", "mean", "stddev", "median", "rounds")
_TIME_STATS = ("min", "max", "mean", "median")
#: a run file larger than this is not something pytest-benchmark wrote
MAX_RUN_BYTES = 1 << 30

_fast_json: Callable[[bytes], Any] | None
try:  # orjson parses a fleet's files 2.5x faster than json (the same values: both round correctly;
    # it declines NaN, Infinity and integers past 64 bits, which the standard parser then reads)
    from orjson import loads as _fast_json
except ImportError:  # pragma: no cover - a core dependency; the standard parser still works
    _fast_json = None


# --------------------------------------------------------------------------------------------
# Reading JSON safely


def read_json(path: Path) -> Any:
    """The parsed content of ``path``; ``RecordError`` (one line) for anything else.

    Refuses non-regular files before opening them, reads at most ``MAX_RUN_BYTES``, requires
    UTF-8, rejects absurdly long integers and nesting too deep to parse. NaN and Infinity parse
    (Python writes them) and are rejected by the field checks where a finite number is needed.
    """
    name = shown(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise RecordError(f"{name}: no such file or folder") from None
    except OSError as exc:
        raise RecordError(f"{name}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode) else "not a regular file"
        raise RecordError(f"{name}: is {kind}, not a run file; refused without reading")
    if info.st_size > MAX_RUN_BYTES:
        raise RecordError(f"{name}: {info.st_size} bytes, larger than any run ({MAX_RUN_BYTES} bytes at most)")
    try:
        # O_NONBLOCK: should the path be swapped for a FIFO after the check, open() still returns
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise RecordError(f"{name}: is not a regular file; refused")
            raw = fh.read(MAX_RUN_BYTES + 1)
    except OSError as exc:
        raise RecordError(f"{name}: cannot read ({exc.strerror or exc})") from None
    if _fast_json is not None:
        try:
            return _fast_json(raw)
        except Exception:  # noqa: BLE001 - NaN, huge integers, bad text: the standard parser says what
            pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{name}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise RecordError(f"{name}: not a run (JSON nested too deeply to read)") from None
    except ValueError as exc:  # an integer of thousands of digits
        reason = "an integer with too many digits" if "digits" in str(exc) else str(exc)
        raise RecordError(f"{name}: not valid JSON ({reason})") from None


# --------------------------------------------------------------------------------------------
# Checking a run


class _Problems:
    def __init__(self, path: Path) -> None:
        self.name = shown(path)
        self.lines: list[str] = []

    def add(self, message: str) -> None:
        self.lines.append(f"{self.name}: {message}")


def _describe(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return type(value).__name__
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _summary(stats: Any, name: str, problems: _Problems) -> Summary | None:
    if not isinstance(stats, Mapping):
        problems.add(f"{name}: 'stats' is {'missing' if stats is None else _describe(stats)}, expected an object")
        return None
    values: dict[str, float] = {}
    for key in _REQUIRED_STATS:
        if key not in stats:
            problems.add(f"{name}: stats.{key} is missing")
            continue
        number = finite_number(stats[key])
        if number is None:
            problems.add(f"{name}: stats.{key} is {_describe(stats[key])}, expected a finite number")
        elif key in _TIME_STATS and number <= 0:
            problems.add(f"{name}: stats.{key} is {_describe(stats[key])}, expected a positive time in seconds")
        elif key == "stddev" and number < 0:
            problems.add(f"{name}: stats.stddev is {_describe(stats[key])}, expected >= 0")
        elif key == "rounds" and (number < 1 or number != int(number)):
            problems.add(f"{name}: stats.rounds is {_describe(stats[key])}, expected an integer >= 1")
        else:
            values[key] = number
    if len(values) < len(_REQUIRED_STATS):
        return None
    if not values["min"] <= values["median"] <= values["max"]:
        problems.add(f"{name}: stats.median {values['median']!r} is not between stats.min and stats.max")
        return None
    iqr = finite_number(stats.get("iqr"))
    return Summary(
        min=values["min"], max=values["max"], mean=values["mean"], stddev=values["stddev"],
        median=values["median"], rounds=int(values["rounds"]), iqr=iqr if iqr is not None and iqr >= 0 else None,
    )


def _samples(stats: Any, rounds: int | None, name: str, problems: _Problems) -> tuple[float, ...] | None:
    if not isinstance(stats, Mapping) or stats.get("data") is None:
        return None
    data = stats["data"]
    if not isinstance(data, list) or not data:
        problems.add(f"{name}: stats.data is {_describe(data) if data != [] else 'empty'}, expected a list of round times")
        return None
    if all(type(value) is float for value in data):
        # the common case in bulk: every time a float; any that is not finite and positive is
        # found again below, one by one, to name it
        times = np.asarray(data, dtype=np.float64)
        if bool(np.all(np.isfinite(times) & (times > 0))):
            if rounds is not None and len(data) != rounds:
                problems.add(f"{name}: stats.data holds {len(data)} round times but stats.rounds is {rounds}")
                return None
            return tuple(data)
    values = []
    for index, value in enumerate(data):
        number = finite_number(value)
        if number is None or number <= 0:
            problems.add(f"{name}: stats.data[{index}] is {_describe(value)}, expected a positive time in seconds")
            return None
        values.append(number)
    if rounds is not None and len(values) != rounds:
        problems.add(f"{name}: stats.data holds {len(values)} round times but stats.rounds is {rounds}")
        return None
    return tuple(values)


def _object(value: Any, where: str, problems: _Problems, *, required: bool = False) -> Mapping[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        problems.add(f"{where} is {'missing' if value is None else _describe(value)}, expected an object")
        return {}
    return value


def _benchmark(raw: Any, index: int, problems: _Problems, typed: bool) -> Benchmark | None:
    if not isinstance(raw, Mapping):
        problems.add(f"benchmarks[{index}] is {_describe(raw)}, expected an object")
        return None
    before = len(problems.lines)
    label = raw.get("fullname") or raw.get("name")
    name = label if isinstance(label, str) and label else f"benchmarks[{index}]"
    for key in ("name", "fullname"):
        if key in raw and not isinstance(raw[key], str):
            problems.add(f"{name}: {key} is {_describe(raw[key])}, expected a string")
    extra = _object(raw.get("extra_info", {}), f"{name}: extra_info", problems, required="extra_info" in raw)
    if typed:  # an inferperf run: every documented key has its documented type
        problems.lines += [f"{problems.name}: {name}: {line}" for line in key_problems(EXTRA_INFO_KEYS, extra, "extra_info", require=False)]
    options = _object(raw.get("options"), f"{name}: options", problems)
    stats = raw.get("stats")
    summary = _summary(stats, name, problems)
    samples = _samples(stats, summary.rounds if summary else None, name, problems)
    # Plain pytest-benchmark files have no case id: the test's full name is stable across runs.
    case_id = extra.get("case_id") or raw.get("fullname") or raw.get("name")
    if not isinstance(case_id, str) or not case_id:
        problems.add(f"benchmarks[{index}] has neither extra_info.case_id nor a name")
        return None
    if summary is None or len(problems.lines) > before:
        return None
    timer = options.get("timer")
    return Benchmark(case_id, name, summary, samples, dict(extra), str(timer) if timer else None)


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def check_run(data: Any, path: Path, label: str | None = None) -> tuple[Run | None, list[str]]:
    """The run in ``data`` (None when unusable) and every problem found, one line each."""
    problems = _Problems(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("benchmarks"), list):
        if isinstance(data, Mapping) and "benchmarks" in data:
            problems.add(f"'benchmarks' is {_describe(data['benchmarks'])}, expected a list")
        else:
            problems.add("not pytest-benchmark output (no top-level 'benchmarks' list)")
        return None, problems.lines
    machine = _object(data.get("machine_info"), "machine_info", problems)
    ours = _object(machine.get("inferperf"), "machine_info.inferperf", problems)
    schema = ours.get("schema")
    if isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA_VERSION:
        problems.add(
            f"machine_info.inferperf.schema is {schema}, newer than this inferperf reads ({SCHEMA_VERSION}); upgrade inferperf"
        )
        return None, problems.lines
    problems.lines += [f"{problems.name}: {line}" for line in key_problems(MACHINE_KEYS, ours, "machine_info.inferperf", require=False)]
    commit = _object(data.get("commit_info"), "commit_info", problems)
    when = data.get("datetime")
    if when is not None and _when(when) is None:
        problems.add(f"datetime is {_describe(when)}, expected an ISO 8601 time")
    fast = bulk.benchmarks(data["benchmarks"], EXTRA_INFO_KEYS if ours else None) if not problems.lines else None
    benchmarks: dict[str, Benchmark] = fast if fast is not None else {}
    for index, raw in enumerate(data["benchmarks"] if fast is None else ()):  # one by one, naming each problem
        bench = _benchmark(raw, index, problems, typed=bool(ours))
        if bench is None:
            continue
        if bench.case_id in benchmarks:
            problems.add(f"duplicate case id {shown(bench.case_id)!r} (benchmarks[{index}])")
            continue
        benchmarks[bench.case_id] = bench
    if problems.lines:
        return None, problems.lines
    run = Run(path=path, label=label or _default_label(path), machine=machine, commit=commit, when=_when(when), benchmarks=benchmarks)
    return run, []


def read_run(path: Path, label: str | None = None) -> tuple[Run | None, list[str]]:
    """Read and check ``path``: the run and every problem (unreadable files give one problem)."""
    try:
        data = read_json(path)
    except RecordError as exc:
        return None, [str(exc)]
    return check_run(data, path, label)


def load_run(path: Path, label: str | None = None) -> Run:
    """The run at ``path``, or ``RecordError`` naming its first problem."""
    run, problems = read_run(path, label)
    if run is None:
        raise RecordError(_first_problem(problems))
    return run


def _default_label(path: Path) -> str:
    # pytest-benchmark storage: <storage>/<machine-id>/<NNNN_commit_date>.json
    parent = path.parent.name
    return shown(f"{parent}/{path.stem}" if parent and parent not in (".", "") else path.stem)


def short_label(run: Run) -> str:
    """A label a person reads at a glance: the storage number, short commit and date of the run.

    ``0008_505c4fcd38c6…_20261124_065823.json`` becomes ``#8 505c4fc 11-24 06:58``; other names
    keep their stem.
    """
    stem = run.path.stem
    parts = stem.split("_")
    commit = str(run.commit.get("id") or "")[:7]
    when = run.when.strftime("%m-%d %H:%M") if run.when else ""
    if parts[0].isdigit() and len(parts) >= 2:
        bits = [f"#{int(parts[0])}", commit or parts[1][:7], when]
        return shown(" ".join(b for b in bits if b))
    return shown(stem)


def _labelled(runs: list[Run]) -> list[Run]:
    """Short labels when they tell the runs apart, else folder/stem, else the paths."""
    for name in (short_label, lambda r: shown(r.path.stem), lambda r: _default_label(r.path), lambda r: shown(r.path)):
        labels = [name(r) for r in runs]
        if len(set(labels)) == len(labels):
            return [r.relabelled(label) for r, label in zip(runs, labels)]
    # the same file given twice (an A/A check): number them in the order given
    return [r.relabelled(f"{short_label(r)} [{index}]") for index, r in enumerate(runs, start=1)]


def json_files(folder: Path) -> list[Path]:
    """``*.json`` under ``folder`` that are regular files (FIFOs and folders named ``*.json`` are not)."""
    found = []
    for path in folder.rglob("*.json"):
        try:
            if stat.S_ISREG(os.lstat(path).st_mode):
                found.append(path)
        except OSError:
            continue
    return sorted(found)


def load_runs(sources: Sequence[Path], labels: Sequence[str] | None = None) -> LoadReport:
    """Load files and folders in the order given (the first run is the base of a comparison)."""
    with collection_paused():
        return _load_runs(sources, labels)


@contextmanager
def collection_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while runs load: a fleet's files are millions of fresh
    objects with no cycles, and collecting among them took a quarter of the loading time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load_runs(sources: Sequence[Path], labels: Sequence[str] | None) -> LoadReport:
    runs: list[Run] = []
    skipped: list[str] = []
    wanted: list[tuple[Path, bool]] = []  # (file, named explicitly)
    for source in sources:
        if source.is_dir():
            files = json_files(source)
            if not files:
                raise RecordError(f"{shown(source)}: folder holds no .json runs")
            wanted += [(path, False) for path in files]
        else:
            wanted.append((source, True))
    for (path, explicit), (run, problems) in zip(wanted, _read_all([path for path, _ in wanted])):
        if run is not None:
            runs.append(run)
        elif explicit:
            raise RecordError(_first_problem(problems))
        else:
            skipped.append(f"skipped {_first_problem(problems)}")
    if labels:
        if len(labels) != len(runs):
            raise RecordError(f"--labels: {len(labels)} labels given for {len(runs)} runs")
        runs = [r.relabelled(label) for r, label in zip(runs, labels)]
    else:
        runs = _labelled(runs)
    _disambiguate(runs)
    return LoadReport(runs, skipped, [path for path, _ in wanted])


#: files worth reading in other processes when together they hold this much (a fleet's runs);
#: below it, starting processes costs more than it saves
PARALLEL_BYTES = 32 << 20


def _read_all(paths: Sequence[Path]) -> Iterator[tuple[Run | None, list[str]]]:
    """``read_run`` of each path, in order. When the files are large, every file but the first is
    read in other processes (one per core this process may use, less one) while this one reads
    the first: a run is checked in Python, so two files on two cores take the time of one and a
    half (the other process's run comes back pickled)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if len(paths) < 2 or cores < 2 or sum(_size(p) for p in paths) < PARALLEL_BYTES:
        yield from (read_run(path) for path in paths)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if sys.platform == "linux" else "spawn"
    with ProcessPoolExecutor(min(cores - 1, len(paths) - 1), mp_context=multiprocessing.get_context(method)) as pool:
        others = [pool.submit(read_run, path) for path in paths[1:]]
        yield read_run(paths[0])
        for future in others:
            yield future.result()


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _first_problem(problems: list[str]) -> str:
    more = f" (and {len(problems) - 1} more; `inferperf validate` lists them)" if len(problems) > 1 else ""
    return problems[0] + more


def _disambiguate(runs: Iterable[Run]) -> None:
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.label] = seen.get(run.label, 0) + 1
    duplicates = sorted(label for label, count in seen.items() if count > 1)
    if duplicates:
        raise RecordError(f"two runs share the label {duplicates[0]!r}; pass --labels to name them")
