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
from inferperf.analysis.load import Benchmark, Run
from inferperf.analysis.output import Outputs
from inferperf.analysis.tables import (
    Table,
    fmt_change,
    fmt_fraction,
    fmt_p,
    fmt_rate,
    fmt_ratio,
    fmt_seconds,
)

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
    headers = ["case", "base", "contender", "base items/s", "contender items/s", "change", "ratio [CI]", "p", "verdict", "note"]
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
        row += [fmt_ratio(per_run[l].speedup, per_run[l].low, per_run[l].high) if l in per_run else "-" for l in labels]
        rows.append(row)
    return Table("Technique speedups within each run (throughput over the baseline case)", ["case", "baseline", *labels], rows)


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
    counts: dict[str, int] = {}
    for c in report.comparisons:
        counts[c.verdict] = counts.get(c.verdict, 0) + 1
    order = ("slower", "faster", "same", "not comparable")
    summary = ", ".join(f"{counts[v]} {v}" for v in order if v in counts)
    t = report.thresholds
    return f"{summary} (a change needs p < {t.alpha} and at least {t.min_change:.0%}; {t.confidence:.0%} intervals)"


def render_text(report: ComparisonReport) -> str:
    parts = [t.text() for t in all_tables(report)]
    parts.append(_verdict_counts(report))
    parts += report.skipped_files
    return "\n\n".join(parts) + "\n"


def render_markdown(report: ComparisonReport) -> str:
    labels = ", ".join(f"`{r.label}`" for r in report.runs)
    parts = [f"### inferperf compare: {labels}", "", _verdict_counts(report)]
    parts += [t.markdown() for t in all_tables(report)]
    if report.skipped_files:
        parts.append("\n".join(f"- {line}" for line in report.skipped_files))
    return "\n\n".join(parts) + "\n"


CSV_FIELDS = (
    "case_id", "base", "contender", "base_median_s", "contender_median_s", "base_items_per_s",
    "contender_items_per_s", "ratio", "ci_low", "ci_high", "p_value", "method", "verdict", "note",
)


def render_csv(report: ComparisonReport) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in comparison_records(report):
        writer.writerow({k: ("" if row[k] is None else row[k]) for k in CSV_FIELDS})
    return buffer.getvalue()


def comparison_records(report: ComparisonReport) -> list[dict[str, object]]:
    records = []
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
            }
        )
    return records


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


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
                "technique": s.technique, "variant": s.variant, "speedup": s.speedup,
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
    return json.dumps(payload, indent=2) + "\n"


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


def _png(draw: Callable[[object], None], height: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, height))
    draw(axes)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


_VERDICT_COLOURS = {"slower": "#c0392b", "faster": "#27ae60", "same": "#7f8c8d", "not comparable": "#bdc3c7"}


def ratio_plot(report: ComparisonReport) -> str | None:
    """Ratio with its interval per case (log scale), coloured by verdict; one panel for all contenders."""
    rows = [c for c in report.comparisons if c.estimate is not None]
    if not rows:
        return None

    def draw(ax) -> None:
        many = len(report.runs) > 2
        labels = [f"{c.case_id}  ({c.contender_label})" if many else c.case_id for c in rows]
        for y, c in enumerate(rows):
            est = c.estimate
            assert est is not None
            high = est.high if math.isfinite(est.high) else est.ratio
            low = est.low if est.low > 0 else est.ratio
            ax.errorbar(
                est.ratio, y, xerr=[[est.ratio - low], [high - est.ratio]], fmt="o", capsize=3,
                color=_VERDICT_COLOURS[c.verdict],
            )
        m = report.thresholds.min_change
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.axvspan(1 / (1 + m), 1 + m, color="#ecf0f1", zorder=0, label=f"within {m:.0%}")
        ax.set_xscale("log")
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(f"time ratio contender / {report.runs[0].label} (log; >1 slower), {report.thresholds.confidence:.0%} CI")
        ax.legend(loc="lower right", fontsize=8)

    return _png(draw, max(2.5, 0.3 * len(rows) + 1.2))


def speedup_plot(report: ComparisonReport) -> str | None:
    """Each technique variant's speedup over its baseline, one bar per run (machine)."""
    if not report.speedups:
        return None
    labels = [r.label for r in report.runs]
    cases = sorted({s.case_id for s in report.speedups})
    lookup = {(s.case_id, s.run_label): s for s in report.speedups}

    def draw(ax) -> None:
        height = 0.8 / max(1, len(labels))
        for i, label in enumerate(labels):
            ys, values, errors = [], [], [[], []]
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
        ax.legend(fontsize=8)

    return _png(draw, max(2.5, 0.35 * len(cases) * max(1, len(labels) / 2) + 1.2))


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
th { background: #f4f6f7; }
td.slower { color: #c0392b; font-weight: bold; }
td.faster { color: #27ae60; font-weight: bold; }
td.nc { color: #7f8c8d; }
img { max-width: 100%; }
"""


def render_html(report: ComparisonReport) -> str:
    title = "inferperf compare: " + ", ".join(r.label for r in report.runs)
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(_verdict_counts(report))}</p>"]
    ratio_png = ratio_plot(report)
    if ratio_png:
        parts.append("<h2>Ratio per case</h2>")
        parts.append(f"<img alt='ratio per case with confidence intervals' src='data:image/png;base64,{ratio_png}'>")
    speedup_png = speedup_plot(report)
    if speedup_png:
        parts.append("<h2>Technique speedups per machine</h2>")
        parts.append(f"<img alt='technique speedups per machine' src='data:image/png;base64,{speedup_png}'>")
    parts.append("<h2>Tables</h2>")
    parts += [t.html() for t in all_tables(report)]
    if report.skipped_files:
        parts.append("<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in report.skipped_files) + "</ul>")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n"
    )
