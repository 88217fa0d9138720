"""The run model: what one pytest-benchmark JSON file holds once the loader has checked it.

A ``Run`` (one file: machine, commit, time, its benchmarks by case id), a ``Benchmark`` (one case:
pytest-benchmark's summary, the raw round times when saved, ``extra_info``), a ``Summary``. Plain
frozen dataclasses; the loader (``inferperf.record.load``) is the only thing that makes them from
files, and the ``--metric`` transform (``inferperf.analysis.judged_metric``) the only thing that
makes new ones from old.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping


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

    @property
    def items_per_round(self) -> int:
        value = self.extra.get("items_per_round")
        return int(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1

    @property
    def items_per_s(self) -> float:
        recorded = self.extra.get("items_per_s")
        if isinstance(recorded, (int, float)) and not isinstance(recorded, bool) and 0 < recorded < math.inf:
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

    @property
    def invalid_reason(self) -> str | None:
        """Why the record says its load was not what was asked (served cases' self-check), or None."""
        if self.extra.get("valid") is not False:
            return None
        return str(self.extra.get("invalid_reason") or "the client's self-check failed")

    @property
    def contended(self) -> bool:
        """The record says other work competed for the machine during the timed rounds."""
        contention = self.extra.get("contention")
        return (type(contention) is dict or isinstance(contention, Mapping)) and contention.get("contended") is True


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
        return str(self.machine.get("node") or "unknown")

    def relabelled(self, label: str) -> "Run":
        return replace(self, label=label)

    def select(self, keep: Callable[[str], bool]) -> "Run":
        """The run with only the cases whose id ``keep`` accepts."""
        return replace(self, benchmarks={k: b for k, b in self.benchmarks.items() if keep(k)})


@dataclass
class LoadReport:
    runs: list[Run]
    #: files inside folders that were skipped, with the reason (explicit files raise instead)
    skipped: list[str]
    #: every file read (loaded or skipped): what an output must never overwrite
    inputs: list[Path] = field(default_factory=list)
