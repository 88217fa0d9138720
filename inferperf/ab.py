"""``inferperf ab``: interleaved A/B runs in fresh processes, judged with two-level statistics.

Each block runs both sides once, each in a fresh ``python -m pytest PYTEST_ARGS --benchmark-only
--benchmark-save-data --benchmark-json …`` process in its own directory, in a seeded random order;
every run is kept in the store (``DIR/<started-at>/{base,candidate}/NNNN.json``, never overwritten)
with the design (``ab.json``: sides, commands, seed, the order of every block, exit codes, times).
A side is a directory (a checkout) or a git ref of the current repository, checked out into a
temporary worktree that is removed afterwards. It works on any pytest-benchmark suite.

Nothing here imports torch: the sides' processes do the measuring.
"""

from __future__ import annotations

import json
import math
import os
import random
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Literal, Mapping, Sequence

from inferperf.analysis.abstats import (
    AbEstimate,
    AbVerdict,
    PairedBlocks,
    ProcessSamples,
    ab_verdict,
    blocks_needed,
    look_schedule,
    min_sign_flip_p,
    paired_estimate,
    spent_alpha,
    unpaired_estimate,
)
from inferperf.analysis.fingerprint import machine_identity
from inferperf.analysis.load import Benchmark, Run, load_run, shown
from inferperf.analysis.output import atomic_write
from inferperf.analysis.schema import RecordError
from inferperf.analysis.settings import Thresholds
from inferperf.analysis.values import as_mapping

SideName = Literal["base", "candidate"]
SIDES: tuple[SideName, SideName] = ("base", "candidate")
NOISE_FOLDER = "noise"


class AbError(ValueError):
    """A side or an option that cannot be used: one line, exit 2."""


@dataclass(frozen=True)
class Side:
    """One side of the comparison and how to run it."""

    name: SideName
    spec: str
    directory: Path
    python: str
    env: Mapping[str, str]
    args: tuple[str, ...]
    #: a worktree made for a git ref (removed afterwards)
    worktree: bool = False
    commit: str | None = None

    def command(self, pytest_args: Sequence[str], out: Path) -> list[str]:
        return [
            self.python, "-m", "pytest", *pytest_args, "--benchmark-only", "--benchmark-save-data",
            f"--benchmark-json={out}", "-p", "no:cacheprovider", *self.args,
        ]

    def environment(self) -> dict[str, str]:
        # the side's own checkout comes first on the path, whatever inferperf is installed
        path = os.pathsep.join(p for p in (str(self.directory), os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, **self.env, "PYTHONPATH": path}


def parse_env(pairs: Sequence[str], option: str) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum():
            raise AbError(f"{option}: expected KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise AbError(f"git {' '.join(args)}: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'failed'}")
    return result.stdout.strip()


def resolve_side(
    name: SideName, spec: str, *, python: str | None, env: Mapping[str, str], args: str | None, repo: Path, scratch: Path
) -> Side:
    """A directory as it is, or a git ref checked out (detached) into a temporary worktree."""
    interpreter = python or sys.executable
    if python is not None and not Path(python).exists():
        raise AbError(f"--{name}-python: {python} does not exist")
    try:
        extra = tuple(shlex.split(args or ""))
    except ValueError as exc:
        raise AbError(f"--{name}-args: {exc}") from None
    candidate = Path(spec)
    if candidate.is_dir():
        return Side(name, spec, candidate.resolve(), interpreter, dict(env), extra)
    found = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"], capture_output=True, text=True)
    commit = found.stdout.strip() if found.returncode == 0 and spec else ""
    if not commit:
        raise AbError(f"--{name}: {spec!r} is neither a directory nor a git ref of {shown(repo)}")
    directory = scratch / name
    _git(repo, "worktree", "add", "--detach", "--force", str(directory), commit)
    return Side(name, spec, directory, interpreter, dict(env), extra, worktree=True, commit=commit)


def remove_side(side: Side, repo: Path) -> None:
    if side.worktree:
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(side.directory)], capture_output=True)


# --------------------------------------------------------------------------------------------
# Running the blocks


@dataclass
class RunRecord:
    block: int
    side: SideName
    position: int
    returncode: int
    seconds: float
    path: str


