"""Render a comparison (``inferperf compare``): terminal tables, Markdown, CSV, JSON and an HTML report."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence

from inferperf.analysis.compare import (
    CalibratedRow,
    CaseComparison,
    Speedup,
    Thresholds,
)
from inferperf.analysis.compare import priced as priced_runs
from inferperf.analysis.output import Outputs
from inferperf.analysis.plots import encoded as _encoded
from inferperf.analysis.plots import figure as _figure
from inferperf.analysis.tables import (
    Table,
    fmt_change,
    fmt_fraction,
    fmt_p,
    fmt_rate,
    fmt_ratio,
    fmt_seconds,
    verdict_counts,
)
from inferperf.record.run import Benchmark, Run
from inferperf.text import shown

GroupBy = Literal["technique", "model", "device"]
GROUP_FIELDS: tuple[GroupBy, ...] = ("technique", "model", "device")


@dataclass
class ComparisonReport:
    runs: Sequence[Run]
    comparisons: Sequence[CaseComparison]
    speedups: Sequence[Speedup]
    calibrated: Sequence[CalibratedRow]
    machine_diffs: Sequence[tuple[str, list[str]]]
    thresholds: Thresholds
    group_by: GroupBy | None = None
    skipped_files: Sequence[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Tables


def _group_key(comparison: CaseComparison, group_by: GroupBy | None) -> str:
    if group_by is None:
        return ""
    bench: Benchmark | None = comparison.base or comparison.contender
    return bench.field(group_by) if bench is not None else "-"


def comparison_tables(report: ComparisonReport) -> list[Table]:
    priced = priced_runs(report.runs) and any(c.cost_ratio is not None for c in report.comparisons)
    headers = ["case", "base", "contender", "base items/s", "contender items/s", "change", "ratio [CI]", "p", "verdict", "note"]
    if priced:
        headers.insert(7, "cost ratio")
    groups: dict[tuple[str, str], list[list[str]]] = {}
    for c in report.comparisons:
        key = (c.contender_label, _group_key(c, report.group_by))
        est = c.estimate
        groups.setdefault(key, []).append(
            [
                c.case_id,
                fmt_seconds(c.base.summary.median if c.base else None),
                fmt_seconds(c.contender.summary.median if c.contender else None),
                fmt_rate(c.base.items_per_s if c.base else None),
                fmt_rate(c.contender.items_per_s if c.contender else None),
                fmt_change(c.change),
                fmt_ratio(est.ratio, est.low, est.high) if est else "-",
                fmt_p(est.p_value) if est else "-",
                c.verdict,
                c.note,
            ]
        )
        if priced:
            groups[key][-1].insert(7, fmt_ratio(c.cost_ratio))
    base = report.runs[0].label
    tables = []
    for (contender, group), rows in groups.items():
        title = f"{contender} vs {base} (median seconds per round; ratio = contender / base)"
        if report.group_by:
            title += f" - {report.group_by} {group}"
        tables.append(Table(title, headers, rows))
    return tables


def technique_table(report: ComparisonReport) -> Table | None:
    if not report.speedups:
        return None
    labels = [r.label for r in report.runs]
    by_case: dict[tuple[str, str], dict[str, Speedup]] = {}
    for s in report.speedups:
        by_case.setdefault((s.case_id, s.baseline_case_id), {})[s.run_label] = s
    rows = []
    for (case_id, baseline), per_run in sorted(by_case.items()):
        row = [case_id, baseline.split("/", 1)[-1]]
        row += [_speedup_cell(per_run[label]) if label in per_run else "-" for label in labels]
        rows.append(row)
    return Table("Technique speedups within each run (throughput over the baseline case)", ["case", "baseline", *labels], rows)


def _speedup_cell(speedup: Speedup) -> str:
    text = fmt_ratio(speedup.speedup, speedup.low, speedup.high)
    if speedup.cost_ratio is not None:
        text += f", cost {speedup.cost_ratio:.2f}x"
    return text


def calibrated_table(report: ComparisonReport) -> Table | None:
    if not report.calibrated:
        return None
    labels = [r.label for r in report.runs]
    rows = []
    for row in report.calibrated:
        cells = [row.case_id]
        for label in labels:
            value = row.per_run.get(label)
            cells.append(fmt_fraction(value[0]) if value else "-")
        rows.append(cells)
    return Table("Roofline fraction (achieved FLOP/s over each machine's calibrated peak)", ["case", *labels], rows)


def machine_table(report: ComparisonReport) -> Table | None:
    if not report.machine_diffs:
        return None
    labels = [r.label for r in report.runs]
    return Table("What differs between the machines and software", ["fact", *labels], [[k, *v] for k, v in report.machine_diffs])


def all_tables(report: ComparisonReport) -> list[Table]:
    tables = comparison_tables(report)
    for extra in (technique_table(report), calibrated_table(report), machine_table(report)):
        if extra is not None:
            tables.append(extra)
    return tables


def _verdict_counts(report: ComparisonReport) -> str:
    summary = ", ".join(f"{n} {verdict}" for verdict, n in verdict_counts(c.verdict for c in report.comparisons))
    t = report.thresholds
    return f"{summary} (a change needs p < {t.alpha} and at least {t.min_change:.0%}; {t.confidence:.0%} intervals)"


def render_text(report: ComparisonReport) -> str:
    parts = [t.text() for t in all_tables(report)]
    changed = changed_table(report)
    if changed is not None:  # last, next to the counts: what a terminal shows
        parts.append(changed.text())
    parts.append(_verdict_counts(report))
    parts += report.skipped_files
    return "\n\n".join(parts) + "\n"


def render_markdown(report: ComparisonReport) -> str:
    labels = ", ".join(f"`{r.label}`" for r in report.runs)
    parts = [f"### inferperf compare: {labels}", "", _verdict_counts(report)]
    changed = changed_table(report)
    parts.append(changed.markdown() if changed is not None else "No case changed beyond the threshold.")
    parts += ["<details><summary>Every case</summary>", "", *[t.markdown() for t in all_tables(report)], "</details>"]
    if report.skipped_files:
        parts.append("\n".join(f"- {line}" for line in report.skipped_files))
    return "\n\n".join(parts) + "\n"


CSV_FIELDS = (
    "case_id", "base", "contender", "base_median_s", "contender_median_s", "base_items_per_s",
    "contender_items_per_s", "ratio", "ci_low", "ci_high", "p_value", "method", "verdict", "note", "cost_ratio",
)


def render_csv(report: ComparisonReport) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in comparison_records(report):
        writer.writerow({k: ("" if row[k] is None else row[k]) for k in CSV_FIELDS})
    return buffer.getvalue()


def comparison_records(report: ComparisonReport) -> list[dict[str, object]]:
    records: list[dict[str, object]] = []
    with_cost = priced_runs(report.runs)
    for c in report.comparisons:
        est = c.estimate
        records.append(
            {
                "case_id": c.case_id,
                "base": c.base_label,
                "contender": c.contender_label,
                "base_median_s": c.base.summary.median if c.base else None,
                "contender_median_s": c.contender.summary.median if c.contender else None,
                "base_items_per_s": c.base.items_per_s if c.base else None,
                "contender_items_per_s": c.contender.items_per_s if c.contender else None,
                "ratio": est.ratio if est else None,
                "ci_low": est.low if est else None,
                "ci_high": _finite_or_none(est.high) if est else None,
                "p_value": est.p_value if est else None,
                "method": est.method if est else None,
                "verdict": c.verdict,
                "note": c.note,
                "cost_ratio": c.cost_ratio if with_cost else None,
            }
        )
    return records


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


#: comparisons beyond which the JSON report is written compact
LARGE_REPORT = 2000

_fast_dumps: Callable[..., bytes] | None
try:
    from orjson import OPT_INDENT_2 as _INDENT
    from orjson import dumps as _fast_dumps
except ImportError:  # pragma: no cover - a core dependency
    _fast_dumps, _INDENT = None, 0


def render_json(report: ComparisonReport) -> str:
    payload = {
        "runs": [{"label": r.label, "path": str(r.path), "machine": r.machine_id} for r in report.runs],
        "thresholds": {
            "min_change": report.thresholds.min_change,
            "alpha": report.thresholds.alpha,
            "confidence": report.thresholds.confidence,
        },
        "comparisons": comparison_records(report),
        "speedups": [
            {
                "run": s.run_label, "case_id": s.case_id, "baseline_case_id": s.baseline_case_id,
                "technique": s.technique, "variant": s.variant, "speedup": s.speedup, "cost_ratio": s.cost_ratio,
                "ci_low": _finite_or_none(s.low), "ci_high": _finite_or_none(s.high),
            }
            for s in report.speedups
        ],
        "roofline_fraction": {
            row.case_id: {label: (v[0] if v else None) for label, v in row.per_run.items()} for row in report.calibrated
        },
        "machine_differences": {k: v for k, v in report.machine_diffs},
        "skipped_files": list(report.skipped_files),
        "regressions": [c.case_id for c in report.comparisons if c.verdict == "slower"],
    }
    # indented for a person reading a small report; compact for a fleet's (json's pure-Python
    # indenting encoder took 2.5 s of a 25,000-case comparison, its C one 0.5 s, orjson 0.1 s)
    indent = len(payload["comparisons"]) <= LARGE_REPORT
    if _fast_dumps is not None:
        try:
            return _fast_dumps(payload, option=_INDENT if indent else 0).decode() + "\n"
        except TypeError:  # a value orjson does not know: the standard encoder writes what it can
            pass
    return json.dumps(payload, indent=2 if indent else None) + "\n"


# --------------------------------------------------------------------------------------------
# HTML with plots


def write_pngs(report: ComparisonReport, directory: Path, outputs: Outputs) -> list[Path]:
    """The HTML report's plots as PNG files (for a README, a PR comment or a chat message)."""
    outputs.folder(directory, "--png")
    written = []
    for name, encoded in (("ratios.png", ratio_plot(report)), ("speedups.png", speedup_plot(report))):
        if encoded:
            written.append(outputs.write_bytes(directory / name, base64.b64decode(encoded), "--png"))
    return written


