"""``inferperf ab``: did this change make it slower, on a noisy machine? Both sides in fresh processes,
interleaved in seeded random blocks (``inferperf.ab``), every run kept, then each case judged over its
blocks (``inferperf.analysis.ab_verdicts``); ``--aa`` stores the machine's noise profile."""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from inferperf.ab.blocks import Design, new_run_folder, run_blocks
from inferperf.ab.sides import (
    SIDES,
    Side,
    SideName,
    parse_env,
    remove_side,
    resolve_side,
)
from inferperf.analysis import ab_verdicts
from inferperf.analysis.abstats import blocks_needed, look_schedule
from inferperf.analysis.settings import Thresholds
from inferperf.commands import UsageError
from inferperf.commands.common import (
    nothing_compared,
    outputs_for,
    seed_or_random,
    select_cases,
    write_verdicts,
)
from inferperf.text import shown


def _progress(line: str) -> None:
    print(f"inferperf ab: {line}", file=sys.stderr, flush=True)


def _run_experiment(args: argparse.Namespace, thresholds: Thresholds, select: Callable[[str], bool], pytest_args: list[str]) -> tuple[Path, Design]:
    """Resolve both sides, run the blocks into a new folder of the store, remove any worktree made."""
    if not args.base:
        raise UsageError("--base is required (or --analyse DIR)")
    if not args.aa and not args.candidate:
        raise UsageError("--candidate is required (or --aa: the base side against itself)")
    if args.until_decided and args.max_blocks is None:
        raise UsageError("--until-decided needs --max-blocks")
    blocks = args.max_blocks if args.until_decided else args.blocks
    repo = Path.cwd()
    seed = seed_or_random(args.seed)
    with tempfile.TemporaryDirectory(prefix="inferperf-ab-") as scratch:
        sides: dict[SideName, Side] = {}
        try:
            for name in SIDES:
                spec = args.base if (name == "base" or args.aa) else args.candidate
                own = "base" if args.aa else name
                sides[name] = resolve_side(
                    name, spec, python=getattr(args, f"{own}_python"),
                    env=parse_env(getattr(args, f"{own}_env") or [], f"--{own}-env"),
                    args=getattr(args, f"{own}_args"), repo=repo, scratch=Path(scratch),
                )
            folder = new_run_folder(args.store)
            design = Design(
                started=folder.name, seed=seed, blocks_planned=blocks, pytest_args=pytest_args, aa=args.aa,
                sides={n: {"spec": s.spec, "directory": str(s.directory), "commit": s.commit, "python": s.python,
                           "env": dict(s.env), "args": list(s.args)} for n, s in sides.items()},
                run_timeout_s=args.run_timeout,
            )
            design.save(folder)
            _progress(f"{blocks} blocks, seed {seed}, runs kept in {shown(folder)}")
            looks = look_schedule(blocks) if args.until_decided else []
            decided = (
                ab_verdicts.decide_early(folder, thresholds, looks, select, args.exclude_contended, args.metric) if args.until_decided else None
            )
            run_blocks(sides, pytest_args, folder, design, blocks=blocks, decided=decided, looks=looks, progress=_progress,
                       run_timeout_s=args.run_timeout)
        finally:
            for side in sides.values():
                remove_side(side, repo)
    return folder, design


def run(args: argparse.Namespace) -> int:
    thresholds = Thresholds(min_change=args.min_change, alpha=args.alpha, confidence=args.confidence)
    select = select_cases(args.k)
    pytest_args = list(args.pytest_args)
    if pytest_args[:1] == ["--"]:
        pytest_args = pytest_args[1:]
    outputs = outputs_for(args, ("markdown", "json"))
    design: Design | None = None
    if args.analyse is not None:
        folder = args.analyse
        if not (folder / "base").is_dir() or not (folder / "candidate").is_dir():
            raise UsageError(f"--analyse {shown(folder)}: not an inferperf ab folder (no base/ and candidate/)")
    else:
        folder, design = _run_experiment(args, thresholds, select, pytest_args)
    stored, skipped = ab_verdicts.load_blocks(folder)
    for line in skipped:
        _progress(line)
    if len(stored) < 2:
        raise UsageError(f"{shown(folder)}: fewer than 2 complete blocks to compare (see the runs' .log files)")
    blocks, left_out = ab_verdicts.blocks_judged_on(stored, args.metric)
    if left_out:
        _progress(f"{len(left_out)} cases record no per-round {args.metric} and were left out")
    noise = {} if args.aa else ab_verdicts.load_noise_profile(args.store, blocks[0][1])
    results = ab_verdicts.judge(blocks, thresholds, select=select, exclude_contended=args.exclude_contended, noise=noise)
    if not results:
        raise nothing_compared("no case ran on both sides", args.k)
    table = ab_verdicts.results_table(results)
    summary = ab_verdicts.verdict_summary(results, thresholds)
    sys.stdout.write(table.text() + "\n\n" + summary + "\n")
    needed = [r.needed_blocks for r in results if r.needed_blocks]
    if needed and len(blocks) < max(needed):
        _progress(
            f"warning: {len(blocks)} blocks are too few for this machine: its A/A noise needs about "
            f"{max(needed)} blocks to detect {thresholds.min_change:.0%} at 95% power (--blocks {max(needed)})"
        )
    if args.aa:
        path = ab_verdicts.save_noise_profile(args.store, blocks, results, pytest_args)
        for r in results:
            if r.estimate is not None:
                n = blocks_needed(r.estimate.sigma, min_change=thresholds.min_change, alpha=thresholds.alpha)
                _progress(f"{r.case_id}: block-to-block sigma {r.estimate.sigma:.4f}; about {n} blocks detect {thresholds.min_change:.0%} at 95% power")
        _progress(f"noise profile saved to {shown(path)}")
    payload = ab_verdicts.results_json(results, asdict(design) if design else None, thresholds)
    return write_verdicts(args, outputs, "ab", summary, table, payload, results)
