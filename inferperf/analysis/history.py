"""Nightly history: per machine and case, the series of runs over time and its steps.

The store is pytest-benchmark's storage layout under one folder per machine:
``results/<machine-id>/<platform-id>/NNNN_<commit>_<date>.json`` (what
``--benchmark-autosave --benchmark-storage=file://results/<machine-id>`` writes). A machine is
the first folder under the results directory: history is per machine, so moving to another
machine starts a new series instead of looking like a regression. Inside a folder, runs are also
told apart by their machine's fingerprint (``inferperf.record.fingerprint``): where it changes (a
hosted runner on new hardware, a torch upgrade), a new segment starts, marked "machine changed";
steps are fitted within each segment, so a hardware change is never reported as a regression.

The HTML site (``--output``) is rendered by ``inferperf.analysis.history_site``.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Mapping, Sequence

from inferperf.analysis.changepoint import Segment, Step, detect_steps_many
from inferperf.analysis.settings import HistorySettings
from inferperf.analysis.stats import SummaryStats
from inferperf.record.fingerprint import MachineIdentity, machine_identity
from inferperf.record.keys import RecordError
from inferperf.record.load import json_files, load_run
from inferperf.record.run import Run
from inferperf.text import shown

#: ``results/reference/`` holds the runs behind the documentation's tables (mixed tiers and dates), which
#: would read as a machine with a nonsense series
REFERENCE_FOLDER = "reference"


@dataclass(frozen=True)
class Point:
    """One run of one case."""

    when: datetime
    commit: str
    path: Path
    median_s: float
    #: standard error of log(median), from a bootstrap of the raw samples or the summary
    log_se: float
    items_per_s: float


    #: the fingerprint of the machine that made the run
    identity: MachineIdentity | None = None
    #: other work competed for the CPU while it ran (``extra_info.contention``)
    contended: bool = False


@dataclass(frozen=True)
class MachineChange:
    """The machine's fingerprint changed between point ``index - 1`` and point ``index``."""

    index: int
    #: what changed, ``"cpu: A -> B"``
    changes: tuple[str, ...]


@dataclass(frozen=True)
class Series:
    machine: str
    case_id: str
    points: list[Point]
    steps: list[Step]
    segments: list[Segment]
    tau: float
    machine_changes: tuple[MachineChange, ...] = ()

    @property
    def current_start(self) -> int:
        """Index of the first point on the machine the newest run was made on."""
        return self.machine_changes[-1].index if self.machine_changes else 0

    @property
    def newest_step(self) -> Step | None:
        """The newest step on the current machine (a step before a machine change never gates)."""
        if self.steps and self.steps[-1].index >= self.current_start:
            return self.steps[-1]
        return None

    def commit_range(self, step: Step) -> tuple[str, str]:
        """The last commit before the step and the first commit after it."""
        return self.points[step.index - 1].commit, self.points[step.index].commit


@dataclass(frozen=True)
class CasePoint:
    """What history needs of one case in one run."""

    median_s: float
    log_se: float
    items_per_s: float
    contended: bool


@dataclass(frozen=True)
class RunPoints:
    """What history needs of one run: when, which commit, which machine, and its cases' points.

    Computed from the run's JSON (``run_points``) or read back from the store's index
    (``inferperf.analysis.history_index``), which holds exactly these values.
    """

    path: Path
    when: datetime
    commit: str
    identity: MachineIdentity | None
    cases: Mapping[str, CasePoint]


def run_points(runs: Sequence[Run]) -> list[RunPoints]:
    """The points of every case of ``runs``; the bootstrap uncertainties computed in bulk
    (``batch_stats.log_median_ses``: the values ``stats.log_median_se`` gives one at a time); a
    case without three raw samples takes its summary's delta-method uncertainty."""
    from inferperf.analysis.batch_stats import log_median_ses

    sampled = [b for run in runs for b in run.benchmarks.values() if b.samples and len(b.samples) > 2]
    ses = dict(zip((id(b) for b in sampled), log_median_ses([b.samples for b in sampled])))  # type: ignore[misc]
    out = []
    for run in runs:
        cases = {
            case_id: CasePoint(
                bench.summary.median,
                ses[id(bench)] if id(bench) in ses else SummaryStats.of(bench.summary).log_median_se(),
                bench.items_per_s,
                bench.contended,
            )
            for case_id, bench in run.benchmarks.items()
        }
        out.append(RunPoints(run.path, _when(run), _commit(run), machine_identity(run.machine), cases))
    return out