_VERDICT_COLOURS = {"slower": "#c0392b", "faster": "#27ae60", "same": "#7f8c8d", "not comparable": "#bdc3c7"}
#: below this median round time a case measures the harness (the null benchmark): its own panel,
#: so its nanosecond noise does not set the scale of every other case
SUB_MICROSECOND_S = 1e-6


def _is_tiny(comparison: CaseComparison) -> bool:
    bench = comparison.base or comparison.contender
    return bench is not None and bench.summary.median < SUB_MICROSECOND_S


#: a per-case plot stays readable up to this many rows; past it the plots show the cases that changed
#: most (and the technique speedups by technique and variant), every case staying in the tables. A
#: fleet's 25,000 rows made a figure 7,000 inches tall: 9 GB and a crash after ten minutes
PLOT_ROWS = 60


def _most_changed(rows: Sequence[CaseComparison]) -> tuple[list[CaseComparison], str]:
    """At most ``PLOT_ROWS`` cases, the changed ones first and the largest changes among them, in
    case order; and a caption saying what was left out ("" when nothing was)."""
    cases = sorted({c.case_id for c in rows})
    if len(cases) <= PLOT_ROWS:
        return list(rows), ""
    strongest: dict[str, tuple[bool, float]] = {}
    for c in rows:
        score = (c.verdict in ("slower", "faster"), abs(math.log(c.estimate.ratio)) if c.estimate and c.estimate.ratio > 0 else 0.0)
        strongest[c.case_id] = max(strongest.get(c.case_id, score), score)
    kept = set(sorted(cases, key=lambda case_id: strongest[case_id], reverse=True)[:PLOT_ROWS])
    caption = f"the {PLOT_ROWS} of {len(cases)} cases that changed most (every case is in the tables)"
    return [c for c in rows if c.case_id in kept], caption


