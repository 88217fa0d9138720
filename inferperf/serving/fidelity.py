"""The load generator held against ground truth: a stand-in server that logs when it really wrote
each token, and the client's measurements compared with that log.

The stand-in (``truth_server.c``: C, epoll and a timerfd on one thread, built here with the
machine's ``cc``) streams ``/v1/completions`` as vLLM does — the first token ``first_ms`` after the
request arrived, then one every ``gap_ms`` — and logs, on CLOCK_MONOTONIC (the clock
``time.perf_counter`` reads on Linux), when each request reached its socket (the kernel's receive
stamp: the server's own wake-up is not the client's error) and the clock just before each token's
write and just after it returned: the bytes reached the client's socket between the two, so a
token's truth is that interval, not a point. (Stamped only after the write, a server preempted
inside the write or before its stamp logged the token up to 4.9 ms late beside two busy
neighbours, which read as the client's error.) A first stand-in in Node logged the request's
arrival when its event loop got to it, 0.5 ms late at one stream and 1.5 ms (p99 12 ms) at 64,
which read as client error: the truth has to come from the kernel on both ends. The truth of a
request is that log: its TTFT is first write − arrival, its per-token ITL the gaps between
writes, each an interval from the stamps around the writes. The client's are what it recorded:
first chunk − send, the gaps between its arrival stamps. ``compare`` holds one against the other,
percentile for percentile (what a report shows) and request by request; an error is how far the
client's figure lies outside the truth's interval (a percentile of values each known to an
interval lies between the percentiles of the intervals' ends).

Used by the fidelity tests, ``inferperf client-ceiling`` (what this machine's client can drive)
and the sweep behind the served-generation page's fidelity table.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Sequence

from inferperf.metrics.distribution import percentile
from inferperf.metrics.requests import LoadPoint, RoundLoad, ServedRequest

#: the fidelity bound the client keeps (issue: TTFT and per-token ITL within 1 ms at p50, 5 ms at p99)
BOUND_P50_S = 0.001
BOUND_P99_S = 0.005


class StandInUnavailable(RuntimeError):
    """The stand-in server cannot be built here (no C compiler, not Linux); the message says what to install."""


def truth_server_source() -> Path:
    return Path(str(resources.files("inferperf.serving").joinpath("truth_server.c")))


def build_truth_server(cache: Path | None = None) -> Path:
    """The stand-in's binary, compiled once per source version into the user's cache."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None or not os.uname().sysname == "Linux":
        raise StandInUnavailable("the stand-in server is C for Linux (epoll, kernel receive stamps): install a C compiler (Debian: apt-get install gcc)")
    source = truth_server_source()
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    folder = cache or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "inferperf" / "truth-server"
    binary = folder / f"truth_server-{digest}"
    if not binary.exists():
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{binary.name}.{os.getpid()}"
        built = subprocess.run([compiler, "-O2", "-o", str(partial), str(source)], capture_output=True, text=True, timeout=120)
        if built.returncode != 0:
            raise StandInUnavailable(f"{compiler} could not build the stand-in server: {built.stderr.strip()[:300]}")
        os.replace(partial, binary)
    return binary


Interval = tuple[float, float]


@dataclass(frozen=True)
class Truth:
    """What the stand-in did for one request (seconds, CLOCK_MONOTONIC): when it arrived, and when
    each token's write returned and (``writes_before_s``) when it began."""

    received_s: float
    writes_s: tuple[float, ...]
    writes_before_s: tuple[float, ...]
    #: False: no kernel stamp came with the request and ``received_s`` is the stand-in's read of it,
    #: late by its wake-up, so the true TTFT is unknown (the stand-in keeps stamping on to prevent it)
    received_by_kernel: bool = True

    @property
    def ttft_s(self) -> float:
        return self.writes_s[0] - self.received_s

    def gaps_s(self) -> list[float]:
        return [b - a for a, b in zip(self.writes_s, self.writes_s[1:])]

    @property
    def ttft_interval_s(self) -> Interval:
        return self.writes_before_s[0] - self.received_s, self.ttft_s

    def gap_intervals_s(self) -> list[Interval]:
        """Each gap's shortest and longest: the next write's start − this one's end, and the reverse."""
        before, after = self.writes_before_s, self.writes_s
        return [(before[i + 1] - after[i], after[i + 1] - before[i]) for i in range(len(after) - 1)]


def read_truth(log: Path) -> dict[str, Truth]:
    """The stand-in's log: request id (its prompt) -> what it did."""
    found: dict[str, Truth] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        found[str(entry["id"])] = Truth(float(entry["received_s"]), tuple(float(t) for t in entry["writes_s"]),
                                        tuple(float(t) for t in entry["writes_before_s"]),
                                        entry.get("received_by", "kernel") == "kernel")
    return found