def _commit(run: Run) -> str:
    commit = str(run.commit.get("id") or "")[:12] or "unknown"
    return commit + ("+dirty" if run.commit.get("dirty") else "")


def _when(run: Run) -> datetime:
    when = run.when or datetime.fromtimestamp(run.path.stat().st_mtime, tz=timezone.utc)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def machine_of(root: Path, path: Path) -> str | None:
    """The machine folder ``path`` belongs to (None: the reference runs, never a machine's nights)."""
    relative = path.relative_to(root)
    machine = relative.parts[0] if len(relative.parts) > 1 else root.name
    return None if machine == REFERENCE_FOLDER and len(relative.parts) > 1 else machine


def reference_note(root: Path) -> list[str]:
    if (root / REFERENCE_FOLDER).is_dir():
        return [f"skipped {shown(root / REFERENCE_FOLDER)}: reference runs, not one machine's nights"]
    return []


def machine_runs(root: Path, only: str | None = None) -> tuple[dict[str, list[Run]], list[str]]:
    """Runs per machine folder, oldest first, and the files skipped with their reasons."""
    if not root.is_dir():
        raise RecordError(f"{shown(root)}: not a results folder")
    per_machine: dict[str, list[Run]] = {}
    skipped = reference_note(root)
    for path in json_files(root):
        machine = machine_of(root, path)
        if machine is None or (only is not None and machine != only):
            continue
        try:
            run = load_run(path, label=shown(f"{machine}/{path.stem}"))
        except RecordError as exc:
            skipped.append(f"skipped {exc}")
            continue
        per_machine.setdefault(machine, []).append(run)
    _require_runs(root, per_machine, only, skipped)
    for runs in per_machine.values():
        runs.sort(key=lambda r: (_when(r), r.path.name))
    return per_machine, skipped


def _require_runs(root: Path, per_machine: Mapping[str, object], only: str | None, skipped: Sequence[str]) -> None:
    if not per_machine:
        where = f" of machine {only!r}" if only is not None else ""
        raise RecordError(f"{shown(root)}: holds no readable runs{where}" + (f" ({skipped[0]})" if skipped else ""))


def machine_points(
    root: Path, only: str | None = None, transform: Callable[[list[Run]], list[Run]] | None = None
) -> tuple[dict[str, list[RunPoints]], list[str]]:
    """``machine_runs`` reduced to what history needs, read from the JSON files (no index);
    ``transform`` (``--metric``'s) applied to each machine's runs first."""
    per_machine, skipped = machine_runs(root, only)
    return {machine: run_points(transform(runs) if transform else runs) for machine, runs in per_machine.items()}, skipped


def build_series(
    machine: str,
    runs: Sequence[RunPoints],
    settings: HistorySettings,
    select: Callable[[str], bool],
    exclude_contended: bool = False,
) -> list[Series]:
    """One series per case of the machine folder (runs oldest first), steps fitted within each machine segment."""
    case_ids = sorted({c for run in runs for c in run.cases if select(c)})
    prepared = []
    for case_id in case_ids:
        points = [
            Point(run.when, run.commit, run.path, case.median_s, case.log_se, case.items_per_s, run.identity, case.contended)
            for run in runs
            if (case := run.cases.get(case_id)) is not None and not (exclude_contended and case.contended)
        ]
        if not points:
            continue
        changes = tuple(
            MachineChange(index, tuple(before.identity.differences(after.identity)))
            for index, (before, after) in enumerate(zip(points, points[1:]), start=1)
            if before.identity is not None and after.identity is not None and before.identity != after.identity
        )
        bounds = [0, *(c.index for c in changes), len(points)]
        prepared.append((case_id, points, changes, list(zip(bounds, bounds[1:]))))
    # every machine segment of every case fitted together (series of equal length share one PELT pass)
    parts = [(case_id, start, points[start:stop]) for case_id, points, _, pieces in prepared for start, stop in pieces]
    fits = iter(
        detect_steps_many(
            [([math.log(p.median_s) for p in part], [p.log_se for p in part]) for _, _, part in parts],
            min_change=settings.min_change, penalty=settings.penalty, confidence=settings.confidence,
        )
    )
    series = []
    for case_id, points, changes, pieces in prepared:
        steps: list[Step] = []
        segments: list[Segment] = []
        tau = 0.0
        for start, _ in pieces:
            found, fitted, tau = next(fits)
            steps += [Step(st.index + start, st.change, st.z, st.confidence) for st in found]
            segments += [Segment(sg.start + start, sg.stop + start, sg.level, sg.level_var) for sg in fitted]
        series.append(Series(machine, case_id, points, steps, segments, tau, changes))
    return series


