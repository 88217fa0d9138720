"""Compare runs: per case across runs, per technique within runs, and against each machine's limits.

The first run is the base; every other run is a contender compared with it. Cases are matched by
their stable case id (``extra_info.case_id``, or the test's full name for plain
pytest-benchmark files), never by order or display name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from inferperf.analysis.exact import estimate_arrays, estimates, exact_ratio
from inferperf.analysis.settings import Thresholds
from inferperf.analysis.stats import (
    RatioEstimate,
    SummaryStats,
    Verdict,
    summary_ratio,
    verdict,
)
from inferperf.record.run import Benchmark, Run
from inferperf.record.values import as_list, as_mapping, finite_number


@dataclass(frozen=True)
class CaseComparison:
    """One case, base run vs one contender run."""

    case_id: str
    base_label: str
    contender_label: str
    base: Benchmark | None
    contender: Benchmark | None
    estimate: RatioEstimate | None
    verdict: Verdict
    #: why the case is not comparable, or a caution (too few rounds to reach significance)
    note: str = ""

    @property
    def change(self) -> float | None:
        """Relative change of seconds per round (+0.05: 5% slower)."""
        return self.estimate.ratio - 1.0 if self.estimate else None

    @property
    def cost_ratio(self) -> float | None:
        """Contender over base of ``cost_per_million_items_usd`` (both priced with ``--price-per-hour``)."""
        if self.base is None or self.contender is None:
            return None
        return cost_ratio(self.contender, self.base)


def priced(runs: Sequence[Run]) -> bool:
    """Some case of some run carries a price (``--price-per-hour``): only then can a cost ratio exist."""
    return any(b.extra.get(PRICE_KEY) is not None for run in runs for b in run.benchmarks.values())


#: the key whose ratio ``cost_ratio`` is
PRICE_KEY = "cost_per_million_items_usd"


def cost_ratio(bench: Benchmark, reference: Benchmark) -> float | None:
    """``bench``'s cost per item over ``reference``'s, when both runs were given a price."""
    ours, theirs = finite_number(bench.extra.get(PRICE_KEY)), finite_number(reference.extra.get(PRICE_KEY))
    return ours / theirs if ours is not None and theirs else None


def _not_comparable(base: Benchmark, contender: Benchmark) -> str:
    if base.timer and contender.timer and base.timer != contender.timer:
        return f"timers differ ({base.timer} vs {contender.timer}): the units of the times differ"
    if base.items_per_round != contender.items_per_round:
        return f"items_per_round differs ({base.items_per_round} vs {contender.items_per_round})"
    return ""


def estimate_ratio(base: Benchmark, contender: Benchmark, thresholds: Thresholds) -> RatioEstimate:
    """The exact statistics when both sides kept raw samples (2+ each), else the summary fallback."""
    if has_raw_samples(base, contender):
        return exact_ratio(base.samples, contender.samples, confidence=thresholds.confidence)  # type: ignore[arg-type]
    return summary_ratio(SummaryStats.of(base.summary), SummaryStats.of(contender.summary), confidence=thresholds.confidence)


def has_raw_samples(base: Benchmark, contender: Benchmark) -> bool:
    """Both sides kept two or more raw round times: the exact statistics apply."""
    return bool(base.samples and contender.samples and len(base.samples) > 1 and len(contender.samples) > 1)


def compare_pair(
    case_id: str,
    base_run: Run,
    contender_run: Run,
    thresholds: Thresholds,
    exclude_contended: bool = False,
    estimate: RatioEstimate | None = None,
) -> CaseComparison:
    """One case compared; ``estimate`` when it was computed already (in bulk, by ``compare_runs``)."""
    base = base_run.benchmarks.get(case_id)
    contender = contender_run.benchmarks.get(case_id)
    labels = (base_run.label, contender_run.label)
    if base is None or contender is None:
        missing = base_run.label if base is None else contender_run.label
        skipped = _skip_reason(base_run if base is None else contender_run, case_id)
        note = f"not in {missing}" + (f" (skipped: {skipped})" if skipped else "")
        return CaseComparison(case_id, *labels, base, contender, None, "not comparable", note)
    reason = _not_comparable(base, contender)
    invalid = [f"{label}: {bench.invalid_reason}" for label, bench in zip(labels, (base, contender)) if bench.invalid_reason]
    if invalid and not reason:
        # the client could not keep its schedule: what it measured is not the server's latency
        reason = "invalid load in " + "; ".join(invalid)
    contended = [label for label, bench in zip(labels, (base, contender)) if bench.contended]
    if contended and exclude_contended:
        reason = f"contended in {' and '.join(contended)} (--exclude-contended)"
    if reason:
        return CaseComparison(case_id, *labels, base, contender, None, "not comparable", reason)
    estimate = estimate or estimate_ratio(base, contender, thresholds)
    note = f"contended in {' and '.join(contended)}: other work competed for the CPU; " if contended else ""
    if estimate.min_p_value is not None and estimate.min_p_value >= thresholds.alpha:
        note += (
            f"too few rounds ({base.summary.rounds} vs {contender.summary.rounds}) to reach p < "
            f"{thresholds.alpha}; use --rounds"
        )
    elif estimate.method == "summary":
        note += "no raw samples: summary-statistics fallback (save runs with --benchmark-save-data)"
    note = note.removesuffix("; ")
    return CaseComparison(
        case_id,
        *labels,
        base,
        contender,
        estimate,
        verdict(estimate, min_change=thresholds.min_change, alpha=thresholds.alpha),
        note,
    )


def _skip_reason(run: Run, case_id: str) -> str:
    for entry in run.inferperf_machine.get("skipped", []) or []:
        if isinstance(entry, Mapping) and entry.get("case_id") == case_id:
            return str(entry.get("reason", ""))
    return ""


def compare_runs(
    runs: Sequence[Run],
    thresholds: Thresholds,
    select: Callable[[str], bool] = lambda _: True,
    exclude_contended: bool = False,
) -> list[CaseComparison]:
    """Every case of every run, each contender against the first run, sorted by case id.

    The exact estimates of all cases with raw samples are computed together (``exact.estimates``:
    grouped by sample sizes, whole-array sorts); the rest case by case.
    """
    if len(runs) < 2:
        raise ValueError("compare needs at least two runs (a base and a contender)")
    base_run = runs[0]
    results = []
    for contender_run in runs[1:]:
        case_ids = [c for c in sorted(set(base_run.benchmarks) | set(contender_run.benchmarks)) if select(c)]
        estimates = _bulk_estimates(case_ids, base_run, contender_run, thresholds)
        results += [
            compare_pair(c, base_run, contender_run, thresholds, exclude_contended, estimates.get(c)) for c in case_ids
        ]
    return results


def _bulk_estimates(case_ids: Sequence[str], base_run: Run, contender_run: Run, thresholds: Thresholds) -> dict[str, RatioEstimate]:
    """Exact estimates of every case both runs hold with raw samples, computed in bulk."""
    wanted = []
    for case_id in case_ids:
        base, contender = base_run.benchmarks.get(case_id), contender_run.benchmarks.get(case_id)
        if base is not None and contender is not None and has_raw_samples(base, contender):
            wanted.append((case_id, base.samples, contender.samples))
    found = estimates([(b, c) for _, b, c in wanted], confidence=thresholds.confidence)  # type: ignore[misc]
    return {case_id: estimate for (case_id, _, _), estimate in zip(wanted, found)}


#: what a comparison of one run per side cannot see
ONE_RUN_PER_SIDE = (
    "one run per side: the intervals cover the rounds inside each run, not the drift between runs "
    "(clock, neighbours, caches), which on a shared machine is often larger; for a verdict there, "
    "compare several runs per side (--base/--candidate) or use inferperf ab"
)


# --------------------------------------------------------------------------------------------
# Technique view: within each run, each variant's speedup over its baseline


@dataclass(frozen=True)
class Speedup:
    """Throughput of a variant over its baseline case, within one run (> 1: the variant is faster)."""

    run_label: str
    case_id: str
    baseline_case_id: str
    technique: str
    variant: str
    speedup: float
    low: float
    high: float
    #: the variant's cost per item over its baseline's (None without --price-per-hour)
    cost_ratio: float | None = None


def technique_view(
    runs: Sequence[Run], thresholds: Thresholds, select: Callable[[str], bool] = lambda _: True
) -> list[Speedup]:
    """Speedups of every case that names a ``baseline_case_id`` present in the same run.

    The speedup is items/s over items/s; its interval, where both sides kept raw samples, is the
    exact (Moses) interval of the shift between the two sides' per-round throughputs, every
    speedup's computed together (``exact.estimate_arrays``). Throughput is items over time, so
    the shift between throughputs is the inverse shift between times scaled by the items ratio:
    the times go in as they are, each pair as (ours, theirs), and the interval is scaled after.
    """
    pairs: list[tuple[Run, str, Benchmark, Benchmark]] = []
    for run in runs:
        for case_id in sorted(run.benchmarks):
            bench = run.benchmarks[case_id]
            baseline_id = bench.extra.get("baseline_case_id")
            if not baseline_id or baseline_id == case_id or not select(case_id):
                continue
            baseline = run.benchmarks.get(str(baseline_id))
            if baseline is not None:
                pairs.append((run, case_id, bench, baseline))
    sampled = [i for i, (_, _, bench, baseline) in enumerate(pairs) if has_raw_samples(bench, baseline)]
    found = estimate_arrays([(pairs[i][2].samples, pairs[i][3].samples) for i in sampled], confidence=thresholds.confidence, with_p=False)  # type: ignore[misc]
    low, high = np.full(len(pairs), math.nan), np.full(len(pairs), math.nan)
    items = np.array([bench.items_per_round / baseline.items_per_round for _, _, bench, baseline in pairs])
    low[sampled], high[sampled] = found.low * items[sampled], found.high * items[sampled]
    with_cost = priced(runs)
    return [
        Speedup(
            run.label, case_id, baseline.case_id, bench.field("technique"), bench.field("variant"),
            bench.items_per_s / baseline.items_per_s, lo, hi, cost_ratio(bench, baseline) if with_cost else None,
        )
        for (run, case_id, bench, baseline), lo, hi in zip(pairs, low.tolist(), high.tolist())
    ]


# --------------------------------------------------------------------------------------------
# Calibrated view and machine differences


@dataclass(frozen=True)
class CalibratedRow:
    case_id: str
    #: run label -> (roofline_fraction, achieved_flops_per_s); None where the run lacks the case
    per_run: Mapping[str, tuple[float | None, float | None] | None]


def calibrated_view(runs: Sequence[Run], select: Callable[[str], bool] = lambda _: True) -> list[CalibratedRow]:
    # only a case some run measured the roofline of can have a row
    case_ids = sorted({c for run in runs for c, b in run.benchmarks.items() if b.extra.get("roofline_fraction") is not None and select(c)})
    rows = []
    for case_id in case_ids:
        per_run: dict[str, tuple[float | None, float | None] | None] = {}
        for run in runs:
            bench = run.benchmarks.get(case_id)
            per_run[run.label] = (
                None if bench is None else (finite_number(bench.extra.get("roofline_fraction")), finite_number(bench.extra.get("achieved_flops_per_s")))
            )
        if any(v is not None and v[0] is not None for v in per_run.values()):
            rows.append(CalibratedRow(case_id, per_run))
    return rows


def machine_summary(run: Run) -> dict[str, str]:
    """The facts about a run's machine and software that explain differences between runs."""
    m, ip = run.machine, run.inferperf_machine
    cpu, pb_cpu = as_mapping(ip.get("cpu")), as_mapping(m.get("cpu"))
    facts: dict[str, str] = {
        "host": str(m.get("node", "")),
        "cpu": str(cpu.get("model") or pb_cpu.get("brand_raw") or m.get("processor", "")),
        "cpu cores": str(cpu.get("affinity_cores") or cpu.get("logical_cores") or pb_cpu.get("count", "")),
        "cpu isa": " ".join(cpu.get("isa", [])) if isinstance(cpu.get("isa"), list) else "",
        "python": str(m.get("python_version", "")),
        "tier": str(ip.get("tier", "")),
        "threads": str(as_mapping(ip.get("torch_build")).get("torch_threads", "")),
    }
    gpus = as_list(ip.get("gpus"))
    facts["gpus"] = ", ".join(str(g.get("name")) for g in gpus if isinstance(g, Mapping)) or "none"
    for name, version in sorted(as_mapping(ip.get("versions")).items()):
        facts[f"version {name}"] = str(version)
    for device, cal in sorted(as_mapping(ip.get("calibration")).items()):
        if not isinstance(cal, Mapping):
            continue
        for dtype, peak in sorted((cal.get("peak_flops_per_s") or {}).items()):
            facts[f"peak {device} {dtype}"] = f"{peak / 1e9:.0f} GFLOP/s" if isinstance(peak, (int, float)) else str(peak)
        bandwidth = cal.get("mem_bandwidth_bytes_per_s")
        if isinstance(bandwidth, (int, float)):
            facts[f"bandwidth {device}"] = f"{bandwidth / 1e9:.1f} GB/s"
    return {k: v for k, v in facts.items() if v}


def machine_differences(runs: Sequence[Run]) -> list[tuple[str, list[str]]]:
    """Facts whose values differ between runs: (fact, [value per run])."""
    summaries = [machine_summary(r) for r in runs]
    keys: list[str] = []
    for summary in summaries:
        keys += [k for k in summary if k not in keys]
    rows = []
    for key in keys:
        values = [s.get(key, "-") for s in summaries]
        if len(set(values)) > 1:
            rows.append((key, values))
    return rows


def slower_cases(comparisons: Iterable[CaseComparison]) -> list[CaseComparison]:
    """The comparisons whose verdict is ``slower`` (what ``--fail-on-regression`` gates on)."""
    return [c for c in comparisons if c.verdict == "slower"]
