"""Exports of a run for the continuous-benchmarking services people already use.

- github-action-benchmark (``benchmark-action/github-action-benchmark``), tools
  ``customSmallerIsBetter`` (latency per item, seconds) and ``customBiggerIsBetter``
  (throughput, items/s): a JSON list of ``{name, unit, value, range, extra}``.
- Bencher Metric Format (BMF): ``{benchmark: {measure: {value, lower_value, upper_value}}}`` with
  Bencher's built-in measures ``latency`` (nanoseconds per item) and ``throughput`` (items/s).

Values are per item (``items_per_round`` from the record; 1 for plain pytest-benchmark files),
bounds come from the fastest and slowest round.
"""

from __future__ import annotations

import json
from typing import Literal

from inferperf.record.run import Benchmark, Run

ExportFormat = Literal["github-smaller", "github-bigger", "bencher"]
FORMATS: tuple[ExportFormat, ...] = ("github-smaller", "github-bigger", "bencher")


def _extra(bench: Benchmark) -> str:
    keys = ("device", "dtype", "batch", "rounds", "roofline_fraction")
    return ", ".join(f"{k}={bench.extra[k]}" for k in keys if bench.extra.get(k) is not None)


def github_action_benchmark(run: Run, bigger_is_better: bool) -> list[dict[str, object]]:
    entries = []
    for case_id, bench in sorted(run.benchmarks.items()):
        items, s = bench.items_per_round, bench.summary
        if bigger_is_better:
            value, unit = items / s.median, "items/s"
            spread = items / s.min - items / s.max
        else:
            value, unit = s.median / items, "s"
            spread = (s.max - s.min) / items
        entries.append({"name": case_id, "unit": unit, "value": value, "range": f"± {spread / 2:.6g}", "extra": _extra(bench)})
    return entries


def bencher_metric_format(run: Run) -> dict[str, dict[str, dict[str, float]]]:
    metrics = {}
    for case_id, bench in sorted(run.benchmarks.items()):
        items, s = bench.items_per_round, bench.summary
        metrics[case_id] = {
            "latency": {
                "value": s.median / items * 1e9,
                "lower_value": s.min / items * 1e9,
                "upper_value": s.max / items * 1e9,
            },
            "throughput": {"value": items / s.median, "lower_value": items / s.max, "upper_value": items / s.min},
        }
    return metrics


def export_run(run: Run, fmt: ExportFormat) -> str:
    if fmt == "bencher":
        payload: object = bencher_metric_format(run)
    else:
        payload = github_action_benchmark(run, bigger_is_better=fmt == "github-bigger")
    return json.dumps(payload, indent=2) + "\n"