def machine_changes(all_series: Sequence[Series], machine: str) -> list[tuple[Point, MachineChange]]:
    """The machine changes of a machine folder (the same runs for every case), oldest first."""
    seen: dict[Path, tuple[Point, MachineChange]] = {}
    for series in all_series:
        if series.machine == machine:
            for change in series.machine_changes:
                point = series.points[change.index]
                seen.setdefault(point.path, (point, change))
    return sorted(seen.values(), key=lambda pair: pair[0].when)


def newest_step_regressions(all_series: Sequence[Series], min_change: float) -> list[Series]:
    """Series whose newest step is a slowdown of at least ``min_change``."""
    return [s for s in all_series if s.newest_step is not None and s.newest_step.change >= min_change]


# --------------------------------------------------------------------------------------------
# Reports


def file_stem(name: str) -> str:
    """A file name for ``name``: a readable slug plus a short hash of the exact name.

    Distinct names never share a file (``gpu box`` and ``gpu_box`` slug alike; their hashes differ).
    """
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", shown(name)).strip("_.")[:80] or "unnamed"
    digest = hashlib.blake2b(name.encode("utf-8", "surrogateescape"), digest_size=4).hexdigest()
    return f"{slug}-{digest}"


def summary_markdown(all_series: Sequence[Series], settings: HistorySettings) -> str:
    machines = sorted({s.machine for s in all_series})
    lines = [
        "### inferperf history",
        "",
        f"Steps: PELT on log median time (penalty {settings.penalty}·log n, night-to-night noise estimated per "
        f"series), at least {settings.min_change:.0%} and {settings.confidence:.0%} confidence; fitted within "
        "each machine segment (a change of hardware or software fingerprint is never a step).",
    ]
    for machine in machines:
        lines += ["", *machine_summary_markdown(all_series, machine).splitlines()]
    return "\n".join(lines) + "\n"


def machine_summary_markdown(all_series: Sequence[Series], machine: str) -> str:
    """One machine's part of the summary: its machine changes and its steps."""
    mine = [s for s in all_series if s.machine == machine]
    runs = max(len(s.points) for s in mine)
    lines = [f"#### {machine} ({runs} runs, {len(mine)} cases)", ""]
    for point, change in machine_changes(all_series, machine):
        lines.append(f"- **machine changed** at {point.when:%Y-%m-%d} ({point.commit}): {'; '.join(change.changes)}")
    stepped = [(s, step) for s in mine for step in s.steps]
    if not stepped:
        lines.append("No steps detected.")
        return "\n".join(lines) + "\n"
    lines += ["", "| case | change | between commits | date | confidence | newest |", "|---|---|---|---|---|---|"]
    for series, step in stepped:
        before, after = series.commit_range(step)
        when = series.points[step.index].when.strftime("%Y-%m-%d")
        kind = "slower" if step.change > 0 else "faster"
        newest = "yes" if step is series.newest_step else ""
        lines.append(
            f"| {series.case_id} | {step.change:+.1%} ({kind}) | {before}..{after} | {when} | {step.confidence:.3f} | {newest} |"
        )
    return "\n".join(lines) + "\n"


def summary_text(all_series: Sequence[Series]) -> str:
    lines = []
    for machine in sorted({s.machine for s in all_series}):
        for point, change in machine_changes(all_series, machine):
            lines.append(f"{machine}  machine changed at {point.when:%Y-%m-%d} ({point.commit}): {'; '.join(change.changes)}")
    for series in all_series:
        latest = series.points[-1]
        steps = ", ".join(
            f"{step.change:+.1%} at {series.commit_range(step)[1]}" for step in series.steps
        ) or "no steps"
        contended = sum(p.contended for p in series.points)
        lines.append(
            f"{series.machine}  {series.case_id}  runs={len(series.points)}  "
            f"latest={latest.median_s * 1e3:.3g} ms/round ({latest.items_per_s:.4g} items/s)  {steps}"
            + (f"  contended runs={contended}" + (" (latest contended)" if latest.contended else "") if contended else "")
        )
    return "\n".join(lines) + "\n"
