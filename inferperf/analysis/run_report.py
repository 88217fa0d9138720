"""``inferperf report``: one run's results as a table per technique (what the documentation's tables show)."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from inferperf.analysis.tables import (
    Table,
    fmt_bytes,
    fmt_fraction,
    fmt_rate,
    fmt_seconds,
)
from inferperf.record.run import Benchmark, Run
from inferperf.record.values import finite_number


def _fmt_joules(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g} J"


def _fmt_usd(value: float | None) -> str:
    return "-" if value is None else f"${value:,.4g}"


def _details(bench: Benchmark) -> str:
    """The technique-specific keys worth a glance, in a few words."""
    extra = bench.extra
    parts = []
    stages = extra.get("stage_s")
    if isinstance(stages, Mapping) and stages:
        total = sum(v for v in stages.values() if isinstance(v, (int, float))) or 1.0
        parts.append(" / ".join(f"{k} {v / total:.0%}" for k, v in stages.items() if isinstance(v, (int, float))))
    agreement = extra.get("agreement")
    if isinstance(agreement, Mapping):
        if "cosine" in agreement:
            parts.append(f"cos {agreement['cosine']:.4f}")
        if "top1_match" in agreement:
            parts.append(f"top-1 {agreement['top1_match']:.0%}")
        if "top_query_same" in agreement:
            parts.append(f"top query kept {agreement['top_query_same']:.0%}")
        decisions = agreement.get("decisions_same")
        if isinstance(decisions, Mapping):
            parts.append("same decisions " + ", ".join(f"@{t} {v:.0%}" for t, v in decisions.items()))
    for key, label in (("latency_p50_s", "p50"), ("latency_p90_s", "p90"), ("latency_p99_s", "p99")):
        if finite_number(extra.get(key)) is not None:
            parts.append(f"{label} {fmt_seconds(extra[key])}")
    if finite_number(extra.get("server_mean_batch")) is not None:
        parts.append(f"server batch {extra['server_mean_batch']:.2f}")
    parts += _served_details(bench)
    return "; ".join(parts)


def _served_details(bench: Benchmark) -> list[str]:
    """A served case: its load, p99 TTFT from the schedule, TPOT, goodput, errors, and whether it is valid."""
    extra = bench.extra
    load = extra.get("load")
    if "capacity_probes" in extra:
        interval = extra.get("capacity_interval_rps")
        low, high = (interval + [None, None])[:2] if isinstance(interval, list) else (extra.get("max_rate_meeting_slo_rps"), None)
        if finite_number(low) is None:
            within = "no probed Poisson rate within SLO"
        else:
            within = f"Poisson rate within SLO {low:.3g}" + (f"–{high:.3g} rps" if finite_number(high) is not None else "+ rps (the search's top)")
        return [f"{within} ({len(extra.get('capacity_probes') or [])} probes)"]
    if not isinstance(load, Mapping):
        return []
    parts = [str(load.get("label", load.get("mode")))]
    for key, label in (("ttft_p99_from_schedule_s", "TTFT p99 (schedule)"), ("e2e_p99_from_schedule_s", "E2E p99 (schedule)"), ("tpot_s", "TPOT")):
        if finite_number(extra.get(key)) is not None:
            parts.append(f"{label} {fmt_seconds(extra[key])}")
            if key.startswith("ttft"):
                break  # generation: TTFT says it; E2E is the Triton requests' only latency
    if finite_number(extra.get("goodput_rps")) is not None:
        parts.append(f"goodput {extra['goodput_rps']:.2f} rps")
    if finite_number(extra.get("error_rate")):
        parts.append(f"errors {extra['error_rate']:.0%}")
    if bench.invalid_reason:
        parts.append(f"INVALID ({bench.invalid_reason}): not the server's latency")
    return parts


def _speedup(run: Run, bench: Benchmark) -> str:
    baseline = run.benchmarks.get(str(bench.extra.get("baseline_case_id") or ""))
    if baseline is None or baseline is bench:
        return "-"
    return f"{bench.items_per_s / baseline.items_per_s:.2f}x"


def _setup(run: Run, bench: Benchmark) -> str:
    """The set-up time, and for a compiled case whether Inductor's cache held its graph (a cached
    compile takes a fraction of a cold one's time: the two are not the same figure)."""
    text = fmt_seconds(finite_number(bench.extra.get("setup_s")))
    compiled = bench.extra.get("compile")
    if not isinstance(compiled, dict):
        return text
    hits, misses = compiled.get("fx_graph_cache_hits"), compiled.get("fx_graph_cache_misses")
    if hits and not misses:
        return f"{text} (cached)"
    if misses and not hits:
        return f"{text} (not cached)"
    if compiled.get("cache_files_before") == 0:  # AOTInductor counts no hits: only an empty cache is known cold
        return f"{text} (cold cache)"
    return text


COLUMNS: tuple[tuple[str, Callable[[Run, Benchmark], str]], ...] = (
    ("case", lambda r, b: b.case_id.split("/", 1)[-1]),
    ("items/s", lambda r, b: fmt_rate(b.items_per_s)),
    ("s/item", lambda r, b: fmt_seconds(b.summary.median / b.items_per_round)),
    ("round (median)", lambda r, b: fmt_seconds(b.summary.median)),
    ("vs baseline", _speedup),
    ("roofline", lambda r, b: fmt_fraction(finite_number(b.extra.get("roofline_fraction")))),
    ("model bytes", lambda r, b: fmt_bytes(b.extra.get("model_bytes"))),
    ("peak mem", lambda r, b: fmt_bytes(b.extra.get("peak_mem_bytes"))),
    ("setup", _setup),
    ("energy/item", lambda r, b: _fmt_joules(finite_number(b.extra.get("energy_per_item_j")))),
    ("USD per 1M items", lambda r, b: _fmt_usd(finite_number(b.extra.get("cost_per_million_items_usd")))),
    ("details", lambda r, b: _details(b)),
)


def technique_tables(run: Run, select: Callable[[str], bool] = lambda _: True) -> list[Table]:
    by_technique: dict[str, list[Benchmark]] = {}
    for case_id, bench in sorted(run.benchmarks.items()):
        if select(case_id):
            by_technique.setdefault(bench.field("technique"), []).append(bench)
    tables = []
    for technique, benches in by_technique.items():
        rows = [[render(run, b) for _, render in COLUMNS] for b in benches]
        tables.append(Table(f"{technique} ({run.label})", [name for name, _ in COLUMNS], rows))
    return tables


def skipped_table(runs: Sequence[Run], select: Callable[[str], bool] = lambda _: True) -> Table | None:
    rows = []
    for run in runs:
        for entry in run.inferperf_machine.get("skipped", []) or []:
            if isinstance(entry, Mapping) and select(str(entry.get("case_id", ""))):
                rows.append([str(entry.get("case_id")), str(entry.get("reason", ""))])
    return Table("Skipped cases", ["case", "reason"], rows) if rows else None
