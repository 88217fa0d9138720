"""Verdicts of many runs per side: interleaved blocks (``inferperf ab``) or groups (``compare --base/--candidate``).

Reads stored runs only (``inferperf.record``) and judges each case with the two-level statistics of
``inferperf.analysis.abstats``: per-block log ratios of medians, a paired sign-flip test and a
two-level bootstrap interval (blocks), or a label permutation test (groups). Also the machine's A/A
noise profile (block-to-block sigma per case, stored by ``ab --aa``), which sizes the blocks needed.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Literal, Mapping, Sequence

from inferperf.analysis.abstats import (
    AbEstimate,
    AbVerdict,
    ProcessSamples,
    ab_verdict,
    blocks_needed,
    min_sign_flip_p,
    paired_estimate,
    spent_alpha,
    unpaired_estimate,
)
from inferperf.analysis.judged_metric import judged_on
from inferperf.analysis.settings import Thresholds
from inferperf.analysis.tables import (
    Table,
    fmt_p,
    fmt_ratio,
    fmt_seconds,
    verdict_counts,
)
from inferperf.files import atomic_write
from inferperf.record.fingerprint import machine_identity
from inferperf.record.keys import RecordError
from inferperf.record.load import load_run
from inferperf.record.run import Benchmark, Run
from inferperf.record.values import as_mapping

NOISE_FOLDER = "noise"
#: one block of an experiment: (block number, the base side's run, the candidate side's run)
Block = tuple[int, Run, Run]


@dataclass(frozen=True)
class CaseResult:
    case_id: str
    estimate: AbEstimate | None
    verdict: AbVerdict | Literal["not comparable"]
    base_median_s: float | None
    candidate_median_s: float | None
    #: blocks where either side ran under contention (left out with --exclude-contended)
    contended_blocks: int
    note: str = ""
    needed_blocks: int | None = None


def load_blocks(folder: Path) -> tuple[list[Block], list[str]]:
    """The complete blocks of a stored experiment: (block, base run, candidate run), and files skipped."""
    blocks, skipped = [], []
    for path in sorted((folder / "base").glob("[0-9][0-9][0-9][0-9].json")):
        number = int(path.stem)
        other = folder / "candidate" / path.name
        if not other.exists():
            skipped.append(f"block {number}: no candidate run")
            continue
        try:
            blocks.append((number, load_run(path, f"base {number}"), load_run(other, f"candidate {number}")))
        except RecordError as exc:
            skipped.append(f"block {number} skipped: {exc}")
    return blocks, skipped


def process_samples(bench: Benchmark) -> ProcessSamples:
    """One process's round times of a case; its median alone when the run kept no raw data."""
    return ProcessSamples(bench.samples or (bench.summary.median,))


def _geometric_mean_median(side: Sequence[ProcessSamples]) -> float:
    """The typical median over a side's processes (the mean of their log medians, as the estimates use)."""
    return math.exp(sum(math.log(p.median) for p in side) / len(side))


def judge(
    blocks: Sequence[Block],
    thresholds: Thresholds,
    *,
    select: Callable[[str], bool] = lambda _: True,
    exclude_contended: bool = False,
    alpha: float | None = None,
    noise: Mapping[str, float] | None = None,
) -> list[CaseResult]:
    """Every case present in both sides of at least two blocks, judged over its blocks."""
    alpha = thresholds.alpha if alpha is None else alpha
    case_ids = sorted({c for _, base, cand in blocks for c in base.benchmarks if c in cand.benchmarks and select(c)})
    results = []
    for case_id in case_ids:
        pairs, contended = [], 0
        for _, base, cand in blocks:
            a, b = base.benchmarks.get(case_id), cand.benchmarks.get(case_id)
            if a is None or b is None:
                continue
            if a.contended or b.contended:
                contended += 1
                if exclude_contended:
                    continue
            pairs.append((process_samples(a), process_samples(b)))
        needed = blocks_needed(noise[case_id], min_change=thresholds.min_change, alpha=thresholds.alpha) if noise and case_id in noise else None
        if len(pairs) < 2:
            results.append(CaseResult(case_id, None, "not comparable", None, None, contended, "fewer than 2 complete blocks", needed))
            continue
        base_side = [p[0] for p in pairs]
        cand_side = [p[1] for p in pairs]
        estimate = paired_estimate(base_side, cand_side, confidence=thresholds.confidence, resamples=thresholds.resamples)
        verdict = ab_verdict(estimate, min_change=thresholds.min_change, alpha=alpha)
        note = ""
        if verdict == "inconclusive" and min_sign_flip_p(len(pairs)) >= alpha:
            note = f"{len(pairs)} blocks cannot reach p < {alpha:g}; run more blocks"
        elif needed is not None and len(pairs) < needed:
            note = f"this machine's A/A noise needs about {needed} blocks to detect {thresholds.min_change:.0%}"
        results.append(
            CaseResult(case_id, estimate, verdict, _geometric_mean_median(base_side), _geometric_mean_median(cand_side), contended, note, needed)
        )
    return results


