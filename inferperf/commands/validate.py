"""``inferperf validate``: check saved runs as every command reads them, then every documented key."""

from __future__ import annotations

import argparse
import sys

from inferperf.commands import EXIT_BAD_INPUT, EXIT_OK
from inferperf.record.validate import validate_run


def run(args: argparse.Namespace) -> int:
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
