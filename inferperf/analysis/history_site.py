"""The history site (``inferperf history --output DIR``): what a person opens in the morning.

- ``index.html``: every machine of the store with its runs, cases, latest run, steps on the
  current machine and regressions, linking to its page and its summary;
- ``<machine>.html`` per machine: a table of every series first (latest value, a sparkline, its
  last step), each row linking to the series' trend plot further down; machine changes on top;
- ``<machine>.md``: that machine's Markdown summary (the CPU and GPU jobs of one night each
  write their own, never each other's);
- ``<machine>/<case>.png``: the trend plots (``--no-plots`` leaves them out; past ``--max-plots``
  series, 200 by default, the ones with regressions and steps).

File names are a readable slug plus a short hash of the exact name (``history.file_stem``).
"""

from __future__ import annotations

import html
import io
import math
from pathlib import Path
from typing import Sequence

from inferperf.analysis.history import (
    Series,
    file_stem,
    machine_changes,
    machine_summary_markdown,
    newest_step_regressions,
)
from inferperf.analysis.output import Outputs
from inferperf.analysis.settings import DEFAULT_MAX_PLOTS, HistorySettings
from inferperf.analysis.tables import fmt_rate, fmt_seconds

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1200px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: middle; }
th { background: #f4f6f7; }
.slower { color: #c0392b; font-weight: bold; }
.faster { color: #27ae60; font-weight: bold; }
.changed { color: #8e44ad; font-weight: bold; }
.muted { color: #7f8c8d; }
img { max-width: 100%; }
h3 { margin-top: 2em; }
"""

_SLOWER, _FASTER, _LINE, _CHANGED = "#c0392b", "#27ae60", "#2c3e50", "#8e44ad"


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


def sparkline(series: Series, width: int = 160, height: int = 28) -> str:
    """An inline SVG of the medians over time: steps in red/green, machine changes in purple."""
    values = [math.log(p.median_s) for p in series.points]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    count = max(1, len(values) - 1)

    def x(index: float) -> float:
        return 2 + (width - 4) * index / count

    def y(value: float) -> float:
        return height - 3 - (height - 6) * (value - low) / span

    path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    marks = []
    for step in series.steps:
        colour = _SLOWER if step.change > 0 else _FASTER
        marks.append(f"<line x1='{x(step.index - 0.5):.1f}' x2='{x(step.index - 0.5):.1f}' y1='0' y2='{height}' stroke='{colour}' stroke-dasharray='2,2'/>")
    for change in series.machine_changes:
        marks.append(f"<line x1='{x(change.index - 0.5):.1f}' x2='{x(change.index - 0.5):.1f}' y1='0' y2='{height}' stroke='{_CHANGED}' stroke-width='2'/>")
    last = f"<circle cx='{x(len(values) - 1):.1f}' cy='{y(values[-1]):.1f}' r='2.5' fill='{_LINE}'/>"
    return (
        f"<svg width='{width}' height='{height}' role='img' aria-label='trend'>{''.join(marks)}"
        f"<polyline fill='none' stroke='{_LINE}' stroke-width='1.5' points='{path}'/>{last}</svg>"
    )


def _last_step_cell(series: Series) -> str:
    if not series.steps:
        return "<span class='muted'>none</span>"
    step = series.steps[-1]
    css = "slower" if step.change > 0 else "faster"
    before, after = series.commit_range(step)
    current = "" if step is series.newest_step else " <span class='muted'>(before a machine change)</span>"
    when = series.points[step.index].when.strftime("%Y-%m-%d")
    return f"<span class='{css}'>{step.change:+.1%}</span> {html.escape(before[:8])}..{html.escape(after[:8])} ({when}){current}"


def plot_series(series: Series) -> bytes:
    """PNG of the median time per run with its 95% interval, the fitted levels, steps and machine changes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(series.points))
    medians = np.array([p.median_s for p in series.points]) * 1e3
    se = np.array([p.log_se for p in series.points])
    figure, ax = plt.subplots(figsize=(9, 3.2))
    ax.errorbar(
        x, medians, yerr=[medians - medians * np.exp(-1.96 * se), medians * np.exp(1.96 * se) - medians],
        fmt="o", markersize=4, capsize=2, color=_LINE, label="median per run (95% CI)",
    )
    contended = [i for i, p in enumerate(series.points) if p.contended]
    if contended:
        ax.scatter(contended, medians[contended], marker="x", s=60, color="#e67e22", zorder=3, label="ran contended")
    for segment in series.segments:
        ax.hlines(math.exp(segment.level) * 1e3, segment.start - 0.4, segment.stop - 0.6, color="#2980b9", linewidth=2)
    top = ax.get_ylim()[1]
    for step in series.steps:
        colour = _SLOWER if step.change > 0 else _FASTER
        ax.axvline(step.index - 0.5, color=colour, linestyle="--", linewidth=1)
        ax.annotate(
            f"{step.change:+.1%}\n{series.points[step.index].commit[:8]}", (step.index - 0.5, top),
            fontsize=8, color=colour, ha="left", va="top",
        )
    for number, change in enumerate(series.machine_changes):
        ax.axvline(change.index - 0.5, color=_CHANGED, linewidth=2, label="machine changed" if number == 0 else None)
        ax.annotate("machine\nchanged", (change.index - 0.5, top), fontsize=8, color=_CHANGED, ha="right", va="top")
    ticks = x[:: max(1, len(x) // 10)]
    ax.set_xticks(ticks)
    # runs of one day (a CI loop, a bisect) are told apart by their time, nights by their date
    one_day = len({p.when.date() for p in series.points}) == 1
    label = "%H:%M" if one_day else "%m-%d"
    ax.set_xticklabels([series.points[i].when.strftime(label) for i in ticks], fontsize=8)
    ax.set_xlabel(f"run ({series.points[0].when:%Y-%m-%d}, UTC)" if one_day else "run date (UTC)", fontsize=8)
    ax.set_ylabel("ms per round")
    ax.set_title(f"{series.machine}: {series.case_id}", fontsize=9)
    # the legend goes outside the axes, so it never covers a point
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def machine_page(mine: Sequence[Series], machine: str, images: dict[str, str], settings: HistorySettings, plots: bool = True) -> str:
    """The machine's page: the summary table of every series, then each series' plot."""
    rows = []
    for series in mine:
        latest = series.points[-1]
        anchor = file_stem(series.case_id)
        rows.append(
            f"<tr><td><a href='#{anchor}'>{html.escape(series.case_id)}</a></td><td>{len(series.points)}</td>"
            f"<td>{fmt_seconds(latest.median_s)}{' <span class=changed>contended</span>' if latest.contended else ''}</td>"
            f"<td>{fmt_rate(latest.items_per_s)}</td>"
            f"<td>{sparkline(series)}</td><td>{_last_step_cell(series)}</td></tr>"
        )
    regressions = newest_step_regressions(mine, settings.min_change)
    changes = machine_changes(mine, machine)
    intro = [
        f"<p>{len(mine)} cases, {max(len(s.points) for s in mine)} runs, latest {mine[0].points[-1].when:%Y-%m-%d %H:%M} UTC. "
        f"<span class='{'slower' if regressions else 'muted'}'>{len(regressions)} regression(s) on the current machine</span> "
        f"(a newest step at least {settings.min_change:.0%} slower, confidence {settings.confidence:.0%}). "
        "<a href='index.html'>All machines</a></p>"
    ]
    if plots and len(images) < len(mine):
        intro.append(
            f"<p class='muted'>Trend plots for {len(images)} of the {len(mine)} series (regressions and steps first; "
            "<code>--max-plots</code> sets how many); every series has its sparkline in the table.</p>"
        )
    if changes:
        items = "".join(
            f"<li><span class='changed'>machine changed</span> at {point.when:%Y-%m-%d} ({html.escape(point.commit)}): "
            f"{html.escape('; '.join(change.changes))}</li>"
            for point, change in changes
        )
        intro.append(f"<ul>{items}</ul>")
    table = (
        "<table><thead><tr><th>case</th><th>runs</th><th>latest round</th><th>items/s</th><th>trend</th>"
        f"<th>last step</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    blocks = []
    for series in mine:
        anchor = file_stem(series.case_id)
        steps = "; ".join(
            f"{st.change:+.1%} between {series.commit_range(st)[0]} and {series.commit_range(st)[1]} (confidence {st.confidence:.3f})"
            for st in series.steps
        ) or "no steps"
        image = f"<img src='{html.escape(images[series.case_id])}' alt='trend of {html.escape(series.case_id)}'>" if series.case_id in images else ""
        blocks.append(f"<h3 id='{anchor}'>{html.escape(series.case_id)}</h3><p>{html.escape(steps)}</p>{image}")
    return _page(f"inferperf history: {machine}", "".join(intro) + table + "".join(blocks))


def index_page(all_series: Sequence[Series], settings: HistorySettings) -> str:
    rows = []
    for machine in sorted({s.machine for s in all_series}):
        mine = [s for s in all_series if s.machine == machine]
        stem = file_stem(machine)
        regressions = newest_step_regressions(mine, settings.min_change)
        current_steps = sum(1 for s in mine if s.newest_step is not None)
        changes = machine_changes(mine, machine)
        latest = max(s.points[-1].when for s in mine)
        rows.append(
            f"<tr><td><a href='{stem}.html'>{html.escape(machine)}</a></td><td>{max(len(s.points) for s in mine)}</td>"
            f"<td>{len(mine)}</td><td>{latest:%Y-%m-%d %H:%M}</td><td>{current_steps}</td>"
            f"<td class='{'slower' if regressions else ''}'>{len(regressions)}</td>"
            f"<td>{len(changes)}</td><td><a href='{stem}.md'>summary</a></td></tr>"
        )
    table = (
        "<table><thead><tr><th>machine</th><th>runs</th><th>cases</th><th>latest run (UTC)</th>"
        "<th>series with a step on the current machine</th><th>regressions</th><th>machine changes</th>"
        f"<th>latest summary</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return _page("inferperf history", table)


def plotted_series(mine: Sequence[Series], max_plots: int) -> list[Series]:
    """The series that get a trend plot: all of them up to ``max_plots`` (0: no limit); past it, a
    regression on the current machine first, then a step on it, then any step, then the rest, in
    the page's order."""
    if max_plots <= 0 or len(mine) <= max_plots:
        return list(mine)

    def rank(series: Series) -> int:
        newest = series.newest_step
        if newest is not None and newest.change > 0:
            return 0
        return 1 if newest is not None else 2 if series.steps else 3

    chosen = {id(s) for s in sorted(mine, key=rank)[:max_plots]}  # sorted() is stable: page order within a rank
    return [s for s in mine if id(s) in chosen]


def write_site(
    all_series: Sequence[Series], output: Path, settings: HistorySettings, plots: bool, outputs: Outputs,
    max_plots: int = DEFAULT_MAX_PLOTS,
) -> list[Path]:
    """Write the site under ``output``; returns what was written."""
    outputs.folder(output, "--output")
    written = []
    for machine in sorted({s.machine for s in all_series}):
        mine = [s for s in all_series if s.machine == machine]
        stem = file_stem(machine)
        images: dict[str, str] = {}
        if plots:
            outputs.folder(output / stem, "--output")
            for series in plotted_series(mine, max_plots):
                png = output / stem / f"{file_stem(series.case_id)}.png"
                written.append(outputs.write_bytes(png, plot_series(series), "--output"))
                images[series.case_id] = png.relative_to(output).as_posix()
        written.append(outputs.write_text(output / f"{stem}.html", machine_page(mine, machine, images, settings, plots), "--output"))
        written.append(outputs.write_text(output / f"{stem}.md", machine_summary_markdown(all_series, machine), "--output"))
    written.append(outputs.write_text(output / "index.html", index_page(all_series, settings), "--output"))
    return written
