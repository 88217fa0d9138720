"""``inferperf report``: one run as the documentation's tables, one per technique, then the skipped cases."""

from __future__ import annotations

import argparse
import sys

from inferperf.analysis.run_report import skipped_table, technique_tables
from inferperf.commands import EXIT_OK, UsageError
from inferperf.commands.common import select_cases
from inferperf.record.load import load_run
from inferperf.text import shown


def run(args: argparse.Namespace) -> int:
    select = select_cases(args.k)
    loaded = load_run(args.run)
    tables = technique_tables(loaded, select)
    skipped = skipped_table([loaded], select)
    if skipped is not None:
        tables.append(skipped)
    if not tables:
        raise UsageError(f"{shown(args.run)}: " + (f"no cases match -k {args.k!r}" if args.k else "holds no benchmarks"))
    text = "\n\n".join(t.markdown() if args.markdown else t.text() for t in tables) + "\n"
    sys.stdout.write(text)
    return EXIT_OK