def ratio_plot(report: ComparisonReport) -> str | None:
    """Two runs: each case's ratio with its interval, coloured by verdict. More: a heatmap (ratio_heatmap).
    Past ``PLOT_ROWS`` cases, the ones that changed most."""
    rows, caption = _most_changed([c for c in report.comparisons if c.estimate is not None])
    if not rows:
        return None
    if len(report.runs) > 2:
        return ratio_heatmap(report, rows, caption)
    groups = [g for g in ([c for c in rows if not _is_tiny(c)], [c for c in rows if _is_tiny(c)]) if g]
    plt, figure, axes = _figure(len(groups), 1.0 + 0.28 * len(rows) + 0.6 * len(groups), ratios=[max(1, len(g)) for g in groups])
    m = report.thresholds.min_change
    for ax, group in zip(axes, groups):
        for y, c in enumerate(group):
            est = c.estimate
            assert est is not None
            high = est.high if math.isfinite(est.high) else est.ratio
            low = est.low if est.low > 0 else est.ratio
            ax.errorbar(est.ratio, y, xerr=[[est.ratio - low], [high - est.ratio]], fmt="o", capsize=3, color=_VERDICT_COLOURS[c.verdict])
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.axvspan(1 / (1 + m), 1 + m, color="#ecf0f1", zorder=0, label=f"within {m:.0%}")
        values = [v for c in group for v in (c.estimate.low, c.estimate.ratio, c.estimate.high) if v > 0 and math.isfinite(v)]  # type: ignore[union-attr]
        low, high = min([*values, 1 / (1 + m)]), max([*values, 1 + m])
        ax.set_xscale("log")
        ax.set_xlim(low / 1.02, high * 1.02)  # the axis spans the data (and the band), no more
        _plain_ratio_ticks(ax)
        ax.set_yticks(range(len(group)))
        ax.set_yticklabels([c.case_id for c in group], fontsize=8)
        ax.set_ylim(len(group) - 0.5, -0.5)
        if _is_tiny(group[0]):
            ax.set_title(f"cases under {SUB_MICROSECOND_S * 1e6:g} µs a round (harness overhead: own scale)", fontsize=8)
        elif caption:
            ax.set_title(caption, fontsize=8)
    axes[-1].set_xlabel(
        f"time ratio {report.runs[1].label} / {report.runs[0].label} (log; >1 slower), {report.thresholds.confidence:.0%} CI", fontsize=9
    )
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0)
    return _encoded(plt, figure)