@dataclass
class Design:
    """What ``ab.json`` holds: enough to re-run or re-judge the experiment."""

    started: str
    seed: int
    blocks_planned: int
    pytest_args: list[str]
    sides: dict[str, dict[str, object]]
    aa: bool
    runs: list[RunRecord] = field(default_factory=list)
    orders: list[list[str]] = field(default_factory=list)
    stopped_early_after: int | None = None

    def save(self, folder: Path) -> None:
        atomic_write(folder / "ab.json", (json.dumps(asdict(self), indent=2) + "\n").encode())


def new_run_folder(store: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = store / stamp
    suffix = 1
    while folder.exists():  # never reuse (or overwrite) an earlier experiment's folder
        suffix += 1
        folder = store / f"{stamp}-{suffix}"
    make_side_folders(folder)
    return folder


def make_side_folders(folder: Path) -> None:
    """``folder/base`` and ``folder/candidate``, which must not exist yet."""
    for side in SIDES:
        (folder / side).mkdir(parents=True)


def run_blocks(
    sides: Mapping[SideName, Side],
    pytest_args: Sequence[str],
    folder: Path,
    design: Design,
    *,
    blocks: int,
    progress: Callable[[str], None],
    decided: Callable[[int], bool] | None = None,
    looks: Sequence[int] = (),
) -> Design:
    """Run the blocks (stopping after a look where ``decided`` says so); every run kept, the design saved as it goes."""
    order_rng = random.Random(design.seed)
    started = time.perf_counter()
    for block in range(1, blocks + 1):
        order = list(SIDES)
        order_rng.shuffle(order)
        design.orders.append([str(name) for name in order])
        for position, name in enumerate(order):
            side = sides[name]
            out = folder / name / f"{block:04d}.json"
            log = folder / name / f"{block:04d}.log"
            began = time.perf_counter()
            with open(log, "wb") as fh:
                code = subprocess.run(
                    side.command(pytest_args, out), cwd=side.directory, env=side.environment(),
                    stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                ).returncode
            design.runs.append(RunRecord(block, name, position, code, round(time.perf_counter() - began, 3), str(out.relative_to(folder))))
            if code != 0:
                progress(f"block {block}: the {name} run exited with {code} (see {shown(log)})")
        design.save(folder)
        spent = time.perf_counter() - started
        left = spent / block * (blocks - block)
        progress(f"block {block} of {blocks} ({' then '.join(order)}): {spent:.0f} s so far, about {left:.0f} s left")
        if decided is not None and block in looks and block < blocks and decided(block):
            design.stopped_early_after = block
            design.save(folder)
            progress(f"decided after {block} blocks (--until-decided)")
            break
    return design


# --------------------------------------------------------------------------------------------
# Judging the blocks


@dataclass(frozen=True)
class CaseResult:
    case_id: str
    estimate: AbEstimate | None
    verdict: AbVerdict | Literal["not comparable"]
    base_median_s: float | None
    candidate_median_s: float | None
    #: blocks where either side ran under contention (left out with --exclude-contended)
    contended_blocks: int
    note: str = ""
    needed_blocks: int | None = None


def load_blocks(folder: Path) -> tuple[list[tuple[int, Run, Run]], list[str]]:
    """The complete blocks of a stored experiment: (block, base run, candidate run), and files skipped."""
    blocks, skipped = [], []
    for path in sorted((folder / "base").glob("[0-9][0-9][0-9][0-9].json")):
        number = int(path.stem)
        other = folder / "candidate" / path.name
        if not other.exists():
            skipped.append(f"block {number}: no candidate run")
            continue
        try:
            blocks.append((number, load_run(path, f"base {number}"), load_run(other, f"candidate {number}")))
        except RecordError as exc:
            skipped.append(f"block {number} skipped: {exc}")
    return blocks, skipped


def _samples(bench: Benchmark) -> ProcessSamples:
    """One process's round times of a case; its median alone when the run kept no raw data."""
    return ProcessSamples(bench.samples or (bench.summary.median,))


def _geometric_mean_median(side: Sequence[ProcessSamples]) -> float:
    """The typical median over a side's processes (the mean of their log medians, as the estimates use)."""
    return math.exp(sum(math.log(p.median) for p in side) / len(side))


def judge(
    blocks: Sequence[tuple[int, Run, Run]],
    thresholds: Thresholds,
    *,
    select: Callable[[str], bool] = lambda _: True,
    exclude_contended: bool = False,
    alpha: float | None = None,
    noise: Mapping[str, float] | None = None,
) -> list[CaseResult]:
    """Every case present in both sides of at least two blocks, judged over its blocks."""
    alpha = thresholds.alpha if alpha is None else alpha
    case_ids = sorted({c for _, base, cand in blocks for c in base.benchmarks if c in cand.benchmarks and select(c)})
    results = []
    for case_id in case_ids:
        pairs, contended = [], 0
        for _, base, cand in blocks:
            a, b = base.benchmarks.get(case_id), cand.benchmarks.get(case_id)
            if a is None or b is None:
                continue
            if a.contended or b.contended:
                contended += 1
                if exclude_contended:
                    continue
            pairs.append((_samples(a), _samples(b)))
        needed = blocks_needed(noise[case_id], min_change=thresholds.min_change, alpha=thresholds.alpha) if noise and case_id in noise else None
        if len(pairs) < 2:
            results.append(CaseResult(case_id, None, "not comparable", None, None, contended, "fewer than 2 complete blocks", needed))
            continue
        base_side = [p[0] for p in pairs]
        cand_side = [p[1] for p in pairs]
        estimate = paired_estimate(base_side, cand_side, confidence=thresholds.confidence, resamples=thresholds.resamples)
        verdict = ab_verdict(estimate, min_change=thresholds.min_change, alpha=alpha)
        note = ""
        if verdict == "inconclusive" and min_sign_flip_p(len(pairs)) >= alpha:
            note = f"{len(pairs)} blocks cannot reach p < {alpha:g}; run more blocks"
        elif needed is not None and len(pairs) < needed:
            note = f"this machine's A/A noise needs about {needed} blocks to detect {thresholds.min_change:.0%}"
        results.append(
            CaseResult(case_id, estimate, verdict, _geometric_mean_median(base_side), _geometric_mean_median(cand_side), contended, note, needed)
        )
    return results


def judge_groups(
    base_runs: Sequence[Run],
    candidate_runs: Sequence[Run],
    thresholds: Thresholds,
    *,
    select: Callable[[str], bool] = lambda _: True,
    exclude_contended: bool = False,
) -> list[CaseResult]:
    """Several runs per side, not interleaved in blocks: the unpaired design (label permutation test)."""
    case_ids = sorted({c for run in (*base_runs, *candidate_runs) for c in run.benchmarks if select(c)})
    results = []
    for case_id in case_ids:
        sides: list[list[ProcessSamples]] = [[], []]
        contended = 0
        for index, runs in enumerate((base_runs, candidate_runs)):
            for run in runs:
                bench = run.benchmarks.get(case_id)
                if bench is None:
                    continue
                if bench.contended:
                    contended += 1
                    if exclude_contended:
                        continue
                sides[index].append(_samples(bench))
        base_side, cand_side = sides
        if len(base_side) < 2 or len(cand_side) < 2:
            results.append(CaseResult(case_id, None, "not comparable", None, None, contended, "fewer than 2 runs on a side"))
            continue
        estimate = unpaired_estimate(base_side, cand_side, confidence=thresholds.confidence, resamples=thresholds.resamples)
        verdict = ab_verdict(estimate, min_change=thresholds.min_change, alpha=thresholds.alpha)
        results.append(
            CaseResult(case_id, estimate, verdict, _geometric_mean_median(base_side), _geometric_mean_median(cand_side), contended)
        )
    return results


def all_decided(results: Sequence[CaseResult]) -> bool:
    return bool(results) and all(r.verdict in ("slower", "faster", "same") for r in results)


# --------------------------------------------------------------------------------------------
# The machine's noise profile (--aa)


def noise_profile_path(store: Path, run: Run) -> Path:
    return store / NOISE_FOLDER / f"{machine_identity(run.machine).digest}.json"


def save_noise_profile(store: Path, blocks: Sequence[tuple[int, Run, Run]], results: Sequence[CaseResult], pytest_args: Sequence[str]) -> Path:
    """Store each case's block-to-block spread (sigma of the A/A log ratios) for this machine."""
    first = blocks[0][1]
    path = noise_profile_path(store, first)
    existing: Mapping[str, object] = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            existing = {}
    cases: dict[str, object] = dict(as_mapping(existing.get("cases")))
    when = datetime.now(timezone.utc).isoformat()
    for result in results:
        if result.estimate is not None and math.isfinite(result.estimate.sigma):
            cases[result.case_id] = {"sigma": result.estimate.sigma, "blocks": result.estimate.blocks, "measured": when}
    profile = {
        "machine": machine_identity(first.machine).as_dict(),
        "pytest_args": list(pytest_args),
        "cases": cases,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(profile, indent=2) + "\n").encode())
    return path