def outside(value: float, interval: Interval) -> float:
    """How far ``value`` lies outside ``interval`` (0 inside it)."""
    low, high = interval
    return max(low - value, value - high, 0.0)


@dataclass(frozen=True)
class Fidelity:
    """One round's client figures against the truth (seconds; an error is how far the client's figure
    lies outside the truth's interval)."""

    requests: int
    tokens: int
    tokens_per_s: float
    #: requests whose arrival the stand-in could only stamp with its own read: their TTFT is left out
    unstamped_arrivals: int
    ttft_p50_truth_s: float
    ttft_p50_client_s: float
    ttft_p99_truth_s: float
    ttft_p99_client_s: float
    itl_p50_truth_s: float
    itl_p50_client_s: float
    itl_p99_truth_s: float
    itl_p99_client_s: float
    #: request by request: how far the client's TTFT lies outside the true one's interval, p50 and p99
    ttft_error_p50_s: float
    ttft_error_p99_s: float
    #: token by token: how far the client's gap lies outside the true gap's interval, p50 and p99
    itl_error_p50_s: float
    itl_error_p99_s: float
    #: each percentile the record reports ("ttft_p50", ...): how far the client's lies outside the
    #: truth's interval (the ``*_truth_s`` figures above are from the stamps after the writes alone)
    percentile_errors_s: dict[str, float]

    @property
    def within_bound(self) -> bool:
        """Every percentile the record reports within the bound of the truth's."""
        return all(error <= (BOUND_P50_S if name.endswith("p50") else BOUND_P99_S) for name, error in self.percentile_errors_s.items())

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "within_bound": self.within_bound}


def compare(rounds: Sequence[RoundLoad], truth: dict[str, Truth], prompt_of: Callable[[ServedRequest], str]) -> Fidelity:
    """The client's TTFT and per-token ITL against the stand-in's log, for every completed request."""
    ttft_client, ttft_truth, ttft_interval, ttft_error = [], [], [], []
    itl_client, itl_truth, itl_interval, itl_error = [], [], [], []
    tokens, wall, compared, unstamped = 0, 0.0, 0, 0
    for rnd in rounds:
        wall += rnd.wall_s
        for record in rnd.requests:
            true = truth.get(prompt_of(record))
            if not record.ok or true is None or not record.chunk_times_s or record.send_s is None:
                continue
            times = record.chunk_times_s
            if len(times) != len(true.writes_s):
                continue  # chunks the client merged or lost: counted by the client's own checks, not here
            compared += 1
            tokens += len(times)
            if true.received_by_kernel:
                client = times[0] - record.send_s
                ttft_client.append(client)
                ttft_truth.append(true.ttft_s)
                ttft_interval.append(true.ttft_interval_s)
                ttft_error.append(outside(client, true.ttft_interval_s))
            else:
                unstamped += 1
            client_gaps = [b - a for a, b in zip(times, times[1:])]
            itl_client += client_gaps
            itl_truth += true.gaps_s()
            gap_intervals = true.gap_intervals_s()
            itl_interval += gap_intervals
            itl_error += [outside(c, t) for c, t in zip(client_gaps, gap_intervals)]

    def p(values: list[float], q: float) -> float:
        return percentile(values, q) or 0.0

    def truth_p(intervals: list[Interval], q: float) -> Interval:
        return p([low for low, _ in intervals], q), p([high for _, high in intervals], q)

    percentile_errors = {f"{name}_p{q}": outside(p(client_values, q), truth_p(truth_values, q))
                         for name, client_values, truth_values in (("ttft", ttft_client, ttft_interval), ("itl", itl_client, itl_interval))
                         for q in (50, 99)}

    return Fidelity(
        requests=compared, tokens=tokens, unstamped_arrivals=unstamped, tokens_per_s=tokens / wall if wall else 0.0,
        ttft_p50_truth_s=p(ttft_truth, 50), ttft_p50_client_s=p(ttft_client, 50),
        ttft_p99_truth_s=p(ttft_truth, 99), ttft_p99_client_s=p(ttft_client, 99),
        itl_p50_truth_s=p(itl_truth, 50), itl_p50_client_s=p(itl_client, 50),
        itl_p99_truth_s=p(itl_truth, 99), itl_p99_client_s=p(itl_client, 99),
        ttft_error_p50_s=p(ttft_error, 50), ttft_error_p99_s=p(ttft_error, 99),
        itl_error_p50_s=p(itl_error, 50), itl_error_p99_s=p(itl_error, 99),
        percentile_errors_s=percentile_errors,
    )


