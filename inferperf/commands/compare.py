"""``inferperf compare``: runs case by case against the first (across machines or nights), or several
runs per side (``--base``/``--candidate``) judged as ``inferperf ab`` judges its blocks."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from inferperf.analysis import ab_verdicts
from inferperf.analysis.compare import (
    ONE_RUN_PER_SIDE,
    calibrated_view,
    compare_runs,
    machine_differences,
    slower_cases,
    technique_view,
)
from inferperf.analysis.compare_report import (
    ComparisonReport,
    render_csv,
    render_html,
    render_json,
    render_markdown,
    render_text,
    write_pngs,
)
from inferperf.analysis.settings import Thresholds
from inferperf.commands import EXIT_OK, EXIT_REGRESSION, UsageError
from inferperf.commands.common import (
    judged,
    nothing_compared,
    outputs_for,
    select_cases,
    write,
    write_verdicts,
)
from inferperf.record.load import collection_paused, load_runs


def run(args: argparse.Namespace) -> int:
    # a fleet's comparison makes millions of objects and no cycles: collecting among them cost a
    # quarter of its time
    with collection_paused():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    thresholds = Thresholds(min_change=args.min_change, alpha=args.alpha, confidence=args.confidence)
    select = select_cases(args.k)
    if args.base or args.candidate:
        return _compare_groups(args, thresholds, select)
    if args.paired:
        raise UsageError("--paired needs --base and --candidate")
    if not args.runs:
        raise UsageError("give the runs to compare, or --base FILES --candidate FILES")
    labels = [label.strip() for label in args.labels.split(",")] if args.labels else None
    loaded = load_runs(args.runs, labels)
    runs = judged(args, loaded.runs)
    if len(runs) < 2:
        found = ", ".join(map(str, args.runs))
        raise UsageError(f"compare needs at least two runs; found {len(runs)} in {found}")
    if not any(select(c) for run in runs for c in run.benchmarks):
        raise UsageError(f"no case in the runs matches -k {args.k!r}")
    comparisons = compare_runs(runs, thresholds, select, exclude_contended=args.exclude_contended)
    if args.fail_on_regression:
        # a gate that compared nothing must not pass: a typo in -k, an empty or foreign contender
        for contender in runs[1:]:
            if not any(c.estimate is not None for c in comparisons if c.contender_label == contender.label):
                raise nothing_compared(f"{contender.label} has no case in common with {runs[0].label}", args.k)
    report = ComparisonReport(
        runs=runs,
        comparisons=comparisons,
        speedups=technique_view(runs, thresholds, select),
        calibrated=calibrated_view(runs, select),
        machine_diffs=machine_differences(runs),
        thresholds=thresholds,
        group_by=args.group_by,
        skipped_files=loaded.skipped,
    )
    for line in loaded.skipped:
        print(line, file=sys.stderr)
    renderers = {"markdown": render_markdown, "csv": render_csv, "json": render_json, "html": render_html}
    to_stdout = [name for name in renderers if getattr(args, name) == "-"]
    if len(to_stdout) > 1:
        raise UsageError(f"only one output can go to stdout ('-'), got --{' and --'.join(to_stdout)}")
    outputs = outputs_for(args, renderers, loaded.inputs)
    if not to_stdout:
        sys.stdout.write(render_text(report))
        print(f"note: {ONE_RUN_PER_SIDE}", file=sys.stderr)
    for name, render in renderers.items():
        destination = getattr(args, name)
        if destination:
            write(outputs, destination, render(report), f"--{name}")
    if args.png:
        for path in write_pngs(report, args.png, outputs):
            print(f"wrote {path}", file=sys.stderr)
    if args.fail_on_regression and slower_cases(comparisons):
        return EXIT_REGRESSION
    return EXIT_OK


def _compare_groups(args: argparse.Namespace, thresholds: Thresholds, select: Callable[[str], bool]) -> int:
    """``compare --base FILES --candidate FILES``: several runs per side, judged as ``inferperf ab`` judges."""
    if args.runs:
        raise UsageError("give the runs either as arguments or with --base/--candidate, not both")
    if not (args.base and args.candidate):
        raise UsageError("--base and --candidate go together")
    base, candidate = load_runs(args.base), load_runs(args.candidate)
    for line in base.skipped + candidate.skipped:
        print(line, file=sys.stderr)
    outputs = outputs_for(args, ("markdown", "json"), [*base.inputs, *candidate.inputs])
    both = judged(args, [*base.runs, *candidate.runs])
    base_runs, candidate_runs = both[: len(base.runs)], both[len(base.runs):]
    if args.paired:
        if len(base_runs) != len(candidate_runs):
            raise UsageError(f"--paired: {len(base_runs)} base runs and {len(candidate_runs)} candidate runs; pairs need equal counts")
        blocks = [(i, b, c) for i, (b, c) in enumerate(zip(base_runs, candidate_runs), start=1)]
        results = ab_verdicts.judge(blocks, thresholds, select=select, exclude_contended=args.exclude_contended)
    else:
        results = ab_verdicts.judge_groups(base_runs, candidate_runs, thresholds, select=select, exclude_contended=args.exclude_contended)
    if not any(r.estimate is not None for r in results):
        raise nothing_compared("no case has at least two runs on each side", args.k)
    test = "paired blocks, in the order given" if args.paired else "unpaired groups (label permutation test)"
    table = ab_verdicts.results_table(results)
    summary = ab_verdicts.verdict_summary(results, thresholds, test)
    sys.stdout.write(table.text() + "\n\n" + summary + "\n")
    return write_verdicts(args, outputs, "compare", summary, table, ab_verdicts.results_json(results, None, thresholds), results)