def _plain_ratio_ticks(ax) -> None:  # type: ignore[no-untyped-def]
    """Ratio ticks as 0.98, 1.05 — not 9.8×10⁻¹: a narrow log axis has only minor ticks, whose
    default labels ran into each other."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=8))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))


def ratio_heatmap(report: ComparisonReport, rows: Sequence[CaseComparison], caption: str = "") -> str:
    """Many runs x many cases: one cell per case and contender, coloured by log ratio, marked when changed."""
    import numpy as np

    contenders = [r.label for r in report.runs[1:]]
    cases = sorted({c.case_id for c in rows}, key=lambda case_id: (any(_is_tiny(c) for c in rows if c.case_id == case_id), case_id))
    grid = np.full((len(cases), len(contenders)), np.nan)
    marks: dict[tuple[int, int], str] = {}
    for c in rows:
        i, j = cases.index(c.case_id), contenders.index(c.contender_label)
        grid[i, j] = math.log(c.estimate.ratio)  # type: ignore[union-attr]
        marks[i, j] = {"slower": "▲", "faster": "▼"}.get(c.verdict, "")
    limit = max(math.log(1 + report.thresholds.min_change) * 3, float(np.nanmax(np.abs(grid))) if np.isfinite(grid).any() else 0.1)
    plt, figure, (ax,) = _figure(1, 1.2 + 0.3 * len(cases), width=max(8.0, 3.5 + 1.1 * len(contenders)))
    image = ax.imshow(grid, cmap="RdYlGn_r", vmin=-limit, vmax=limit, aspect="auto")
    for (i, j), mark in marks.items():
        ax.text(j, i, f"{math.exp(grid[i, j]):.2f}{mark}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(contenders)))
    ax.set_xticklabels(contenders, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(cases)))
    ax.set_yticklabels(cases, fontsize=7)
    bar = figure.colorbar(image, ax=ax, fraction=0.03, pad=0.02)
    ticks = [-limit, 0.0, limit]
    bar.set_ticks(ticks)
    bar.set_ticklabels([f"{math.exp(t):.2f}x" for t in ticks])
    title = f"time ratio over {report.runs[0].label} (▲ slower, ▼ faster: significant and beyond {report.thresholds.min_change:.0%})"
    ax.set_title(title + (f"\n{caption}" if caption else ""), fontsize=9)
    return _encoded(plt, figure)


def _speedups_by_variant(speedups: Sequence[Speedup]) -> tuple[list[Speedup], str]:
    """A fleet's speedups as one row per technique and variant and run: the median speedup over its
    cases, its 10th–90th percentiles as the bar's range (the first ``PLOT_ROWS`` such rows)."""
    import numpy as np

    grouped: dict[tuple[str, str, str], list[float]] = {}
    for s in speedups:
        grouped.setdefault((s.technique, s.variant, s.run_label), []).append(s.speedup)
    counts: dict[tuple[str, str], int] = {}
    for (technique, variant, _), values in grouped.items():
        counts[technique, variant] = max(counts.get((technique, variant), 0), len(values))
    rows = []
    for (technique, variant, label), values in grouped.items():
        low, middle, high = (float(v) for v in np.percentile(values, [10, 50, 90]))
        name = f"{technique} {variant} ({counts[technique, variant]} cases)"
        rows.append(Speedup(label, name, "", technique, variant, middle, low, high))
    names = sorted({r.case_id for r in rows})
    kept = set(names[:PLOT_ROWS])
    shown_part = "" if len(names) <= PLOT_ROWS else f"; the first {PLOT_ROWS} of {len(names)} variants"
    caption = f"median speedup over each variant's cases, bars 10th–90th percentile{shown_part} (every case is in the tables)"
    return [r for r in rows if r.case_id in kept], caption