def load_noise_profile(store: Path, run: Run) -> dict[str, float]:
    path = noise_profile_path(store, run)
    try:
        cases = json.loads(path.read_text(encoding="utf-8")).get("cases", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {k: float(v["sigma"]) for k, v in cases.items() if isinstance(v, dict) and isinstance(v.get("sigma"), (int, float))}


def decide_early(
    folder: Path, thresholds: Thresholds, looks: Sequence[int], select: Callable[[str], bool], exclude_contended: bool
) -> Callable[[int], bool]:
    """The ``--until-decided`` rule: at each look, every case decided at ``alpha / looks``."""
    level = spent_alpha(thresholds.alpha, len(looks))

    def decided(block: int) -> bool:
        blocks, _ = load_blocks(folder)
        return all_decided(judge(blocks, thresholds, select=select, exclude_contended=exclude_contended, alpha=level))

    return decided


__all__ = [
    "AbError", "Side", "Design", "CaseResult", "resolve_side", "remove_side", "run_blocks", "load_blocks", "judge",
    "all_decided", "save_noise_profile", "load_noise_profile", "new_run_folder", "parse_env", "look_schedule", "decide_early",
]


# --------------------------------------------------------------------------------------------
# Reporting


def results_table(results: Sequence[CaseResult]):  # -> Table
    from inferperf.analysis.tables import Table, fmt_p, fmt_ratio, fmt_seconds

    rows = [
        [
            r.case_id,
            str(r.estimate.blocks) if r.estimate else "-",
            fmt_seconds(r.base_median_s),
            fmt_seconds(r.candidate_median_s),
            fmt_ratio(r.estimate.ratio, r.estimate.low, r.estimate.high) if r.estimate else "-",
            fmt_p(r.estimate.p_value) if r.estimate else "-",
            r.verdict,
            str(r.contended_blocks) if r.contended_blocks else "",
            r.note,
        ]
        for r in results
    ]
    headers = ["case", "blocks", "base", "candidate", "ratio [CI]", "p", "verdict", "contended blocks", "note"]
    return Table("candidate vs base, per case (median seconds per round, geometric mean over runs; ratio > 1: slower)", headers, rows)


#: the test behind the verdicts of an ``ab`` experiment
PAIRED_BLOCKS_TEST = "paired sign-flip test per case over interleaved blocks"


def verdict_summary(results: Sequence[CaseResult], thresholds: Thresholds, test: str = PAIRED_BLOCKS_TEST) -> str:
    """Verdict counts and the rule behind them; ``test`` names the design's significance test."""
    from inferperf.analysis.tables import verdict_counts

    text = ", ".join(f"{n} {verdict}" for verdict, n in verdict_counts(r.verdict for r in results)) or "no case"
    return (
        f"{text} ({test}, p < {thresholds.alpha:g} and at least "
        f"{thresholds.min_change:.0%} for slower/faster; 'same': the {thresholds.confidence:.0%} two-level bootstrap "
        f"interval inside ±{thresholds.min_change:.0%})"
    )


def results_json(results: Sequence[CaseResult], design: Design | None, thresholds: Thresholds) -> str:
    payload = {
        "thresholds": asdict(thresholds),
        "design": asdict(design) if design else None,
        "cases": [
            {
                "case_id": r.case_id,
                "verdict": r.verdict,
                "ratio": r.estimate.ratio if r.estimate else None,
                "ci_low": r.estimate.low if r.estimate else None,
                "ci_high": r.estimate.high if r.estimate else None,
                "p_value": r.estimate.p_value if r.estimate else None,
                "blocks": r.estimate.blocks if r.estimate else 0,
                "sigma": r.estimate.sigma if r.estimate and math.isfinite(r.estimate.sigma) else None,
                "base_median_s": r.base_median_s,
                "candidate_median_s": r.candidate_median_s,
                "contended_blocks": r.contended_blocks,
                "needed_blocks": r.needed_blocks,
                "note": r.note,
            }
            for r in results
        ],
        "regressions": [r.case_id for r in results if r.verdict == "slower"],
    }
    return json.dumps(payload, indent=2) + "\n"


# --------------------------------------------------------------------------------------------
# Measuring the design itself (detection-power --ab)


@dataclass(frozen=True)
class PowerRow:
    blocks: int
    trials: int
    false_alarms: float
    detected: float
    #: wall time of one trial's blocks (both sides), from the measured process times
    trial_s: float


def power_experiment(
    pool: int,
    slowdown: float,
    blocks_options: Sequence[int],
    trials: int,
    thresholds: Thresholds,
    store: Path,
    seed: int,
    progress: Callable[[str], None],
) -> tuple[list[PowerRow], Path, float]:
    """Real fresh processes: ``pool`` A/A blocks and ``pool`` A/B blocks (the candidate does ``slowdown``
    more work), then ``trials`` random subsets of each size in ``blocks_options`` judged as ``ab`` judges.
    Returns the rows, the folder holding every run, and the mean seconds per process."""
    import shutil
    import tempfile
    from importlib import resources

    too_many = [size for size in blocks_options if size > pool]
    if too_many:  # before 4 x pool processes run, not after
        raise AbError(f"--blocks {too_many[0]} is more than the pool of {pool} blocks (--pool)")
    rng = random.Random(seed)
    root = store / f"power-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
    with tempfile.TemporaryDirectory(prefix="inferperf-power-") as suite:
        workload = resources.files("inferperf").joinpath("power_workload.py")
        shutil.copyfile(str(workload), Path(suite) / "test_power_workload.py")
        pools: dict[str, list[tuple[int, Run, Run]]] = {}
        seconds: list[float] = []
        for label, extra in (("aa", 0.0), ("ab", slowdown)):
            sides: dict[SideName, Side] = {
                "base": Side("base", suite, Path(suite), sys.executable, {"INFERPERF_POWER_SLOWDOWN": "0"}, ()),
                "candidate": Side("candidate", suite, Path(suite), sys.executable, {"INFERPERF_POWER_SLOWDOWN": str(extra)}, ()),
            }
            folder = root / label
            make_side_folders(folder)
            design = Design(folder.name, rng.randrange(2**31), pool, ["test_power_workload.py"], {}, label == "aa")
            run_blocks(sides, ["test_power_workload.py"], folder, design, blocks=pool, progress=lambda line: progress(f"{label}: {line}"))
            seconds += [r.seconds for r in design.runs]
            pools[label], _ = load_blocks(folder)
    rows = []
    mean_s = sum(seconds) / len(seconds)
    prepared = {label: _pool_blocks(blocks, thresholds) for label, blocks in pools.items()}
    for size in blocks_options:
        calls = {"aa": 0, "ab": 0}
        for label in ("aa", "ab"):
            pool_blocks = prepared[label]
            if len(pool_blocks.d) < size:  # a pool run failed: fewer complete blocks than asked for
                raise AbError(f"--blocks {size}: only {len(pool_blocks.d)} complete {label} blocks in {shown(root / label)}")
            for _ in range(trials):
                estimate = pool_blocks.estimate(rng.sample(range(len(pool_blocks.d)), size), confidence=thresholds.confidence)
                verdict = ab_verdict(estimate, min_change=thresholds.min_change, alpha=thresholds.alpha)
                calls[label] += verdict in ("slower", "faster") if label == "aa" else verdict == "slower"
        rows.append(PowerRow(size, trials, calls["aa"] / trials, calls["ab"] / trials, size * 2 * mean_s))
    return rows, root, mean_s


def _pool_blocks(blocks: Sequence[tuple[int, Run, Run]], thresholds: Thresholds) -> PairedBlocks:
    """The pool's blocks of its one case, bootstrap replicates computed once for every trial."""
    (case_id,) = {c for _, base, _ in blocks for c in base.benchmarks}
    base = [_samples(b.benchmarks[case_id]) for _, b, _ in blocks]
    candidate = [_samples(c.benchmarks[case_id]) for _, _, c in blocks]
    return PairedBlocks(base, candidate, thresholds.resamples)


def power_table(rows: Sequence[PowerRow], slowdown: float, thresholds: Thresholds, process_s: float) -> str:
    lines = [
        f"ab design, real fresh processes ({process_s:.2f} s each): min-change {thresholds.min_change:.0%}, alpha {thresholds.alpha:g}",
        f"| blocks | false alarms (A/A) | {slowdown:.0%} detected | wall time per verdict |",
        "|---|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| {row.blocks} | {row.false_alarms:.1%} | {row.detected:.1%} | {row.trial_s / 60:.1f} min |")
    return "\n".join(lines) + "\n"