class TruthServer:
    """The stand-in on a free port of 127.0.0.1, its log in ``workspace``; stopped by PID."""

    def __init__(self, workspace: Path, *, first_ms: float = 20, gap_ms: float = 10, tokens: int = 64) -> None:
        from inferperf.serving.process import LOCALHOST, ServerProcess, free_port

        self.workspace, self.first_ms, self.gap_ms, self.tokens = workspace, first_ms, gap_ms, tokens
        self.port = free_port()
        self.base_url = f"http://{LOCALHOST}:{self.port}/v1"
        self.log = workspace / f"truth-{self.port}.jsonl"
        self.server = ServerProcess("the stand-in server", start_timeout_s=30, stop_timeout_s=5)

    def __enter__(self) -> "TruthServer":
        from inferperf.serving.openai.client import list_models

        binary = build_truth_server()

        def ready() -> bool:
            try:
                return list_models(self.base_url, 1.0) == ["truth"]
            except Exception:
                return False

        command = [str(binary), str(self.port), str(self.log), str(self.first_ms), str(self.gap_ms), str(self.tokens)]
        self.server.launch(command, self.workspace / f"truth-{self.port}.out", ready)
        return self

    def truth(self) -> dict[str, Truth]:
        """The log so far (each request is logged, and flushed, as its stream ends)."""
        return read_truth(self.log) if self.log.exists() else {}

    def __exit__(self, *exc: object) -> None:
        self.server.stop()


# --------------------------------------------------------------------------------------------
# What this machine's client can drive: ``inferperf client-ceiling``


@dataclass(frozen=True)
class CeilingStep:
    """One closed-loop step of the ramp against the stand-in."""

    streams: int
    tokens_per_s: float
    #: the busiest worker's CPU time / wall time
    client_cpu_fraction: float
    valid: bool
    within_bound: bool
    invalid_reason: str | None


def measure_ceiling(workspace: Path, *, workers: int = 1, streams: Sequence[int] = (32, 64, 128, 256, 384, 512, 768, 1024),
                    per_stream: int = 3, progress: Callable[[str], None] = lambda _: None) -> dict[str, object]:
    """Ramp closed-loop streams against the stand-in until the self-check calls a round invalid (or
    the truth says it is out of bound); the highest tokens/s both call good is the ceiling. Tokens
    per CPU-second of the client is what one core carries, ``per_core_tokens_per_s``."""
    from inferperf.metrics.served import Slo, served_metrics
    from inferperf.serving.loadgen import LoadRunner
    from inferperf.serving.openai.client import CompletionRequest, OpenAIStreamClient
    from inferperf.serving.workers import WorkerPool

    steps: list[CeilingStep] = []
    with TruthServer(workspace, first_ms=20, gap_ms=10, tokens=64) as server:
        client = OpenAIStreamClient(server.base_url, "truth", "openai")
        runner = WorkerPool(client, workers) if workers > 1 else LoadRunner(client)
        try:
            runner.run([CompletionRequest(f"warm-{i}", 64) for i in range(2 * workers)], LoadPoint("closed", concurrency=2 * workers))
            for count in streams:
                requests = [CompletionRequest(f"ceiling-{count}-{i}", 64) for i in range(count * per_stream)]
                if workers == 1:
                    client.prepare(requests)
                point = LoadPoint("closed", concurrency=count)
                rnd = runner.run(requests, point)
                fidelity = compare([rnd], server.truth(), lambda record: requests[record.index].prompt)
                metrics = served_metrics([rnd], point, Slo())
                cpu = max(rnd.worker_cpu_fractions or (0.0,))
                reason = metrics["invalid_reason"]
                step = CeilingStep(count, fidelity.tokens_per_s, cpu, bool(metrics["valid"]), fidelity.within_bound,
                                   str(reason) if reason else None)
                steps.append(step)
                progress(f"{count} streams: {step.tokens_per_s:,.0f} tokens/s, busiest client {cpu:.0%} of a core, "
                         f"{'valid' if step.valid else 'invalid'}, {'within' if step.within_bound else 'OUT OF'} bound"
                         + (f" ({step.invalid_reason})" if step.invalid_reason else ""))
                if not (step.valid and step.within_bound):
                    break
        finally:
            runner.close()
    good = [s for s in steps if s.valid and s.within_bound]
    best = max(good, key=lambda s: s.tokens_per_s) if good else None
    per_core = max((s.tokens_per_s / workers / s.client_cpu_fraction for s in good if s.client_cpu_fraction > 0), default=None)
    return {
        "workers": workers,
        "tokens_per_s": best.tokens_per_s if best else None,
        "streams": best.streams if best else None,
        "per_core_tokens_per_s": per_core,
        "stamp_source": "kernel",
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "steps": [asdict(s) for s in steps],
    }
