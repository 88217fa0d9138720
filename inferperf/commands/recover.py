"""``inferperf recover``: the JSON of a run that died, rebuilt from the journal its cases left."""

from __future__ import annotations

import argparse
import sys

from inferperf.commands import EXIT_OK
from inferperf.commands.common import outputs_for
from inferperf.journal import recover
from inferperf.text import shown


def run(args: argparse.Namespace) -> int:
    outputs = outputs_for(args, ("output",), [args.journal])
    recovered = recover(args.journal)
    for line in recovered.notes:
        print(line, file=sys.stderr)
    outputs.write_text(args.output, recovered.json_text(), "--output")
    print(f"wrote {shown(args.output)}: {recovered.summary()}", file=sys.stderr)
    return EXIT_OK
