"""Load pytest-benchmark JSON runs (3.x, 4.x, 5.x; with or without raw samples or inferperf keys).

Every problem is a ``RecordError`` whose message names the file and the field, never a
traceback. Folders are searched recursively for ``*.json``; inside a folder a bad file is
skipped with a warning naming it, while a bad file named explicitly is an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from inferperf import SCHEMA_VERSION
from inferperf.analysis.schema import RecordError, load_json
from inferperf.analysis.stats import SummaryStats

#: the summary statistics every pytest-benchmark version writes (seconds per round)
_REQUIRED_STATS = ("min", "max", "mean", "stddev", "median", "rounds")
_TIME_STATS = ("min", "max", "mean", "median")


@dataclass(frozen=True)
class Summary:
    """pytest-benchmark's summary of one benchmark, seconds per round."""

    min: float
    max: float
    mean: float
    stddev: float
    median: float
    rounds: int
    iqr: float | None = None


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of one run."""

    case_id: str
    name: str
    summary: Summary
    #: raw seconds per round (``--benchmark-save-data``), None when only the summary was saved
    samples: tuple[float, ...] | None
    extra: Mapping[str, Any]
    timer: str | None

    def summary_stats(self) -> SummaryStats:
        s = self.summary
        return SummaryStats(median=s.median, mean=s.mean, stddev=s.stddev, rounds=s.rounds, iqr=s.iqr)

    @property
    def items_per_round(self) -> int:
        value = self.extra.get("items_per_round")
        return int(value) if isinstance(value, (int, float)) and value > 0 else 1

    @property
    def items_per_s(self) -> float:
        recorded = self.extra.get("items_per_s")
        if isinstance(recorded, (int, float)) and recorded > 0:
            return float(recorded)
        return self.items_per_round / self.summary.median

    def field(self, name: str) -> str:
        """A case field (technique, model, variant, device, …) from extra_info or the case id."""
        value = self.extra.get(name)
        if value is not None:
            return str(value)
        if name == "technique":
            return self.case_id.split("/", 1)[0] if "/" in self.case_id else "-"
        return "-"


@dataclass(frozen=True)
class Run:
    """One pytest-benchmark JSON file."""

    path: Path
    label: str
    machine: Mapping[str, Any]
    commit: Mapping[str, Any]
    when: datetime | None
    benchmarks: Mapping[str, Benchmark] = field(default_factory=dict)

    @property
    def inferperf_machine(self) -> Mapping[str, Any]:
        value = self.machine.get("inferperf")
        return value if isinstance(value, Mapping) else {}

    @property
    def machine_id(self) -> str:
        """Where the run was made: the storage folder name if it has one, else the host name."""
        return str(self.machine.get("node") or "unknown")


@dataclass
class LoadReport:
    runs: list[Run]
    #: files inside folders that were skipped, with the reason (explicit files raise instead)
    skipped: list[str]


def _number(value: Any, path: Path, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"{path}: {where} is {value!r}, expected a number")
    if not math.isfinite(value):
        raise RecordError(f"{path}: {where} is {value!r}, expected a finite number")
    return float(value)


def _summary(stats: Any, path: Path, name: str) -> Summary:
    if not isinstance(stats, Mapping):
        raise RecordError(f"{path}: {name}: 'stats' is missing")
    missing = [k for k in _REQUIRED_STATS if k not in stats]
    if missing:
        raise RecordError(f"{path}: {name}: stats.{missing[0]} is missing")
    values = {k: _number(stats[k], path, f"{name}: stats.{k}") for k in _REQUIRED_STATS}
    for key in _TIME_STATS:
        if values[key] <= 0:
            raise RecordError(f"{path}: {name}: stats.{key} is {values[key]!r}, expected a positive time in seconds")
    if values["rounds"] < 1:
        raise RecordError(f"{path}: {name}: stats.rounds is {values['rounds']!r}, expected >= 1")
    iqr = stats.get("iqr")
    return Summary(
        min=values["min"],
        max=values["max"],
        mean=values["mean"],
        stddev=max(0.0, values["stddev"]),
        median=values["median"],
        rounds=int(values["rounds"]),
        iqr=float(iqr) if isinstance(iqr, (int, float)) and math.isfinite(iqr) else None,
    )


def _samples(stats: Mapping[str, Any], path: Path, name: str) -> tuple[float, ...] | None:
    data = stats.get("data")
    if data is None:
        return None
    if not isinstance(data, list) or not data:
        raise RecordError(f"{path}: {name}: stats.data is {type(data).__name__}, expected a list of round times")
    values = tuple(_number(v, path, f"{name}: stats.data[{i}]") for i, v in enumerate(data))
    if min(values) <= 0:
        raise RecordError(f"{path}: {name}: stats.data holds a time <= 0, expected positive seconds")
    return values


def _benchmark(raw: Any, path: Path, index: int) -> Benchmark:
    if not isinstance(raw, Mapping):
        raise RecordError(f"{path}: benchmarks[{index}] is {type(raw).__name__}, expected an object")
    name = str(raw.get("fullname") or raw.get("name") or f"benchmarks[{index}]")
    extra = raw.get("extra_info") if isinstance(raw.get("extra_info"), Mapping) else {}
    stats = raw.get("stats")
    summary = _summary(stats, path, name)
    samples = _samples(stats, path, name)
    # Plain pytest-benchmark files have no case id: the test's full name is stable across runs.
    case_id = str(extra.get("case_id") or raw.get("fullname") or raw.get("name") or "")
    if not case_id:
        raise RecordError(f"{path}: benchmarks[{index}] has neither extra_info.case_id nor a name")
    options = raw.get("options") if isinstance(raw.get("options"), Mapping) else {}
    timer = options.get("timer")
    return Benchmark(case_id, name, summary, samples, dict(extra), str(timer) if timer else None)


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def load_run(path: Path, label: str | None = None) -> Run:
    data = load_json(path)
    machine = data.get("machine_info") if isinstance(data.get("machine_info"), Mapping) else {}
    schema = machine.get("inferperf", {}).get("schema") if isinstance(machine.get("inferperf"), Mapping) else None
    if isinstance(schema, int) and schema > SCHEMA_VERSION:
        raise RecordError(
            f"{path}: machine_info.inferperf.schema is {schema}, newer than this inferperf reads "
            f"({SCHEMA_VERSION}); upgrade inferperf"
        )
    raw_benchmarks = data["benchmarks"]
    if not isinstance(raw_benchmarks, list):
        raise RecordError(f"{path}: 'benchmarks' is {type(raw_benchmarks).__name__}, expected a list")
    benchmarks: dict[str, Benchmark] = {}
    for index, raw in enumerate(raw_benchmarks):
        bench = _benchmark(raw, path, index)
        if bench.case_id in benchmarks:
            raise RecordError(f"{path}: duplicate case id {bench.case_id!r} (benchmarks[{index}])")
        benchmarks[bench.case_id] = bench
    commit = data.get("commit_info") if isinstance(data.get("commit_info"), Mapping) else {}
    return Run(
        path=path,
        label=label or _default_label(path),
        machine=machine,
        commit=commit,
        when=_when(data.get("datetime")),
        benchmarks=benchmarks,
    )


def _default_label(path: Path) -> str:
    # pytest-benchmark storage: <storage>/<machine-id>/<NNNN_commit_date>.json
    parent = path.parent.name
    return f"{parent}/{path.stem}" if parent and parent not in (".", "") else path.stem


def _shortest_labels(runs: list[Run]) -> list[Run]:
    """File stems when they tell the runs apart, else folder/stem (storage layouts), else paths."""
    for name in (lambda r: r.path.stem, lambda r: _default_label(r.path), lambda r: str(r.path)):
        labels = [name(r) for r in runs]
        if len(set(labels)) == len(labels):
            return [Run(r.path, label, r.machine, r.commit, r.when, r.benchmarks) for r, label in zip(runs, labels)]
    return runs


def _json_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.json") if p.is_file())


def load_runs(sources: Sequence[Path], labels: Sequence[str] | None = None) -> LoadReport:
    """Load files and folders in the order given (the first run is the base of a comparison)."""
    runs: list[Run] = []
    skipped: list[str] = []
    for source in sources:
        if source.is_dir():
            files = _json_files(source)
            if not files:
                raise RecordError(f"{source}: folder holds no .json runs")
            for path in files:
                try:
                    runs.append(load_run(path))
                except RecordError as exc:
                    skipped.append(f"skipped {exc}")
        elif source.exists():
            runs.append(load_run(source))
        else:
            raise RecordError(f"{source}: no such file or folder")
    if labels:
        if len(labels) != len(runs):
            raise RecordError(f"--labels: {len(labels)} labels given for {len(runs)} runs")
        runs = [Run(r.path, lab, r.machine, r.commit, r.when, r.benchmarks) for r, lab in zip(runs, labels)]
    else:
        runs = _shortest_labels(runs)
    _disambiguate(runs)
    return LoadReport(runs, skipped)


def _disambiguate(runs: Iterable[Run]) -> None:
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.label] = seen.get(run.label, 0) + 1
    duplicates = sorted(label for label, count in seen.items() if count > 1)
    if duplicates:
        raise RecordError(f"two runs share the label {duplicates[0]!r}; pass --labels to name them")
