"""The ``inferperf`` command line.

Exit codes, one meaning each: 0 ok, 1 regression found (only with ``--fail-on-regression``),
2 bad input or usage (one line naming the file, field or option), 3 internal error (one line;
the traceback with ``--debug``).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, NoReturn, Sequence

from inferperf import __version__
from inferperf.analysis.schema import RecordError
from inferperf.analysis.settings import (
    DEFAULT_ALPHA,
    DEFAULT_CONFIDENCE,
    DEFAULT_MIN_CHANGE,
    DEFAULT_PENALTY,
    DEFAULT_STEP_CONFIDENCE,
    SettingError,
    check_min_change,
    check_probability,
    check_range,
)

if TYPE_CHECKING:
    from inferperf.ab import CaseResult
    from inferperf.analysis.output import Outputs
    from inferperf.analysis.tables import Table

EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class UsageError(Exception):
    """Bad input or usage: printed as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _checked(check: Callable[[float], float], cast: Callable[[str], Any] = float) -> Callable[[str], Any]:
    """An argparse type that converts with ``cast`` and range-checks with ``check``."""

    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        try:
            return check(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None

    return parse


MIN_CHANGE = _checked(check_min_change)
PROBABILITY = _checked(lambda v: check_probability("value", v))
POSITIVE = _checked(lambda v: check_range("value", v, low=0, low_inclusive=False, expected="a finite number > 0"))


def _count(minimum: int) -> Callable[[str], int]:
    return _checked(lambda v: int(check_range("value", v, low=minimum, expected=f"an integer >= {minimum}")), int)


def _number_list(cast: Callable[[str], float], minimum: float, example: str) -> Callable[[str], list[Any]]:
    """An argparse type: comma-separated finite numbers, each at least ``minimum``."""

    def parse(text: str) -> list[Any]:
        try:
            values = [check_range("value", cast(v), low=minimum) for v in text.split(",") if v.strip()]
        except ValueError:
            values = []
        if not values:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers >= {minimum} such as {example}, got {text!r}")
        return values

    return parse


def _nothing_compared(why: str, k: str | None) -> UsageError:
    """Exit 2 for a comparison that compared nothing, naming the -k filter that may be the cause."""
    return UsageError(f"nothing was compared: {why}" + (f" among those matching -k {k!r}" if k else ""))


def _seed(given: int | None) -> int:
    """The seed the user gave, or a fresh random one (recorded by the caller, so a run can be repeated)."""
    return given if given is not None else int.from_bytes(os.urandom(4), "little")


def _select(expression: str | None) -> Callable[[str], bool]:
    from inferperf.analysis.select import ExpressionError, compile_expression

    try:
        return compile_expression(expression)
    except ExpressionError as exc:
        raise UsageError(str(exc)) from None


def _outputs_for(args: argparse.Namespace, options: Iterable[str], inputs: Iterable[Path] = ()) -> Outputs:
    """The command's writer, protecting ``inputs``, with every file named by ``options`` checked
    before any work is done: a bad destination costs one line, not a finished computation."""
    from inferperf.analysis.output import Outputs

    outputs = Outputs(inputs)
    for option in options:
        destination = getattr(args, option)
        if destination not in (None, "-"):
            outputs.check(Path(destination), f"--{option}")
    return outputs


def _write(outputs: Outputs, destination: str, text: str, option: str) -> None:
    if destination == "-":
        sys.stdout.write(text)
        return
    outputs.write_text(Path(destination), text, option)


# --------------------------------------------------------------------------------------------
# Commands


def _compare(args: argparse.Namespace) -> int:
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
    from inferperf.analysis.load import load_runs
    from inferperf.analysis.settings import Thresholds

    thresholds = Thresholds(min_change=args.min_change, alpha=args.alpha, confidence=args.confidence)
    select = _select(args.k)
    if args.base or args.candidate:
        return _compare_groups(args, thresholds, select)
    if args.paired:
        raise UsageError("--paired needs --base and --candidate")
    if not args.runs:
        raise UsageError("give the runs to compare, or --base FILES --candidate FILES")
    labels = [label.strip() for label in args.labels.split(",")] if args.labels else None
    loaded = load_runs(args.runs, labels)
    if len(loaded.runs) < 2:
        found = ", ".join(map(str, args.runs))
        raise UsageError(f"compare needs at least two runs; found {len(loaded.runs)} in {found}")
    if not any(select(c) for run in loaded.runs for c in run.benchmarks):
        raise UsageError(f"no case in the runs matches -k {args.k!r}")
    comparisons = compare_runs(loaded.runs, thresholds, select, exclude_contended=args.exclude_contended)
    if args.fail_on_regression:
        # a gate that compared nothing must not pass: a typo in -k, an empty or foreign contender
        for contender in loaded.runs[1:]:
            if not any(c.estimate is not None for c in comparisons if c.contender_label == contender.label):
                raise _nothing_compared(f"{contender.label} has no case in common with {loaded.runs[0].label}", args.k)
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
    renderers = {"markdown": render_markdown, "csv": render_csv, "json": render_json, "html": render_html}
    to_stdout = [name for name in renderers if getattr(args, name) == "-"]
    if len(to_stdout) > 1:
        raise UsageError(f"only one output can go to stdout ('-'), got --{' and --'.join(to_stdout)}")
    outputs = _outputs_for(args, renderers, loaded.inputs)
    if not to_stdout:
        sys.stdout.write(render_text(report))
        print(f"note: {ONE_RUN_PER_SIDE}", file=sys.stderr)
    for name, render in renderers.items():
        destination = getattr(args, name)
        if destination:
            _write(outputs, destination, render(report), f"--{name}")
    if args.png:
        for path in write_pngs(report, args.png, outputs):
            print(f"wrote {path}", file=sys.stderr)
    if args.fail_on_regression and slower_cases(comparisons):
        return EXIT_REGRESSION
    return EXIT_OK


def _compare_groups(args: argparse.Namespace, thresholds: Any, select: Callable[[str], bool]) -> int:
    """``compare --base FILES --candidate FILES``: several runs per side, judged as ``inferperf ab`` judges."""
    from inferperf import ab
    from inferperf.analysis.load import load_runs

    if args.runs:
        raise UsageError("give the runs either as arguments or with --base/--candidate, not both")
    if not (args.base and args.candidate):
        raise UsageError("--base and --candidate go together")
    base, candidate = load_runs(args.base), load_runs(args.candidate)
    for line in base.skipped + candidate.skipped:
        print(line, file=sys.stderr)
    outputs = _outputs_for(args, ("markdown", "json"), [*base.inputs, *candidate.inputs])
    if args.paired:
        if len(base.runs) != len(candidate.runs):
            raise UsageError(f"--paired: {len(base.runs)} base runs and {len(candidate.runs)} candidate runs; pairs need equal counts")
        blocks = [(i, b, c) for i, (b, c) in enumerate(zip(base.runs, candidate.runs), start=1)]
        results = ab.judge(blocks, thresholds, select=select, exclude_contended=args.exclude_contended)
    else:
        results = ab.judge_groups(base.runs, candidate.runs, thresholds, select=select, exclude_contended=args.exclude_contended)
    if not any(r.estimate is not None for r in results):
        raise _nothing_compared("no case has at least two runs on each side", args.k)
    test = "paired blocks, in the order given" if args.paired else "unpaired groups (label permutation test)"
    table = ab.results_table(results)
    summary = ab.verdict_summary(results, thresholds, test)
    sys.stdout.write(table.text() + "\n\n" + summary + "\n")
    return _write_verdicts(args, outputs, "compare", summary, table, ab.results_json(results, None, thresholds), results)


def _write_verdicts(
    args: argparse.Namespace, outputs: Outputs, command: str, summary: str, table: Table, payload: str,
    results: Sequence[CaseResult],
) -> int:
    """The ``--markdown``/``--json`` files of many-runs verdicts (``ab``, ``compare --base/--candidate``), then the gate."""
    if args.markdown:
        _write(outputs, args.markdown, f"### inferperf {command}\n\n{summary}\n\n{table.markdown()}\n", "--markdown")
    if args.json:
        _write(outputs, args.json, payload, "--json")
    if args.fail_on_regression and any(r.verdict == "slower" for r in results):
        return EXIT_REGRESSION
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from inferperf.analysis.validate import validate_run

    problems: list[str] = []
    for path in args.files:
        problems += validate_run(path)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        bad = len({line.split(": ", 1)[0] for line in problems})
        print(f"{len(problems)} problem(s) in {bad} of {len(args.files)} file(s)", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"ok: {len(args.files)} run(s) carry every documented key")
    return EXIT_OK


def _detection_power(args: argparse.Namespace) -> int:

    outputs = _outputs_for(args, ("markdown",))
    text = _power_of_ab_design(args) if args.ab else _power_of_one_run_per_side(args)
    sys.stdout.write(text)
    if args.markdown:
        _write(outputs, args.markdown, text, "--markdown")
    return EXIT_OK


def _power_of_one_run_per_side(args: argparse.Namespace) -> str:
    """compare's statistics on one run per side of a numpy workload, unchanged and slowed down."""
    from inferperf.analysis.detection import numpy_workload, render_report, run_trials

    trials = run_trials(
        numpy_workload(),
        rounds_options=args.rounds,
        slowdowns=args.slowdowns,
        trials=args.trials,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    return render_report(trials, min_change=args.min_change, alpha=args.alpha)


def _power_of_ab_design(args: argparse.Namespace) -> str:
    """``--ab``: the interleaved-blocks design itself, with real fresh pytest processes."""
    from inferperf import ab
    from inferperf.analysis.settings import Thresholds

    thresholds = Thresholds(min_change=args.min_change, alpha=args.alpha)
    slowdowns = [s for s in args.slowdowns if s > 0] if args.slowdowns else []
    slowdown = slowdowns[0] if slowdowns else 0.05
    seed = _seed(args.seed)
    rows, folder, process_s = ab.power_experiment(
        args.pool, slowdown, [int(b) for b in args.blocks], args.trials, thresholds, args.store, seed,
        progress=lambda line: print(f"inferperf detection-power: {line}", file=sys.stderr, flush=True),
    )
    text = ab.power_table(rows, slowdown, thresholds, process_s)
    return text + f"\n(trials are random subsets of {args.pool} A/A and {args.pool} A/B blocks kept in {folder}; seed {seed})\n"


def _history_points(args: argparse.Namespace) -> tuple[dict, list[str], str | None]:
    """Each machine's runs reduced to their points: from the store's index (brought up to date), or
    from the JSON files themselves with ``--no-index`` or where no index can be written; and the
    line that says what the index did (printed once the command has succeeded)."""
    from inferperf.analysis.history import machine_points
    from inferperf.analysis.history_index import default_index_path, indexed_points
    from inferperf.analysis.load import shown

    if args.no_index:
        return (*machine_points(args.results, args.machine), None)
    index = args.index or default_index_path(args.results)
    try:
        per_machine, skipped, update = indexed_points(args.results, index, args.machine)
    except (OSError, sqlite3.Error) as exc:
        note = f"inferperf history: no index ({shown(index)}: {exc}); read every run"
        return (*machine_points(args.results, args.machine), note)
    rebuilt = "rebuilt, " if update.rebuilt else ""
    note = (
        f"inferperf history: index {shown(index)} ({rebuilt}{update.read} run files read, {update.reused} reused, "
        f"{update.dropped} dropped)"
    )
    return per_machine, skipped, note


def _history(args: argparse.Namespace) -> int:
    from inferperf.analysis.history import build_series, newest_step_regressions, summary_markdown, summary_text
    from inferperf.analysis.history_site import write_site
    from inferperf.analysis.load import json_files, shown
    from inferperf.analysis.settings import HistorySettings

    select = _select(args.k)
    settings = HistorySettings(min_change=args.min_change, penalty=args.penalty, confidence=args.confidence)
    if args.index is not None and args.no_index:
        raise UsageError("--index and --no-index: give one")
    # an index that is not a database is rebuilt, i.e. replaced: never let it be a run of the store
    if args.index is not None and (args.index.suffix == ".json" or args.results.resolve() in args.index.resolve().parents):
        raise UsageError(f"--index {shown(args.index)}: inside the results folder or a .json file; an index is rebuilt over whatever is there")
    if not args.results.is_dir():
        raise RecordError(f"{shown(args.results)}: not a results folder")
    # outputs are checked before any work (an index update included)
    outputs = _outputs_for(args, ("markdown",), json_files(args.results))
    if args.output is not None:
        outputs.check_folder(args.output, "--output")
    per_machine, skipped, index_note = _history_points(args)
    for line in skipped:
        print(line, file=sys.stderr)
    all_series = [
        s for machine, runs in sorted(per_machine.items()) for s in build_series(machine, runs, settings, select, args.exclude_contended)
    ]
    if not all_series:
        raise UsageError(f"no cases in {shown(args.results)} match -k {args.k!r}")
    sys.stdout.write(summary_text(all_series))
    if args.markdown:
        _write(outputs, args.markdown, summary_markdown(all_series, settings), "--markdown")
    if args.output:
        written = write_site(all_series, args.output, settings, plots=not args.no_plots, outputs=outputs)
        print(f"wrote {len(written)} files under {shown(args.output)}", file=sys.stderr)
    if index_note:
        print(index_note, file=sys.stderr)
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
    from inferperf.analysis.load import load_run, shown
    from inferperf.analysis.run_report import skipped_table, technique_tables

    select = _select(args.k)
    run = load_run(args.run)
    tables = technique_tables(run, select)
    skipped = skipped_table([run], select)
    if skipped is not None:
        tables.append(skipped)
    if not tables:
        raise UsageError(f"{shown(args.run)}: " + (f"no cases match -k {args.k!r}" if args.k else "holds no benchmarks"))
    text = "\n\n".join(t.markdown() if args.markdown else t.text() for t in tables) + "\n"
    sys.stdout.write(text)
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from inferperf.analysis.export import export_run
    from inferperf.analysis.load import load_run

    outputs = _outputs_for(args, ("output",), [args.run])
    text = export_run(load_run(args.run), args.format)
    _write(outputs, args.output or "-", text, "--output")
    return EXIT_OK


def _recover(args: argparse.Namespace) -> int:
    from inferperf.analysis.load import shown
    from inferperf.journal import recover

    outputs = _outputs_for(args, ("output",), [args.journal])
    recovered = recover(args.journal)
    for line in recovered.notes:
        print(line, file=sys.stderr)
    outputs.write_text(args.output, recovered.json_text(), "--output")
    print(f"wrote {shown(args.output)}: {recovered.summary()}", file=sys.stderr)
    return EXIT_OK


def _ab(args: argparse.Namespace) -> int:
    import tempfile

    from inferperf import ab
    from inferperf.analysis.load import shown
    from inferperf.analysis.settings import Thresholds

    thresholds = Thresholds(min_change=args.min_change, alpha=args.alpha, confidence=args.confidence)
    select = _select(args.k)
    pytest_args = list(args.pytest_args)
    if pytest_args[:1] == ["--"]:
        pytest_args = pytest_args[1:]
    outputs = _outputs_for(args, ("markdown", "json"))
    design = None
    if args.analyse is not None:
        folder = args.analyse
        if not (folder / "base").is_dir() or not (folder / "candidate").is_dir():
            raise UsageError(f"--analyse {shown(folder)}: not an inferperf ab folder (no base/ and candidate/)")
    else:
        if not args.base:
            raise UsageError("--base is required (or --analyse DIR)")
        if not args.aa and not args.candidate:
            raise UsageError("--candidate is required (or --aa: the base side against itself)")
        if args.until_decided and args.max_blocks is None:
            raise UsageError("--until-decided needs --max-blocks")
        blocks = args.max_blocks if args.until_decided else args.blocks
        repo = Path.cwd()
        seed = _seed(args.seed)
        with tempfile.TemporaryDirectory(prefix="inferperf-ab-") as scratch:
            sides: dict[ab.SideName, ab.Side] = {}
            try:
                for name in ab.SIDES:
                    spec = args.base if (name == "base" or args.aa) else args.candidate
                    own = "base" if args.aa else name
                    sides[name] = ab.resolve_side(
                        name, spec, python=getattr(args, f"{own}_python"),
                        env=ab.parse_env(getattr(args, f"{own}_env") or [], f"--{own}-env"),
                        args=getattr(args, f"{own}_args"), repo=repo, scratch=Path(scratch),
                    )
                folder = ab.new_run_folder(args.store)
                design = ab.Design(
                    started=folder.name, seed=seed, blocks_planned=blocks, pytest_args=pytest_args, aa=args.aa,
                    sides={n: {"spec": s.spec, "directory": str(s.directory), "commit": s.commit, "python": s.python,
                               "env": dict(s.env), "args": list(s.args)} for n, s in sides.items()},
                )
                design.save(folder)
                print(f"inferperf ab: {blocks} blocks, seed {seed}, runs kept in {shown(folder)}", file=sys.stderr)
                looks = ab.look_schedule(blocks) if args.until_decided else []
                decided = ab.decide_early(folder, thresholds, looks, select, args.exclude_contended) if args.until_decided else None
                ab.run_blocks(
                    sides, pytest_args, folder, design, blocks=blocks, decided=decided, looks=looks,
                    progress=lambda line: print(f"inferperf ab: {line}", file=sys.stderr, flush=True),
                )
            finally:
                for side in sides.values():
                    ab.remove_side(side, repo)
    blocks_run, skipped = ab.load_blocks(folder)
    for line in skipped:
        print(f"inferperf ab: {line}", file=sys.stderr)
    if len(blocks_run) < 2:
        raise UsageError(f"{shown(folder)}: fewer than 2 complete blocks to compare (see the runs' .log files)")
    noise = {} if args.aa else ab.load_noise_profile(args.store, blocks_run[0][1])
    results = ab.judge(blocks_run, thresholds, select=select, exclude_contended=args.exclude_contended, noise=noise)
    if not results:
        raise _nothing_compared("no case ran on both sides", args.k)
    table = ab.results_table(results)
    summary = ab.verdict_summary(results, thresholds)
    sys.stdout.write(table.text() + "\n\n" + summary + "\n")
    needed = [r.needed_blocks for r in results if r.needed_blocks]
    if needed and len(blocks_run) < max(needed):
        print(
            f"inferperf ab: warning: {len(blocks_run)} blocks are too few for this machine: its A/A noise needs about "
            f"{max(needed)} blocks to detect {thresholds.min_change:.0%} at 95% power (--blocks {max(needed)})",
            file=sys.stderr,
        )
    if args.aa:
        from inferperf.analysis.abstats import blocks_needed

        path = ab.save_noise_profile(args.store, blocks_run, results, pytest_args)
        for r in results:
            if r.estimate is not None:
                n = blocks_needed(r.estimate.sigma, min_change=thresholds.min_change, alpha=thresholds.alpha)
                print(f"inferperf ab: {r.case_id}: block-to-block sigma {r.estimate.sigma:.4f}; about {n} blocks detect {thresholds.min_change:.0%} at 95% power", file=sys.stderr)
        print(f"inferperf ab: noise profile saved to {shown(path)}", file=sys.stderr)
    return _write_verdicts(args, outputs, "ab", summary, table, ab.results_json(results, design, thresholds), results)


# --------------------------------------------------------------------------------------------
# The parser


def _debug_flag(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("--debug", action="store_true", default=default, help="show the traceback of an internal error")


def _verdict_options(parser: argparse.ArgumentParser, *, confidence: bool = True) -> None:
    """--min-change, --alpha (and --confidence): what compare, ab and detection-power call a change."""
    parser.add_argument(
        "--min-change", type=MIN_CHANGE, default=DEFAULT_MIN_CHANGE,
        help=f"minimum relative change for a verdict of faster/slower (default {DEFAULT_MIN_CHANGE})",
    )
    parser.add_argument("--alpha", type=PROBABILITY, default=DEFAULT_ALPHA, help=f"significance level (default {DEFAULT_ALPHA})")
    if confidence:
        parser.add_argument(
            "--confidence", type=PROBABILITY, default=DEFAULT_CONFIDENCE,
            help=f"confidence intervals' coverage (default {DEFAULT_CONFIDENCE})",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="inferperf", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"inferperf {__version__}")
    _debug_flag(parser, False)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=description)
        _debug_flag(sub, argparse.SUPPRESS)  # accepted after the command too, without resetting it
        return sub

    validate = command(
        "validate", "check that saved runs are complete inferperf records",
        "Check runs as every command reads them, then that they carry every documented key. Lists every "
        "problem of every file; exit 2 if there is any.",
    )
    validate.add_argument("files", nargs="+", type=Path, help="pytest-benchmark JSON files")
    validate.set_defaults(handler=_validate)

    from inferperf.analysis.compare_report import GROUP_FIELDS

    compare = command(
        "compare", "compare runs case by case (the first run is the base), across machines or nights",
        "Compare pytest-benchmark runs: the first is the base, each other run a contender.",
    )
    compare.add_argument("runs", nargs="*", type=Path, help="JSON files or storage folders (searched for *.json)")
    compare.add_argument("--base", nargs="+", type=Path, metavar="RUN", help="several runs of the base side (files or folders)")
    compare.add_argument("--candidate", nargs="+", type=Path, metavar="RUN", help="several runs of the candidate side")
    compare.add_argument("--paired", action="store_true", help="with --base/--candidate: the i-th runs of each side were interleaved (a block)")
    compare.add_argument("--metric", metavar="KEY", help="judge this per-round metric of the record (round_metrics: ttft_p99_s, output_tokens_per_s, …) instead of the round time")
    compare.add_argument("--exclude-contended", action="store_true", help="leave out cases that ran under contention")
    _verdict_options(compare)
    compare.add_argument("-k", metavar="EXPR", help="select cases by id: 'cuda and not int8' (as pytest -k)")
    compare.add_argument("--group-by", choices=GROUP_FIELDS, help="one table per technique, model or device")
    compare.add_argument("--labels", help="comma-separated names for the runs, in order (default: number, commit, date)")
    compare.add_argument("--markdown", metavar="PATH", help="write Markdown (for PR comments); '-' for stdout")
    compare.add_argument("--csv", metavar="PATH", help="write one CSV row per case comparison; '-' for stdout")
    compare.add_argument("--json", metavar="PATH", help="write JSON (for bots); '-' for stdout")
    compare.add_argument("--html", metavar="PATH", help="write an HTML report with plots; '-' for stdout")
    compare.add_argument("--png", metavar="DIR", type=Path, help="write the report's plots as PNG files in DIR")
    compare.add_argument(
        "--fail-on-regression", action="store_true",
        help="exit 1 when any case is significantly slower by at least --min-change (exit 2 if nothing was compared)",
    )
    compare.set_defaults(handler=_compare)

    power = command(
        "detection-power", "measure how often compare detects injected slowdowns, and its false alarms, on this machine",
        "Run a numpy workload unchanged (A/A) and with injected slowdowns, as two separate runs would, and report "
        "detection and false-alarm rates under compare's statistics, and this machine's noise floor.",
    )
    power.add_argument("--trials", type=_count(1), default=100, help="trials per cell (default 100)")
    power.add_argument("--rounds", type=_number_list(int, 2, "5,10,20"), default=[5, 10, 20, 30], help="rounds per run to try (default 5,10,20,30)")
    power.add_argument(
        "--slowdowns", type=_number_list(float, 0, "0,0.05"), default=[0.0, 0.01, 0.02, 0.05, 0.10],
        help="injected slowdowns; 0 is the A/A condition (default 0,0.01,0.02,0.05,0.1)",
    )
    _verdict_options(power, confidence=False)
    power.add_argument("--markdown", metavar="PATH", help="also write the table to PATH")
    power.add_argument(
        "--ab", action="store_true",
        help="measure the inferperf ab design itself: real fresh pytest processes in interleaved blocks",
    )
    power.add_argument("--pool", type=_count(4), default=200, help="with --ab: A/A blocks and A/B blocks to run (default 200 each)")
    power.add_argument("--blocks", type=_number_list(int, 2, "10,20,40"), default=[10, 20, 30, 40], help="with --ab: blocks per verdict to try (default 10,20,30,40)")
    power.add_argument("--store", type=Path, default=Path(".ab"), help="with --ab: where the runs are kept (default .ab/)")
    power.add_argument("--seed", type=int, help="with --ab: seed of the block orders and trial subsets")
    power.set_defaults(handler=_detection_power)

    history = command(
        "history", "series over time per machine and case, with detected steps (change points)",
        "Nightly history from a results store: results/<machine-id>/.../*.json",
    )
    history.add_argument("results", nargs="?", type=Path, default=Path("results"), help="results folder (default results/)")
    history.add_argument("-k", metavar="EXPR", help="select cases by id, as pytest -k")
    history.add_argument("--machine", metavar="NAME", help="only this machine folder of the store (default: every machine)")
    history.add_argument("--min-change", type=MIN_CHANGE, default=DEFAULT_MIN_CHANGE, help=f"smallest step reported (default {DEFAULT_MIN_CHANGE})")
    history.add_argument("--penalty", type=POSITIVE, default=DEFAULT_PENALTY, help=f"PELT penalty per change, times log(n) (default {DEFAULT_PENALTY})")
    history.add_argument(
        "--confidence", type=PROBABILITY, default=DEFAULT_STEP_CONFIDENCE,
        help=f"smallest confidence of a reported step (default {DEFAULT_STEP_CONFIDENCE})",
    )
    history.add_argument(
        "--output", type=Path, help="write the site here: index.html, a page and a Markdown summary per machine, trend PNGs"
    )
    history.add_argument("--no-plots", action="store_true", help="with --output: skip the PNGs")
    history.add_argument("--metric", metavar="KEY", help="judge this per-round metric of the record (round_metrics: ttft_p99_s, output_tokens_per_s, …) instead of the round time")
    history.add_argument("--exclude-contended", action="store_true", help="leave out runs of a case that ran under contention")
    history.add_argument("--markdown", metavar="PATH", help="write the Markdown summary (for an issue or chat); '-' for stdout")
    history.add_argument(
        "--fail-on-regression", action="store_true",
        help="exit 1 when a series' newest step is a slowdown of at least --min-change",
    )
    history.add_argument(
        "--index", type=Path, metavar="PATH",
        help="the store's index (SQLite, rebuilt from the JSON files whenever missing or stale; default: "
        "$XDG_CACHE_HOME/inferperf/history/<hash of the store's path>.sqlite)",
    )
    history.add_argument("--no-index", action="store_true", help="read every run file, keep no index")
    history.set_defaults(handler=_history)

    report = command(
        "report", "one run as a table per technique (throughput, speedups, sizes, agreement)",
        "Show one run as the documentation's tables: per technique, each case's throughput, latency, speedup over its "
        "baseline, roofline fraction, sizes, set-up time and details; then the skipped cases.",
    )
    report.add_argument("run", type=Path, help="a pytest-benchmark JSON file")
    report.add_argument("-k", metavar="EXPR", help="select cases by id, as pytest -k")
    report.add_argument("--markdown", action="store_true", help="Markdown tables instead of plain text")
    report.set_defaults(handler=_report)

    from inferperf.analysis.export import FORMATS

    export = command(
        "export", "convert a run for github-action-benchmark or Bencher",
        "Convert a run into github-action-benchmark's custom formats or the Bencher Metric Format.",
    )
    export.add_argument("run", type=Path, help="a pytest-benchmark JSON file")
    export.add_argument(
        "--format", choices=FORMATS, required=True,
        help="github-smaller: latency per item (customSmallerIsBetter); github-bigger: items/s "
        "(customBiggerIsBetter); bencher: Bencher Metric Format (latency ns, throughput)",
    )
    export.add_argument("-o", "--output", help="output file (default stdout)")
    export.set_defaults(handler=_export)

    ab_parser = command(
        "ab", "interleaved A/B runs in fresh processes: did this change make it slower, on a noisy machine?",
        "Run both sides once per block, in fresh pytest processes, in a seeded random order; keep every run; judge "
        "each case by its per-block log ratios (paired sign-flip test, two-level bootstrap interval). SIDE is a "
        "directory (a checkout) or a git ref of the current repository (checked out into a temporary worktree). "
        "Arguments after -- go to pytest on both sides.",
    )
    ab_parser.add_argument("--base", metavar="SIDE", help="the side the candidate is judged against")
    ab_parser.add_argument("--candidate", metavar="SIDE", help="the side under test")
    ab_parser.add_argument("--blocks", type=_count(2), default=10, help="blocks to run (default 10)")
    ab_parser.add_argument("--store", type=Path, default=Path(".ab"), help="where runs and noise profiles are kept (default .ab/)")
    _verdict_options(ab_parser)
    ab_parser.add_argument("--seed", type=int, help="seed of the block order (default: random, recorded in ab.json)")
    ab_parser.add_argument("--aa", action="store_true", help="run the base side against itself and store this machine's noise profile")
    ab_parser.add_argument("--until-decided", action="store_true", help="stop early once every case is decided (needs --max-blocks)")
    ab_parser.add_argument("--max-blocks", type=_count(5), help="with --until-decided: the most blocks to run")
    ab_parser.add_argument("--metric", metavar="KEY", help="judge this per-round metric of the record (round_metrics: ttft_p99_s, output_tokens_per_s, …) instead of the round time")
    ab_parser.add_argument("--exclude-contended", action="store_true", help="leave out blocks where either side's case was contended")
    ab_parser.add_argument("-k", metavar="EXPR", help="judge only the cases matching EXPR (as pytest -k)")
    ab_parser.add_argument("--analyse", type=Path, metavar="DIR", help="judge a stored experiment again instead of running one")
    ab_parser.add_argument("--markdown", metavar="PATH", help="write the verdicts as Markdown ('-' for stdout)")
    ab_parser.add_argument("--json", metavar="PATH", help="write the verdicts and the design as JSON ('-' for stdout)")
    ab_parser.add_argument("--fail-on-regression", action="store_true", help="exit 1 when any case is slower")
    for name in ("base", "candidate"):
        ab_parser.add_argument(f"--{name}-python", metavar="PATH", help=f"interpreter for the {name} side (default: this one)")
        ab_parser.add_argument(f"--{name}-env", action="append", metavar="KEY=VALUE", help=f"environment for the {name} side (repeatable)")
        ab_parser.add_argument(f"--{name}-args", metavar="ARGS", help=f"extra pytest arguments for the {name} side, one string")
    ab_parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then the pytest arguments of both sides")
    ab_parser.set_defaults(handler=_ab)

    recover = command(
        "recover", "turn a run's journal into pytest-benchmark JSON after a crash",
        "Rebuild the JSON of a run that died (native crash, out-of-memory kill, CI timeout) from the journal written "
        "beside --benchmark-json as each case finished; names the case that was running when the process died.",
    )
    recover.add_argument("journal", type=Path, help="the journal, e.g. out/run.json.journal")
    recover.add_argument("-o", "--output", type=Path, required=True, help="the JSON file to write")
    recover.set_defaults(handler=_recover)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors exit 2 (one line), --help and --version exit 0
        return int(exc.code or 0)
    from inferperf.ab import AbError
    from inferperf.analysis.output import OutputError

    from inferperf.analysis import metric

    try:
        key = getattr(args, "metric", None)
        if key is not None:
            metric.check_key(key)
            if args.command == "history":
                args.no_index = True  # the index keeps round-time points; a metric reads the runs themselves
            print(f"inferperf {args.command}: {metric.describe(key)}", file=sys.stderr)
        with metric.judging(key):
            code = int(args.handler(args))
        if key is not None and metric.left_out:
            print(f"inferperf {args.command}: {len(metric.left_out)} cases record no per-round {key} and were left out", file=sys.stderr)
        return code
    except (RecordError, UsageError, OutputError, SettingError, AbError) as exc:
        message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"inferperf {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"inferperf {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (| head): nothing left to say
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the one place that turns a bug into exit 3
        return _internal_error(args, exc)


def _internal_error(args: argparse.Namespace, exc: BaseException) -> int:
    if getattr(args, "debug", False):
        traceback.print_exception(exc)
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    hint = "" if getattr(args, "debug", False) else " (run with --debug for the traceback)"
    print(f"inferperf {args.command}: internal error: {type(exc).__name__}: {first}{hint}", file=sys.stderr)
    return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