def judge_groups(
    base_runs: Sequence[Run],
    candidate_runs: Sequence[Run],
    thresholds: Thresholds,
    *,
    select: Callable[[str], bool] = lambda _: True,
    exclude_contended: bool = False,
) -> list[CaseResult]:
    """Several runs per side, not interleaved in blocks: the unpaired design (label permutation test)."""
    case_ids = sorted({c for run in (*base_runs, *candidate_runs) for c in run.benchmarks if select(c)})
    results = []
    for case_id in case_ids:
        sides: list[list[ProcessSamples]] = [[], []]
        contended = 0
        for index, runs in enumerate((base_runs, candidate_runs)):
            for run in runs:
                bench = run.benchmarks.get(case_id)
                if bench is None:
                    continue
                if bench.contended:
                    contended += 1
                    if exclude_contended:
                        continue
                sides[index].append(process_samples(bench))
        base_side, cand_side = sides
        if len(base_side) < 2 or len(cand_side) < 2:
            results.append(CaseResult(case_id, None, "not comparable", None, None, contended, "fewer than 2 runs on a side"))
            continue
        estimate = unpaired_estimate(base_side, cand_side, confidence=thresholds.confidence, resamples=thresholds.resamples)
        verdict = ab_verdict(estimate, min_change=thresholds.min_change, alpha=thresholds.alpha)
        results.append(
            CaseResult(case_id, estimate, verdict, _geometric_mean_median(base_side), _geometric_mean_median(cand_side), contended)
        )
    return results


def all_decided(results: Sequence[CaseResult]) -> bool:
    return bool(results) and all(r.verdict in ("slower", "faster", "same") for r in results)


# --------------------------------------------------------------------------------------------
# The machine's noise profile (--aa)


def noise_profile_path(store: Path, run: Run) -> Path:
    return store / NOISE_FOLDER / f"{machine_identity(run.machine).digest}.json"


def save_noise_profile(store: Path, blocks: Sequence[Block], results: Sequence[CaseResult], pytest_args: Sequence[str]) -> Path:
    """Store each case's block-to-block spread (sigma of the A/A log ratios) for this machine."""
    first = blocks[0][1]
    path = noise_profile_path(store, first)
    existing: Mapping[str, object] = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            existing = {}
    cases: dict[str, object] = dict(as_mapping(existing.get("cases")))
    when = datetime.now(timezone.utc).isoformat()
    for result in results:
        if result.estimate is not None and math.isfinite(result.estimate.sigma):
            cases[result.case_id] = {"sigma": result.estimate.sigma, "blocks": result.estimate.blocks, "measured": when}
    profile = {
        "machine": machine_identity(first.machine).as_dict(),
        "pytest_args": list(pytest_args),
        "cases": cases,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(profile, indent=2) + "\n").encode())
    return path


