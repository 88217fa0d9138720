"""``inferperf client-ceiling``: what this machine's load generator can drive within the fidelity bound.

Like the calibration of peak FLOP/s, measured once per machine before pointing the client at a
fleet: closed-loop streams ramped against the ground-truth stand-in on 127.0.0.1 until the
self-check calls a round invalid or the stand-in's log says the client was out of bound. The
result is kept in the user's cache and recorded in every later run's
``machine_info.inferperf.load_generator``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from inferperf.commands import EXIT_OK, UsageError
from inferperf.files import atomic_write
from inferperf.serving.fidelity import StandInUnavailable, measure_ceiling
from inferperf.serving.runners import ceiling_cache_path


def run(args: argparse.Namespace) -> int:
    streams = [int(s) for s in args.streams]
    with tempfile.TemporaryDirectory(prefix="inferperf-ceiling-") as folder:
        try:
            found = measure_ceiling(Path(folder), workers=args.workers, streams=streams, per_stream=args.per_stream,
                                    progress=lambda line: print(f"inferperf client-ceiling: {line}", file=sys.stderr, flush=True))
        except StandInUnavailable as exc:
            raise UsageError(str(exc)) from None
    found["node"] = os.uname().nodename
    best = found["tokens_per_s"]
    per_core = found["per_core_tokens_per_s"]
    if best is None:
        print(f"no round within the fidelity bound even at {streams[0]} streams: this client cannot be trusted here")
    else:
        print(f"ceiling: {best:,.0f} streamed tokens/s within the fidelity bound ({found['streams']} streams, {args.workers} worker(s)); "
              f"one client core carries about {per_core:,.0f} tokens/s")
    if not args.no_save:
        atomic_write(ceiling_cache_path(), (json.dumps(found, indent=2) + "\n").encode())
        print(f"inferperf client-ceiling: saved to {ceiling_cache_path()} (recorded in later runs' machine info)", file=sys.stderr)
    return EXIT_OK
