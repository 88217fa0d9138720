"""``inferperf export``: a run in github-action-benchmark's custom formats or the Bencher Metric Format."""

from __future__ import annotations

import argparse

from inferperf.analysis.export import export_run
from inferperf.commands import EXIT_OK
from inferperf.commands.common import outputs_for, write
from inferperf.record.load import load_run


def run(args: argparse.Namespace) -> int:
    outputs = outputs_for(args, ("output",), [args.run])
    write(outputs, args.output or "-", export_run(load_run(args.run), args.format), "--output")
    return EXIT_OK