def load_noise_profile(store: Path, run: Run) -> dict[str, float]:
    path = noise_profile_path(store, run)
    try:
        cases = json.loads(path.read_text(encoding="utf-8")).get("cases", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {k: float(v["sigma"]) for k, v in cases.items() if isinstance(v, dict) and isinstance(v.get("sigma"), (int, float))}


def blocks_judged_on(blocks: Sequence[Block], key: str | None) -> tuple[list[Block], frozenset[str]]:
    """The blocks with both runs judged on ``key`` (``--metric``; None: as they are), and the cases left out."""
    judged = judged_on([run for _, base, cand in blocks for run in (base, cand)], key)
    runs = iter(judged.runs)
    return [(number, next(runs), next(runs)) for number, _, _ in blocks], judged.left_out


def decide_early(
    folder: Path, thresholds: Thresholds, looks: Sequence[int], select: Callable[[str], bool], exclude_contended: bool,
    metric: str | None = None,
) -> Callable[[int], bool]:
    """The ``--until-decided`` rule: at each look, every case decided at ``alpha / looks``."""
    level = spent_alpha(thresholds.alpha, len(looks))

    def decided(block: int) -> bool:
        blocks, _ = blocks_judged_on(load_blocks(folder)[0], metric)
        return all_decided(judge(blocks, thresholds, select=select, exclude_contended=exclude_contended, alpha=level))

    return decided


def results_table(results: Sequence[CaseResult]) -> Table:
    rows = [
        [
            r.case_id,
            str(r.estimate.blocks) if r.estimate else "-",
            fmt_seconds(r.base_median_s),
            fmt_seconds(r.candidate_median_s),
            fmt_ratio(r.estimate.ratio, r.estimate.low, r.estimate.high) if r.estimate else "-",
            fmt_p(r.estimate.p_value) if r.estimate else "-",
            r.verdict,
            str(r.contended_blocks) if r.contended_blocks else "",
            r.note,
        ]
        for r in results
    ]
    headers = ["case", "blocks", "base", "candidate", "ratio [CI]", "p", "verdict", "contended blocks", "note"]
    return Table("candidate vs base, per case (median seconds per round, geometric mean over runs; ratio > 1: slower)", headers, rows)


#: the test behind the verdicts of an ``ab`` experiment
PAIRED_BLOCKS_TEST = "paired sign-flip test per case over interleaved blocks"


def verdict_summary(results: Sequence[CaseResult], thresholds: Thresholds, test: str = PAIRED_BLOCKS_TEST) -> str:
    """Verdict counts and the rule behind them; ``test`` names the design's significance test."""
    text = ", ".join(f"{n} {verdict}" for verdict, n in verdict_counts(r.verdict for r in results)) or "no case"
    return (
        f"{text} ({test}, p < {thresholds.alpha:g} and at least "
        f"{thresholds.min_change:.0%} for slower/faster; 'same': the {thresholds.confidence:.0%} two-level bootstrap "
        f"interval inside ±{thresholds.min_change:.0%})"
    )


def results_json(results: Sequence[CaseResult], design: Mapping[str, object] | None, thresholds: Thresholds) -> str:
    """The verdicts, the thresholds and (for ``ab``) the design, as ``--json`` writes them."""
    payload = {
        "thresholds": asdict(thresholds),
        "design": dict(design) if design else None,
        "cases": [
            {
                "case_id": r.case_id,
                "verdict": r.verdict,
                "ratio": r.estimate.ratio if r.estimate else None,
                "ci_low": r.estimate.low if r.estimate else None,
                "ci_high": r.estimate.high if r.estimate else None,
                "p_value": r.estimate.p_value if r.estimate else None,
                "blocks": r.estimate.blocks if r.estimate else 0,
                "sigma": r.estimate.sigma if r.estimate and math.isfinite(r.estimate.sigma) else None,
                "base_median_s": r.base_median_s,
                "candidate_median_s": r.candidate_median_s,
                "contended_blocks": r.contended_blocks,
                "needed_blocks": r.needed_blocks,
                "note": r.note,
            }
            for r in results
        ],
        "regressions": [r.case_id for r in results if r.verdict == "slower"],
    }
    return json.dumps(payload, indent=2) + "\n"
