"""``inferperf history``: each machine's nights as series per case, with the steps (change points) found,
a site and a summary; the store's SQLite index keeps it fast (``--no-index`` reads every run)."""

from __future__ import annotations

import argparse
import sqlite3
import sys

from inferperf.analysis.history import (
    build_series,
    machine_points,
    newest_step_regressions,
    summary_markdown,
    summary_text,
)
from inferperf.analysis.history_index import default_index_path, indexed_points
from inferperf.analysis.history_site import write_site
from inferperf.analysis.judged_metric import judged_on
from inferperf.analysis.settings import HistorySettings
from inferperf.commands import EXIT_OK, EXIT_REGRESSION, UsageError
from inferperf.commands.common import outputs_for, select_cases, write
from inferperf.record.keys import RecordError
from inferperf.record.load import json_files
from inferperf.record.run import Run
from inferperf.text import shown


def _history_points(args: argparse.Namespace) -> tuple[dict, list[str], str | None]:
    """Each machine's runs reduced to their points: from the store's index (brought up to date), or
    from the JSON files themselves with ``--no-index``, with ``--metric`` (the index keeps round
    times) or where no index can be written; and the line that says what the index did (printed
    once the command has succeeded)."""
    if args.metric is not None:
        left_out: set[str] = set()

        def on_metric(runs: list[Run]) -> list[Run]:
            result = judged_on(runs, args.metric)
            left_out.update(result.left_out)
            return result.runs

        points, skipped = machine_points(args.results, args.machine, transform=on_metric)
        note = f"inferperf history: --metric {args.metric} reads every run (the index keeps round times)"
        if left_out:
            note += f"; {len(left_out)} cases record no per-round {args.metric} and were left out"
        return points, skipped, note
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


def run(args: argparse.Namespace) -> int:
    select = select_cases(args.k)
    settings = HistorySettings(min_change=args.min_change, penalty=args.penalty, confidence=args.confidence)
    if args.index is not None and args.no_index:
        raise UsageError("--index and --no-index: give one")
    if args.max_plots < 0:
        raise UsageError(f"--max-plots {args.max_plots}: a count of plots, 0 for every series")
    # an index that is not a database is rebuilt, i.e. replaced: never let it be a run of the store
    if args.index is not None and (args.index.suffix == ".json" or args.results.resolve() in args.index.resolve().parents):
        raise UsageError(f"--index {shown(args.index)}: inside the results folder or a .json file; an index is rebuilt over whatever is there")
    if not args.results.is_dir():
        raise RecordError(f"{shown(args.results)}: not a results folder")
    # outputs are checked before any work (an index update included)
    outputs = outputs_for(args, ("markdown",), json_files(args.results))
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
        write(outputs, args.markdown, summary_markdown(all_series, settings), "--markdown")
    if args.output:
        written = write_site(all_series, args.output, settings, plots=not args.no_plots, outputs=outputs, max_plots=args.max_plots)
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


