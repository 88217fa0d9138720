"""The ``inferperf`` command line: the parser, and the dispatch to each command's module
(``inferperf.commands.<command>.run``), imported only when its command runs.

Exit codes, one meaning each: 0 ok, 1 regression found (only with ``--fail-on-regression``),
2 bad input or usage (one line naming the file, field or option), 3 internal error (one line;
the traceback with ``--debug``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

from inferperf import __version__
from inferperf.ab import DEFAULT_RUN_TIMEOUT_S
from inferperf.analysis.settings import (
    DEFAULT_ALPHA,
    DEFAULT_CONFIDENCE,
    DEFAULT_MAX_PLOTS,
    DEFAULT_MIN_CHANGE,
    DEFAULT_PENALTY,
    DEFAULT_STEP_CONFIDENCE,
    SettingError,
    check_min_change,
    check_probability,
    check_range,
)
from inferperf.commands import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK, UsageError
from inferperf.record.keys import RecordError


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
    validate.set_defaults(workflow="validate")

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
    compare.set_defaults(workflow="compare")

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
    power.set_defaults(workflow="detection_power")

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
    history.add_argument(
        "--max-plots", type=int, default=DEFAULT_MAX_PLOTS, metavar="N",
        help=f"with --output: trend plots per machine at most (regressions and steps first; 0: every series; default {DEFAULT_MAX_PLOTS})",
    )
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
    history.set_defaults(workflow="history")

    report = command(
        "report", "one run as a table per technique (throughput, speedups, sizes, agreement)",
        "Show one run as the documentation's tables: per technique, each case's throughput, latency, speedup over its "
        "baseline, roofline fraction, sizes, set-up time and details; then the skipped cases.",
    )
    report.add_argument("run", type=Path, help="a pytest-benchmark JSON file")
    report.add_argument("-k", metavar="EXPR", help="select cases by id, as pytest -k")
    report.add_argument("--markdown", action="store_true", help="Markdown tables instead of plain text")
    report.add_argument("--html", metavar="PATH", help="also write the tables and the served goodput plot as an HTML page ('-': stdout only)")
    report.set_defaults(workflow="report")

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
    export.set_defaults(workflow="export")

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
    ab_parser.add_argument(
        "--run-timeout", type=POSITIVE, default=DEFAULT_RUN_TIMEOUT_S, metavar="SECONDS",
        help=f"stop a side's run still going after SECONDS (SIGINT, then SIGKILL) and record it as failed; the blocks go on "
        f"(default {DEFAULT_RUN_TIMEOUT_S:g})",
    )
    for name in ("base", "candidate"):
        ab_parser.add_argument(f"--{name}-python", metavar="PATH", help=f"interpreter for the {name} side (default: this one)")
        ab_parser.add_argument(f"--{name}-env", action="append", metavar="KEY=VALUE", help=f"environment for the {name} side (repeatable)")
        ab_parser.add_argument(f"--{name}-args", metavar="ARGS", help=f"extra pytest arguments for the {name} side, one string")
    ab_parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- then the pytest arguments of both sides")
    ab_parser.set_defaults(workflow="ab")

    ceiling = command(
        "client-ceiling", "what this machine's load generator can drive within the fidelity bound (run once per machine)",
        "Ramp closed-loop streams against a ground-truth stand-in server on 127.0.0.1 (C, built with the machine's cc) "
        "until the client's self-check or the server's log says it is out of the fidelity bound; keep the ceiling in the "
        "user's cache, from where every later run records it (machine_info.inferperf.load_generator).",
    )
    ceiling.add_argument("--workers", type=_count(1), default=1, help="client processes (default 1: one core's ceiling)")
    ceiling.add_argument(
        "--streams", type=_number_list(int, 1, "64,256,512"), default=[32, 64, 128, 256, 384, 512, 768, 1024],
        help="the ramp of closed-loop streams (default 32,64,128,256,384,512,768,1024)",
    )
    ceiling.add_argument("--per-stream", type=_count(1), default=3, help="requests each stream sends per step (default 3)")
    ceiling.add_argument("--no-save", action="store_true", help="print the ceiling without keeping it")
    ceiling.set_defaults(workflow="client_ceiling")

    recover = command(
        "recover", "turn a run's journal into pytest-benchmark JSON after a crash",
        "Rebuild the JSON of a run that died (native crash, out-of-memory kill, CI timeout) from the journal written "
        "beside --benchmark-json as each case finished; names the case that was running when the process died.",
    )
    recover.add_argument("journal", type=Path, help="the journal, e.g. out/run.json.journal")
    recover.add_argument("-o", "--output", type=Path, required=True, help="the JSON file to write")
    recover.set_defaults(workflow="recover")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors exit 2 (one line), --help and --version exit 0
        return int(exc.code or 0)
    from inferperf.ab.sides import AbError
    from inferperf.analysis.judged_metric import check_key, describe
    from inferperf.analysis.output import OutputError

    try:
        key = getattr(args, "metric", None)
        if key is not None:
            check_key(key)
            print(f"inferperf {args.command}: {describe(key)}", file=sys.stderr)
        workflow = importlib.import_module(f"inferperf.commands.{args.workflow}")
        return int(workflow.run(args))
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
