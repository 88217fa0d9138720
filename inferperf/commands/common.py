"""What the commands share: exit codes, one-line usage errors, selection, outputs, ``--metric``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Iterable, Sequence

from inferperf.analysis.ab_verdicts import CaseResult
from inferperf.analysis.judged_metric import judged_on
from inferperf.analysis.output import Outputs
from inferperf.analysis.select import ExpressionError, compile_expression
from inferperf.analysis.tables import Table
from inferperf.commands import EXIT_OK, EXIT_REGRESSION, UsageError
from inferperf.record.run import Run


def nothing_compared(why: str, k: str | None) -> UsageError:
    """Exit 2 for a comparison that compared nothing, naming the -k filter that may be the cause."""
    return UsageError(f"nothing was compared: {why}" + (f" among those matching -k {k!r}" if k else ""))


def seed_or_random(given: int | None) -> int:
    """The seed the user gave, or a fresh random one (recorded by the caller, so a run can be repeated)."""
    return given if given is not None else int.from_bytes(os.urandom(4), "little")


def select_cases(expression: str | None) -> Callable[[str], bool]:
    """``-k EXPR`` as a predicate on case ids; a malformed expression is a usage error."""
    try:
        return compile_expression(expression)
    except ExpressionError as exc:
        raise UsageError(str(exc)) from None


def outputs_for(args: argparse.Namespace, options: Iterable[str], inputs: Iterable[Path] = ()) -> Outputs:
    """The command's writer, protecting ``inputs``, with every file named by ``options`` checked
    before any work is done: a bad destination costs one line, not a finished computation."""
    outputs = Outputs(inputs)
    for option in options:
        destination = getattr(args, option)
        if destination not in (None, "-"):
            outputs.check(Path(destination), f"--{option}")
    return outputs


def write(outputs: Outputs, destination: str, text: str, option: str) -> None:
    """``text`` to stdout (``-``) or, atomically, to the file ``destination``."""
    if destination == "-":
        sys.stdout.write(text)
        return
    outputs.write_text(Path(destination), text, option)


def judged(args: argparse.Namespace, runs: Sequence[Run]) -> list[Run]:
    """The runs as the command judges them: on ``--metric``'s per-round values when given (the
    cases without it left out, and counted on stderr), else as loaded."""
    key = getattr(args, "metric", None)
    result = judged_on(runs, key)
    if key is not None and result.left_out:
        print(f"inferperf {args.command}: {len(result.left_out)} cases record no per-round {key} and were left out", file=sys.stderr)
    return result.runs


def write_verdicts(
    args: argparse.Namespace, outputs: Outputs, command: str, summary: str, table: Table, payload: str,
    results: Sequence[CaseResult],
) -> int:
    """The ``--markdown``/``--json`` files of many-runs verdicts (``ab``, ``compare --base/--candidate``), then the gate."""
    if args.markdown:
        write(outputs, args.markdown, f"### inferperf {command}\n\n{summary}\n\n{table.markdown()}\n", "--markdown")
    if args.json:
        write(outputs, args.json, payload, "--json")
    if args.fail_on_regression and any(r.verdict == "slower" for r in results):
        return EXIT_REGRESSION
    return EXIT_OK
