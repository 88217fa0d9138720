"""Nightly history: per machine and case, the series of runs over time and its steps.

The store is pytest-benchmark's storage layout under one folder per machine:
``results/<machine-id>/<platform-id>/NNNN_<commit>_<date>.json`` (what
``--benchmark-autosave --benchmark-storage=file://results/<machine-id>`` writes). A machine is
the first folder under the results directory: history is per machine, so moving to another
machine starts a new series instead of looking like a regression.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from inferperf.analysis.changepoint import Segment, Step, detect_steps
from inferperf.analysis.load import Benchmark, Run, load_run
from inferperf.analysis.schema import RecordError
from inferperf.analysis.settings import HistorySettings
from inferperf.analysis.stats import log_median_se

#: ``results/reference/`` holds the runs behind the README's tables (mixed tiers and dates), which
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


@dataclass(frozen=True)
class Series:
    machine: str
    case_id: str
    points: list[Point]
    steps: list[Step]
    segments: list[Segment]
    tau: float

    @property
    def newest_step(self) -> Step | None:
        return self.steps[-1] if self.steps else None

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


def machine_runs(root: Path) -> tuple[dict[str, list[Run]], list[str]]:
    """Runs per machine folder, oldest first, and the files skipped with their reasons."""
    if not root.is_dir():
        raise RecordError(f"{root}: not a results folder")
    per_machine: dict[str, list[Run]] = {}
    skipped: list[str] = []
    if (root / REFERENCE_FOLDER).is_dir():
        skipped.append(f"skipped {root / REFERENCE_FOLDER}: reference runs, not one machine's nights")
    for path in sorted(root.rglob("*.json")):
        relative = path.relative_to(root)
        machine = relative.parts[0] if len(relative.parts) > 1 else root.name
        if machine == REFERENCE_FOLDER and len(relative.parts) > 1:
            continue
        try:
            run = load_run(path, label=f"{machine}/{path.stem}")
        except RecordError as exc:
            skipped.append(f"skipped {exc}")
            continue
        per_machine.setdefault(machine, []).append(run)
    if not per_machine:
        raise RecordError(f"{root}: holds no readable runs" + (f" ({skipped[0]})" if skipped else ""))
    for runs in per_machine.values():
        runs.sort(key=lambda r: (_when(r), r.path.name))
    return per_machine, skipped


def build_series(
    machine: str, runs: Sequence[Run], settings: HistorySettings, select: Callable[[str], bool]
) -> list[Series]:
    case_ids = sorted({c for run in runs for c in run.benchmarks if select(c)})
    series = []
    for case_id in case_ids:
        points = []
        for run in runs:
            bench = run.benchmarks.get(case_id)
            if bench is None:
                continue
            points.append(
                Point(_when(run), _commit(run), run.path, bench.summary.median, run_log_median_se(bench), bench.items_per_s)
            )
        steps, segments, tau = detect_steps(
            [math.log(p.median_s) for p in points],
            [p.log_se for p in points],
            min_change=settings.min_change,
            penalty=settings.penalty,
            confidence=settings.confidence,
        )
        series.append(Series(machine, case_id, points, steps, segments, tau))
    return series


def newest_step_regressions(all_series: Sequence[Series], min_change: float) -> list[Series]:
    """Series whose newest step is a slowdown of at least ``min_change``."""
    return [s for s in all_series if s.newest_step is not None and s.newest_step.change >= min_change]


# --------------------------------------------------------------------------------------------
# Reports


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def summary_markdown(all_series: Sequence[Series], settings: HistorySettings) -> str:
    machines = sorted({s.machine for s in all_series})
    lines = [
        "### inferperf history",
        "",
        f"Steps: PELT on log median time (penalty {settings.penalty}·log n, night-to-night noise estimated per "
        f"series), at least {settings.min_change:.0%} and {settings.confidence:.0%} confidence.",
    ]
    for machine in machines:
        mine = [s for s in all_series if s.machine == machine]
        runs = max(len(s.points) for s in mine)
        lines += ["", f"#### {machine} ({runs} runs, {len(mine)} cases)", ""]
        stepped = [(s, step) for s in mine for step in s.steps]
        if not stepped:
            lines.append("No steps detected.")
            continue
        lines += ["| case | change | between commits | date | confidence | newest |", "|---|---|---|---|---|---|"]
        for series, step in stepped:
            before, after = series.commit_range(step)
            when = series.points[step.index].when.strftime("%Y-%m-%d")
            kind = "slower" if step.change > 0 else "faster"
            newest = "yes" if step is series.newest_step else ""
            lines.append(
                f"| {series.case_id} | {step.change:+.1%} ({kind}) | {before}..{after} | {when} | "
                f"{step.confidence:.3f} | {newest} |"
            )
    return "\n".join(lines) + "\n"


def summary_text(all_series: Sequence[Series]) -> str:
    lines = []
    for series in all_series:
        latest = series.points[-1]
        steps = ", ".join(
            f"{step.change:+.1%} at {series.commit_range(step)[1]}" for step in series.steps
        ) or "no steps"
        lines.append(
            f"{series.machine}  {series.case_id}  runs={len(series.points)}  "
            f"latest={latest.median_s * 1e3:.3g} ms/round ({latest.items_per_s:.4g} items/s)  {steps}"
        )
    return "\n".join(lines) + "\n"


def plot_series(series: Series, path: Path) -> None:
    """Median time per run with its 95% interval, the fitted levels, and the steps marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(series.points))
    medians = np.array([p.median_s for p in series.points]) * 1e3
    se = np.array([p.log_se for p in series.points])
    figure, ax = plt.subplots(figsize=(9, 3.2))
    ax.errorbar(
        x, medians, yerr=[medians - medians * np.exp(-1.96 * se), medians * np.exp(1.96 * se) - medians],
        fmt="o", markersize=4, capsize=2, color="#34495e", label="median per run (95% CI)",
    )
    for segment in series.segments:
        ax.hlines(math.exp(segment.level) * 1e3, segment.start - 0.4, segment.stop - 0.6, color="#2980b9", linewidth=2)
    for step in series.steps:
        colour = "#c0392b" if step.change > 0 else "#27ae60"
        ax.axvline(step.index - 0.5, color=colour, linestyle="--", linewidth=1)
        ax.annotate(
            f"{step.change:+.1%}\n{series.points[step.index].commit[:8]}", (step.index - 0.5, ax.get_ylim()[1]),
            fontsize=8, color=colour, ha="left", va="top",
        )
    ticks = x[:: max(1, len(x) // 10)]
    ax.set_xticks(ticks)
    # runs of one day (a CI loop, a bisect) are told apart by their time, nights by their date
    one_day = len({p.when.date() for p in series.points}) == 1
    label = "%H:%M" if one_day else "%m-%d"
    ax.set_xticklabels([series.points[i].when.strftime(label) for i in ticks], fontsize=8)
    ax.set_xlabel(f"run ({series.points[0].when:%Y-%m-%d}, UTC)" if one_day else "run date (UTC)", fontsize=8)
    ax.set_ylabel("ms per round")
    ax.set_title(f"{series.machine}: {series.case_id}", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_reports(all_series: Sequence[Series], output: Path, settings: HistorySettings, plots: bool) -> list[Path]:
    """PNG per machine and case, an HTML page per machine, and summary.md; returns what was written."""
    import html

    output.mkdir(parents=True, exist_ok=True)
    written = []
    summary = output / "summary.md"
    summary.write_text(summary_markdown(all_series, settings), encoding="utf-8")
    written.append(summary)
    for machine in sorted({s.machine for s in all_series}):
        mine = [s for s in all_series if s.machine == machine]
        blocks = []
        for series in mine:
            steps = "; ".join(
                f"{st.change:+.1%} between {series.commit_range(st)[0]} and {series.commit_range(st)[1]} "
                f"(confidence {st.confidence:.3f})"
                for st in series.steps
            ) or "no steps"
            image = ""
            if plots:
                png = output / _slug(machine) / f"{_slug(series.case_id)}.png"
                plot_series(series, png)
                written.append(png)
                image = f"<img src='{html.escape(png.relative_to(output).as_posix())}' alt='trend'>"
            blocks.append(f"<h3>{html.escape(series.case_id)}</h3><p>{html.escape(steps)}</p>{image}")
        page = output / f"{_slug(machine)}.html"
        page.write_text(
            f"<!doctype html><html><head><meta charset='utf-8'><title>inferperf history: {html.escape(machine)}</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:2em}img{max-width:100%}</style></head><body>"
            f"<h1>inferperf history: {html.escape(machine)}</h1>{''.join(blocks)}</body></html>\n",
            encoding="utf-8",
        )
        written.append(page)
    return written