def speedup_plot(report: ComparisonReport) -> str | None:
    """Each technique variant's speedup over its baseline, one bar per run (machine); past
    ``PLOT_ROWS`` cases, one bar per technique, variant and run (the median over its cases)."""
    if not report.speedups:
        return None
    speedups, caption = list(report.speedups), ""
    if len({s.case_id for s in speedups}) > PLOT_ROWS:
        speedups, caption = _speedups_by_variant(speedups)
    labels = [r.label for r in report.runs]
    cases = sorted({s.case_id for s in speedups})
    lookup = {(s.case_id, s.run_label): s for s in speedups}
    plt, figure, (ax,) = _figure(1, max(2.5, 0.35 * len(cases) * max(1, len(labels) / 2) + 1.2))
    if caption:
        ax.set_title(caption, fontsize=8)
    height = 0.8 / max(1, len(labels))
    for i, label in enumerate(labels):
        ys, values, errors = [], [], [[], []]  # type: ignore[var-annotated]
        for y, case_id in enumerate(cases):
            s = lookup.get((case_id, label))
            if s is None:
                continue
            ys.append(y + i * height)
            values.append(s.speedup)
            has_ci = math.isfinite(s.low) and math.isfinite(s.high)
            errors[0].append(s.speedup - s.low if has_ci else 0.0)
            errors[1].append(s.high - s.speedup if has_ci else 0.0)
        ax.barh(ys, values, height=height, xerr=errors, capsize=2, label=label)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks([y + 0.4 - height / 2 for y in range(len(cases))])
    ax.set_yticklabels(cases, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("throughput over the baseline case (x); >1 the technique pays off")
    # the legend sits outside the axes: inside, it covered the last group of bars
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _encoded(plt, figure)


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1300px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
th { background: #f4f6f7; }
td.slower, span.slower { color: #c0392b; font-weight: bold; }
td.faster, span.faster { color: #27ae60; font-weight: bold; }
td.nc { color: #7f8c8d; }
.counts span { margin-right: 1.2em; font-size: 15px; }
img { max-width: 100%; }
details { margin: 1em 0; }
"""


def changed_table(report: ComparisonReport) -> Table | None:
    """The cases whose verdict is slower or faster: what a reader wants to see first."""
    rows = [
        [c.case_id, c.contender_label, fmt_change(c.change), fmt_ratio(c.estimate.ratio, c.estimate.low, c.estimate.high), fmt_p(c.estimate.p_value), c.verdict]
        for c in report.comparisons
        if c.verdict in ("slower", "faster") and c.estimate is not None
    ]
    rows.sort(key=lambda r: (r[5] != "slower", r[0]))
    return Table("Cases that changed", ["case", "run", "change", "ratio [CI]", "p", "verdict"], rows) if rows else None


def _counts_html(report: ComparisonReport) -> str:
    spans = "".join(
        f"<span class='{ {'slower': 'slower', 'faster': 'faster'}.get(v, '') }'>{n} {html.escape(v)}</span>"
        for v, n in verdict_counts(c.verdict for c in report.comparisons)
    )
    t = report.thresholds
    rule = f"A change needs p < {t.alpha} and at least {t.min_change:.0%}; intervals cover {t.confidence:.0%}."
    return f"<p class='counts'>{spans}</p><p>{html.escape(rule)}</p>"


def render_html(report: ComparisonReport) -> str:
    labels = [r.label for r in report.runs]
    title = f"inferperf compare: {labels[0]} vs {labels[1]}" if len(labels) == 2 else f"inferperf compare: {len(labels) - 1} runs vs {labels[0]}"
    runs = "".join(f"<li><b>{html.escape(r.label)}</b>: {html.escape(shown(r.path))}</li>" for r in report.runs)
    parts = [f"<h1>{html.escape(title)}</h1>", _counts_html(report)]
    changed = changed_table(report)
    parts.append(changed.html() if changed else "<p>No case changed beyond the threshold.</p>")
    ratio_png = ratio_plot(report)
    if ratio_png:
        parts.append("<h2>Ratio per case</h2>")
        parts.append(f"<img alt='ratio per case' src='data:image/png;base64,{ratio_png}'>")
    speedup_png = speedup_plot(report)
    if speedup_png:
        parts.append("<h2>Technique speedups per run</h2>")
        parts.append(f"<img alt='technique speedups per run' src='data:image/png;base64,{speedup_png}'>")
    from inferperf.analysis.goodput import goodput_plot

    goodput_png = goodput_plot(report.runs)
    if goodput_png:
        parts.append("<h2>Goodput curves</h2>")
        parts.append(f"<img alt='goodput and p99 TTFT against the offered rate' src='data:image/png;base64,{goodput_png}'>")
    parts.append("<h2>Every case</h2>")
    parts += [t.html() for t in all_tables(report)]
    parts.append(f"<details><summary>Runs</summary><ul>{runs}</ul></details>")
    if report.skipped_files:
        parts.append("<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in report.skipped_files) + "</ul>")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n"
    )

