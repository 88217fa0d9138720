"""The ``inferperf`` command line. Exit codes: 0 ok, 1 regression found (when gating), 2 bad input."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from inferperf.analysis.schema import RecordError, validate_inferperf_run

EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(Exception):
    """Bad input or usage: printed as one line, exit 2."""


def _write(destination: str, text: str) -> None:
    if destination == "-":
        sys.stdout.write(text)
        return
    path = Path(destination)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _compare(args: argparse.Namespace) -> int:
    from inferperf.analysis.compare import (
        calibrated_view,
        compare_runs,
        machine_differences,
        slower_cases,
        technique_view,
    )
    from inferperf.analysis.load import load_runs
    from inferperf.analysis.compare_report import (
        ComparisonReport,
        render_csv,
        render_html,
        render_json,
        render_markdown,
        render_text,
    )
    from inferperf.analysis.select import ExpressionError, compile_expression

    from inferperf.analysis.settings import Thresholds

    try:
        thresholds = Thresholds(min_change=args.min_change, alpha=args.alpha, confidence=args.confidence)
        select = compile_expression(args.k)
    except (ValueError, ExpressionError) as exc:
        raise UsageError(str(exc)) from None
    labels = [label.strip() for label in args.labels.split(",")] if args.labels else None
    loaded = load_runs(args.runs, labels)
    if len(loaded.runs) < 2:
        raise UsageError(f"compare needs at least two runs; found {len(loaded.runs)} in {', '.join(map(str, args.runs))}")
    comparisons = compare_runs(loaded.runs, thresholds, select)
    report = ComparisonReport(
        runs=loaded.runs,
        comparisons=comparisons,
        speedups=technique_view(loaded.runs, thresholds, select),
        calibrated=calibrated_view(loaded.runs, select),
        machine_diffs=machine_differences(loaded.runs),
        thresholds=thresholds,
        group_by=args.group_by,
        skipped_files=loaded.skipped,
    )
    for line in loaded.skipped:
        print(line, file=sys.stderr)
    outputs = {"markdown": render_markdown, "csv": render_csv, "json": render_json, "html": render_html}
    to_stdout = [name for name in outputs if getattr(args, name) == "-"]
    if len(to_stdout) > 1:
        raise UsageError(f"only one output can go to stdout ('-'), got --{' and --'.join(to_stdout)}")
    if not to_stdout:
        sys.stdout.write(render_text(report))
    for name, render in outputs.items():
        destination = getattr(args, name)
        if destination:
            _write(destination, render(report))
    if args.png:
        from inferperf.analysis.compare_report import write_pngs

        try:
            for path in write_pngs(report, args.png):
                print(f"wrote {path}", file=sys.stderr)
        except OSError as exc:
            raise UsageError(f"cannot write plots to {args.png}: {exc.strerror or exc}") from None
    if args.fail_on_regression and slower_cases(comparisons):
        return EXIT_REGRESSION
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    problems: list[str] = []
    for path in args.files:
        try:
            problems += validate_inferperf_run(path)
        except RecordError as exc:
            problems.append(str(exc))
    for line in problems:
        print(line, file=sys.stderr)
    if not problems:
        print(f"ok: {len(args.files)} run(s) carry every documented key")
    return EXIT_BAD_INPUT if problems else EXIT_OK


def _number_list(cast, minimum: float, example: str):
    """An argparse type: comma-separated numbers, each at least ``minimum``."""

    def parse(text: str) -> list:
        try:
            values = [cast(v) for v in text.split(",") if v.strip()]
        except ValueError:
            values = []
        if not values or min(values) < minimum:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers >= {minimum} such as {example}, got {text!r}")
        return values

    return parse


def _detection_power(args: argparse.Namespace) -> int:
    from inferperf.analysis.detection import numpy_workload, render_report, run_trials

    trials = run_trials(
        numpy_workload(),
        rounds_options=args.rounds,
        slowdowns=args.slowdowns,
        trials=args.trials,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    text = render_report(trials, min_change=args.min_change, alpha=args.alpha)
    sys.stdout.write(text)
    if args.markdown:
        _write(args.markdown, text)
    return EXIT_OK


def _history(args: argparse.Namespace) -> int:
    from inferperf.analysis.history import (
        build_series,
        machine_runs,
        newest_step_regressions,
        summary_markdown,
        summary_text,
        write_reports,
    )
    from inferperf.analysis.select import ExpressionError, compile_expression

    try:
        select = compile_expression(args.k)
    except ExpressionError as exc:
        raise UsageError(str(exc)) from None
    from inferperf.analysis.settings import HistorySettings

    try:
        settings = HistorySettings(min_change=args.min_change, penalty=args.penalty, confidence=args.confidence)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    per_machine, skipped = machine_runs(args.results)
    for line in skipped:
        print(line, file=sys.stderr)
    all_series = [s for machine, runs in sorted(per_machine.items()) for s in build_series(machine, runs, settings, select)]
    if not all_series:
        raise UsageError(f"no cases in {args.results} match -k {args.k!r}")
    sys.stdout.write(summary_text(all_series))
    if args.markdown:
        _write(args.markdown, summary_markdown(all_series, settings))
    if args.output:
        written = write_reports(all_series, args.output, settings, plots=not args.no_plots)
        print(f"wrote {len(written)} files under {args.output}", file=sys.stderr)
    if args.fail_on_regression:
        found = newest_step_regressions(all_series, args.min_change)
        for series in found:
            step = series.newest_step
            assert step is not None
            before, after = series.commit_range(step)
            print(f"regression: {series.machine} {series.case_id} {step.change:+.1%} between {before} and {after}", file=sys.stderr)
        return EXIT_REGRESSION if found else EXIT_OK
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from inferperf.analysis.load import load_run
    from inferperf.analysis.select import ExpressionError, compile_expression
    from inferperf.analysis.run_report import skipped_table, technique_tables

    try:
        select = compile_expression(args.k)
    except ExpressionError as exc:
        raise UsageError(str(exc)) from None
    run = load_run(args.run)
    tables = technique_tables(run, select)
    skipped = skipped_table([run], select)
    if skipped is not None:
        tables.append(skipped)
    if not tables:
        raise UsageError(f"{args.run}: no cases match -k {args.k!r}")
    text = "\n\n".join(t.markdown() if args.markdown else t.text() for t in tables) + "\n"
    sys.stdout.write(text)
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from inferperf.analysis.export import export_run
    from inferperf.analysis.load import load_run

    text = export_run(load_run(args.run), args.format)
    _write(args.output or "-", text)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inferperf", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check that saved runs carry every documented key")
    validate.add_argument("files", nargs="+", type=Path, help="pytest-benchmark JSON files")
    validate.set_defaults(handler=_validate)

    from inferperf.analysis.settings import DEFAULT_ALPHA, DEFAULT_MIN_CHANGE, DEFAULT_PENALTY
    from inferperf.analysis.compare_report import GROUP_FIELDS

    compare = commands.add_parser(
        "compare",
        help="compare runs case by case (the first run is the base), across machines or nights",
        description="Compare pytest-benchmark runs: the first is the base, each other run a contender.",
    )
    compare.add_argument("runs", nargs="+", type=Path, help="JSON files or storage folders (searched for *.json)")
    compare.add_argument(
        "--min-change", type=float, default=DEFAULT_MIN_CHANGE,
        help=f"minimum relative change for a verdict of faster/slower (default {DEFAULT_MIN_CHANGE})",
    )
    compare.add_argument(
        "--alpha", type=float, default=DEFAULT_ALPHA, help=f"significance level (default {DEFAULT_ALPHA})"
    )
    compare.add_argument("--confidence", type=float, default=0.95, help="confidence intervals' coverage (default 0.95)")
    compare.add_argument("-k", metavar="EXPR", help="select cases by id: 'cuda and not int8' (as pytest -k)")
    compare.add_argument("--group-by", choices=GROUP_FIELDS, help="one table per technique, model or device")
    compare.add_argument("--labels", help="comma-separated names for the runs, in order (default: folder/file stem)")
    compare.add_argument("--markdown", metavar="PATH", help="write Markdown (for PR comments); '-' for stdout")
    compare.add_argument("--csv", metavar="PATH", help="write one CSV row per case comparison; '-' for stdout")
    compare.add_argument("--json", metavar="PATH", help="write JSON (for bots); '-' for stdout")
    compare.add_argument("--html", metavar="PATH", help="write an HTML report with plots; '-' for stdout")
    compare.add_argument("--png", metavar="DIR", type=Path, help="write the report's plots as ratios.png and speedups.png")
    compare.add_argument(
        "--fail-on-regression", action="store_true",
        help="exit 1 when any case is significantly slower by at least --min-change",
    )
    compare.set_defaults(handler=_compare)

    power = commands.add_parser(
        "detection-power",
        help="measure how often compare detects injected slowdowns, and its false alarms, on this machine",
    )
    power.add_argument("--trials", type=int, default=100, help="trials per cell (default 100)")
    power.add_argument("--rounds", type=_number_list(int, 2, "5,10,20"), default=[5, 10, 20, 30], help="rounds per run to try (default 5,10,20,30)")
    power.add_argument(
        "--slowdowns", type=_number_list(float, 0, "0,0.05"), default=[0.0, 0.01, 0.02, 0.05, 0.10],
        help="injected slowdowns; 0 is the A/A condition (default 0,0.01,0.02,0.05,0.1)",
    )
    power.add_argument("--min-change", type=float, default=DEFAULT_MIN_CHANGE, help="as for compare")
    power.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="as for compare")
    power.add_argument("--markdown", metavar="PATH", help="also write the table to PATH")
    power.set_defaults(handler=_detection_power)

    history = commands.add_parser(
        "history",
        help="series over time per machine and case, with detected steps (change points)",
        description="Nightly history from a results store: results/<machine-id>/.../*.json",
    )
    history.add_argument("results", nargs="?", type=Path, default=Path("results"), help="results folder (default results/)")
    history.add_argument("-k", metavar="EXPR", help="select cases by id, as pytest -k")
    history.add_argument("--min-change", type=float, default=DEFAULT_MIN_CHANGE, help="smallest step reported (default 0.03)")
    history.add_argument("--penalty", type=float, default=DEFAULT_PENALTY, help=f"PELT penalty per change, times log(n) (default {DEFAULT_PENALTY})")
    history.add_argument("--confidence", type=float, default=0.99, help="smallest confidence of a reported step (default 0.99)")
    history.add_argument("--output", type=Path, help="write summary.md, an HTML page per machine and trend PNGs here")
    history.add_argument("--no-plots", action="store_true", help="with --output: skip the PNGs")
    history.add_argument("--markdown", metavar="PATH", help="write the Markdown summary (for an issue or chat); '-' for stdout")
    history.add_argument(
        "--fail-on-regression", action="store_true",
        help="exit 1 when a series' newest step is a slowdown of at least --min-change",
    )
    history.set_defaults(handler=_history)

    report = commands.add_parser("report", help="one run as a table per technique (throughput, speedups, sizes, agreement)")
    report.add_argument("run", type=Path, help="a pytest-benchmark JSON file")
    report.add_argument("-k", metavar="EXPR", help="select cases by id, as pytest -k")
    report.add_argument("--markdown", action="store_true", help="Markdown tables instead of plain text")
    report.set_defaults(handler=_report)

    from inferperf.analysis.export import FORMATS

    export = commands.add_parser("export", help="convert a run for github-action-benchmark or Bencher")
    export.add_argument("run", type=Path, help="a pytest-benchmark JSON file")
    export.add_argument(
        "--format", choices=FORMATS, required=True,
        help="github-smaller: latency per item (customSmallerIsBetter); github-bigger: items/s "
        "(customBiggerIsBetter); bencher: Bencher Metric Format (latency ns, throughput)",
    )
    export.add_argument("-o", "--output", help="output file (default stdout)")
    export.set_defaults(handler=_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    try:
        return int(args.handler(args))
    except (RecordError, UsageError) as exc:
        print(f"inferperf {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
