"""Nightly history: per machine and case, the series of runs over time and its steps.

The store is pytest-benchmark's storage layout under one folder per machine:
``results/<machine-id>/<platform-id>/NNNN_<commit>_<date>.json`` (what
``--benchmark-autosave --benchmark-storage=file://results/<machine-id>`` writes). A machine is
the first folder under the results directory: history is per machine, so moving to another
machine starts a new series instead of looking like a regression. Inside a folder, runs are also
told apart by their machine's fingerprint (``inferperf.analysis.fingerprint``): where it changes (a
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
from typing import Callable, Sequence

from inferperf.analysis.changepoint import Segment, Step, detect_steps
from inferperf.analysis.fingerprint import MachineIdentity, machine_identity
from inferperf.analysis.load import Benchmark, Run, json_files, load_run, shown
from inferperf.analysis.schema import RecordError
from inferperf.analysis.settings import HistorySettings
from inferperf.analysis.stats import log_median_se

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


def run_log_median_se(bench: Benchmark) -> float:
    """Uncertainty of one run's log median time: bootstrap of its samples, else its summary."""
    if bench.samples and len(bench.samples) > 2:
        return log_median_se(bench.samples)
    return bench.summary_stats().log_median_se()


def _commit(run: Run) -> str:
    commit = str(run.commit.get("id") or "")[:12] or "unknown"
    return commit + ("+dirty" if run.commit.get("dirty") else "")


def _when(run: Run) -> datetime:
    when = run.when or datetime.fromtimestamp(run.path.stat().st_mtime, tz=timezone.utc)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def machine_runs(root: Path, only: str | None = None) -> tuple[dict[str, list[Run]], list[str]]:
    """Runs per machine folder, oldest first, and the files skipped with their reasons."""
    if not root.is_dir():
        raise RecordError(f"{shown(root)}: not a results folder")
    per_machine: dict[str, list[Run]] = {}
    skipped: list[str] = []
    if (root / REFERENCE_FOLDER).is_dir():
        skipped.append(f"skipped {shown(root / REFERENCE_FOLDER)}: reference runs, not one machine's nights")
    for path in json_files(root):
        relative = path.relative_to(root)
        machine = relative.parts[0] if len(relative.parts) > 1 else root.name
        if (machine == REFERENCE_FOLDER and len(relative.parts) > 1) or (only is not None and machine != only):
            continue
        try:
            run = load_run(path, label=shown(f"{machine}/{path.stem}"))
        except RecordError as exc:
            skipped.append(f"skipped {exc}")
            continue
        per_machine.setdefault(machine, []).append(run)
    if not per_machine:
        where = f" of machine {only!r}" if only is not None else ""
        raise RecordError(f"{shown(root)}: holds no readable runs{where}" + (f" ({skipped[0]})" if skipped else ""))
    for runs in per_machine.values():
        runs.sort(key=lambda r: (_when(r), r.path.name))
    return per_machine, skipped


def build_series(
    machine: str,
    runs: Sequence[Run],
    settings: HistorySettings,
    select: Callable[[str], bool],
    exclude_contended: bool = False,
) -> list[Series]:
    """One series per case of the machine folder, steps fitted within each machine segment."""
    identities = [machine_identity(run.machine) for run in runs]
    case_ids = sorted({c for run in runs for c in run.benchmarks if select(c)})
    series = []
    for case_id in case_ids:
        points = [
            Point(
                _when(run), _commit(run), run.path, bench.summary.median, run_log_median_se(bench), bench.items_per_s,
                identity, bench.contended,
            )
            for run, identity in zip(runs, identities)
            if (bench := run.benchmarks.get(case_id)) is not None and not (exclude_contended and bench.contended)
        ]
        if not points:
            continue
        changes = tuple(
            MachineChange(index, tuple(before.identity.differences(after.identity)))
            for index, (before, after) in enumerate(zip(points, points[1:]), start=1)
            if before.identity is not None and after.identity is not None and before.identity != after.identity
        )
        steps: list[Step] = []
        segments: list[Segment] = []
        tau = 0.0
        bounds = [0, *(c.index for c in changes), len(points)]
        for start, stop in zip(bounds, bounds[1:]):
            part = points[start:stop]
            found, fitted, tau = detect_steps(
                [math.log(p.median_s) for p in part],
                [p.log_se for p in part],
                min_change=settings.min_change,
                penalty=settings.penalty,
                confidence=settings.confidence,
            )
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
