"""``inferperf detection-power``: how often this machine's noise lets a comparison detect a slowdown,
and how often it cries wolf — for ``compare`` (one run per side) or, with ``--ab``, for the
interleaved-blocks design with real fresh processes."""

from __future__ import annotations

import argparse
import sys

from inferperf.analysis.detection import numpy_workload, render_report, run_trials
from inferperf.analysis.settings import Thresholds
from inferperf.commands import EXIT_OK
from inferperf.commands.common import outputs_for, seed_or_random, write


def run(args: argparse.Namespace) -> int:
    outputs = outputs_for(args, ("markdown",))
    text = _power_of_ab_design(args) if args.ab else _power_of_one_run_per_side(args)
    sys.stdout.write(text)
    if args.markdown:
        write(outputs, args.markdown, text, "--markdown")
    return EXIT_OK


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _power_of_one_run_per_side(args: argparse.Namespace) -> str:
    """compare's statistics on one run per side of a numpy workload, unchanged and slowed down."""
    trials = run_trials(numpy_workload(), rounds_options=args.rounds, slowdowns=args.slowdowns, trials=args.trials, progress=_progress)
    return render_report(trials, min_change=args.min_change, alpha=args.alpha)


def _power_of_ab_design(args: argparse.Namespace) -> str:
    """``--ab``: the interleaved-blocks design itself, with real fresh pytest processes."""
    from inferperf.ab.power import power_experiment, power_table

    thresholds = Thresholds(min_change=args.min_change, alpha=args.alpha)
    slowdowns = [s for s in args.slowdowns if s > 0] if args.slowdowns else []
    slowdown = slowdowns[0] if slowdowns else 0.05
    seed = seed_or_random(args.seed)
    rows, folder, process_s = power_experiment(
        args.pool, slowdown, [int(b) for b in args.blocks], args.trials, thresholds, args.store, seed,
        progress=lambda line: _progress(f"inferperf detection-power: {line}"),
    )
    text = power_table(rows, slowdown, thresholds, process_s)
    return text + f"\n(trials are random subsets of {args.pool} A/A and {args.pool} A/B blocks kept in {folder}; seed {seed})\n"
