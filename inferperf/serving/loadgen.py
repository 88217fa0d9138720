"""The one load generator of served benchmarks: arrival schedule, in-flight cap, per-request records.

A round sends a fixed number of requests through a ``LoadClient`` — the OpenAI-compatible
streaming client or the Triton client, so two servers differ only in their client — in one of two
modes:

- **closed loop**: ``concurrency`` streams, each sending its next request when its last one ends
  (the scheduled time of a request is when its stream became free: there is no schedule to lag);
- **open loop**: arrivals at ``rate_rps`` on a schedule fixed before the round starts (constant
  gaps, or Poisson: exponential gaps from a seeded generator, the same for every run), optionally
  with a cap on requests in flight. A request waiting for a slot waits in the client's queue and
  that wait is part of its latency from the schedule; the generator never waits for a response
  before sending the next arrival, so a slow server cannot slow the offered load (coordinated
  omission).

Every request is bounded by ``timeout_s`` and recorded whatever happens (a timeout, a refused
connection, a cut stream are errors in its record, never a dropped request). The client's CPU
time over the round and how late its loop wakes (a short timer sampled through the round) are
measured so ``inferperf.metrics.self_check`` can say when the client, not the server, set the
pace or the stamps. What is not sending or receiving — parsing the streams, counting tokens — is
the client's ``complete`` step, after the round's clock has stopped.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol, Sequence

import numpy as np

from inferperf.metrics.requests import LoadPoint, RoundLoad, ServedRequest

#: a client's send: fills ``record`` (send time, chunks, usage, done, error) and never raises
Sender = Callable[[ServedRequest, Any], Awaitable[None]]
DEFAULT_TIMEOUT_S = 60.0
#: the loop-lag probe's period: a timer this short, its lateness sampled through the round
LAG_PROBE_S = 0.005


class LoadClient(Protocol):
    """What the generator drives: ``open`` before the first round, ``send`` one request (fills its
    record, never raises), ``complete`` the round's records after the round (parse, count), ``close``."""

    async def open(self) -> None: ...

    async def send(self, record: ServedRequest, payload: Any) -> None: ...

    def complete(self, records: Sequence[ServedRequest]) -> None: ...

    async def close(self) -> None: ...


def arrival_offsets(point: LoadPoint, count: int) -> list[float]:
    """Seconds from the round's start at which each of ``count`` requests is due (open loop)."""
    if point.mode == "trace":
        if point.offsets_s is None or len(point.offsets_s) < count:
            raise ValueError("a trace replay needs the trace's time for every request it sends")
        return [t / (point.speed or 1.0) for t in point.offsets_s[:count]]
    if point.rate_rps is None or point.rate_rps <= 0:
        raise ValueError(f"an open-loop load needs a positive rate, got {point.rate_rps!r}")
    if point.mode == "constant":
        return [i / point.rate_rps for i in range(count)]
    window = count / point.rate_rps
    if point.mode == "poisson":
        # a Poisson process conditioned on ``count`` arrivals in its window: the arrival times are
        # independent uniform draws over the window, sorted. Unconditioned exponential gaps over a
        # dozen arrivals would offer, by chance, anything from half to twice the rate asked for.
        return sorted(np.random.default_rng(point.seed).uniform(0.0, window, size=count).tolist())
    if point.mode == "gamma":
        # gamma gaps of shape k (mean 1/rate: CV 1/sqrt(k), bursts below k = 1), scaled so the
        # round's arrivals span the window the rate asks for, as the Poisson schedule does
        shape = point.burstiness or 1.0
        gaps = np.random.default_rng(point.seed).gamma(shape, 1.0 / (shape * point.rate_rps), size=count)
        times = np.concatenate(([0.0], np.cumsum(gaps[:-1])))
        span = float(times[-1]) if count > 1 else 0.0
        return (times * ((window * (count - 1) / count) / span if span > 0 else 1.0)).tolist()
    raise ValueError(f"no arrival schedule for mode {point.mode!r}")


async def _bounded(send: Sender, record: ServedRequest, payload: Any, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(send(record, payload), timeout_s)
    except asyncio.TimeoutError:
        record.error = f"request {record.index}: no complete answer within {timeout_s:.0f} s"
        record.done_s = time.perf_counter()
    except Exception as exc:  # a sender that raised anyway: the request failed, the round goes on
        record.error = f"request {record.index}: {type(exc).__name__}: {exc}"
        record.done_s = time.perf_counter()


def _past(deadline_s: float | None) -> bool:
    """Whether a round bounded by duration is over for a stream that just finished its request (or
    session): it takes no more, and the requests left are never sent (not failures). The check comes
    after a request, never before a stream's first: that one is taken at the round's start, before
    its end by definition, so a process paused between laying out a round and starting it still
    sends one request a stream."""
    return deadline_s is not None and time.perf_counter() >= deadline_s


async def _closed_loop(send: Sender, records: list[ServedRequest], payloads: Sequence[Any], concurrency: int, timeout_s: float,
                       deadline_s: float | None = None) -> None:
    queue = iter(range(len(records)))

    async def stream() -> None:
        for index in queue:  # one shared iterator: each stream takes the next request when free
            record = records[index]
            record.scheduled_s = record.dispatched_s = time.perf_counter()
            await _bounded(send, record, payloads[index], timeout_s)
            if _past(deadline_s):
                return

    await asyncio.gather(*(stream() for _ in range(concurrency)))


async def _sessions_loop(send: Sender, records: list[ServedRequest], payloads: Sequence[Any], concurrency: int, timeout_s: float,
                         deadline_s: float | None = None) -> None:
    """Multi-turn sessions, ``concurrency`` at once: each session's turns in order, a turn due its
    think time after the previous turn's answer ended (lateness past that is the client's)."""
    sessions: dict[object, list[int]] = {}
    for index, payload in enumerate(payloads):
        sessions.setdefault(getattr(payload, "session", index), []).append(index)
    queue = iter(list(sessions.values()))

    async def stream() -> None:
        for turns in queue:
            due = time.perf_counter()
            for index in turns:
                record = records[index]
                record.scheduled_s = due
                await _until(due)
                record.dispatched_s = time.perf_counter()
                await _bounded(send, record, payloads[index], timeout_s)
                if not record.ok:  # a failed turn ends its session: the next turn's history would be a lie
                    for later in turns[turns.index(index) + 1:]:
                        records[later].error = f"request {later}: not sent: turn {index} of its session failed"
                    break
                due = time.perf_counter() + float(getattr(payloads[index], "think_s", 0.0) or 0.0)
            if _past(deadline_s):
                return

    await asyncio.gather(*(stream() for _ in range(concurrency)))


#: the event loop's timers wake up to a millisecond late: sleep until this long before an arrival,
#: then yield to the other tasks until it is due (a short, bounded spin per arrival)
SPIN_S = 0.0015


async def _until(due: float) -> None:
    delay = due - time.perf_counter()
    if delay > SPIN_S:
        await asyncio.sleep(delay - SPIN_S)
    while time.perf_counter() < due:
        await asyncio.sleep(0)


async def _open_loop(send: Sender, records: list[ServedRequest], payloads: Sequence[Any], due_s: Sequence[float],
                     max_in_flight: int | None, timeout_s: float) -> None:
    slots = asyncio.Semaphore(max_in_flight) if max_in_flight else None

    async def arrive(record: ServedRequest, payload: Any) -> None:
        if slots is None:
            await _bounded(send, record, payload, timeout_s)
            return
        async with slots:  # the wait for a slot is client queueing delay, inside latency from the schedule
            await _bounded(send, record, payload, timeout_s)

    tasks = []
    for record, payload, due in zip(records, payloads, due_s):
        record.scheduled_s = due
        await _until(due)
        record.dispatched_s = time.perf_counter()
        tasks.append(asyncio.ensure_future(arrive(record, payload)))
    await asyncio.gather(*tasks)


@dataclass(frozen=True)
class Share:
    """One process's part of a round: which of the round's requests it sends (their indices in the
    round), and how — its closed-loop streams, or (open loop) when each is due on the shared
    monotonic clock and its part of the in-flight cap."""

    indices: tuple[int, ...]
    concurrency: int | None = None
    due_s: tuple[float, ...] | None = None
    max_in_flight: int | None = None
    #: closed loop or sessions: when the streams stop taking requests (a round bounded by duration)
    deadline_s: float | None = None
    sessions: bool = False


def whole_round(point: LoadPoint, count: int, start_s: float) -> Share:
    """The round as one process sends it: every request, the schedule from ``start_s``."""
    if not point.open_loop:
        deadline = start_s + point.duration_s if point.duration_s else None
        return Share(tuple(range(count)), concurrency=point.concurrency or 1, deadline_s=deadline, sessions=point.mode == "sessions")
    return Share(tuple(range(count)), due_s=tuple(start_s + o for o in arrival_offsets(point, count)), max_in_flight=point.max_in_flight)


async def _probe_loop_lag(lags: list[float], period_s: float = LAG_PROBE_S) -> None:
    """Sleep ``period_s`` over and over, noting how late each wake-up came (until cancelled)."""
    while True:
        asked = time.perf_counter()
        await asyncio.sleep(period_s)
        lags.append(max(0.0, time.perf_counter() - asked - period_s))


async def run_round_async(client: LoadClient, payloads: Sequence[Any], point: LoadPoint, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                          prompt_tokens: Sequence[int | None] | None = None, share: Share | None = None) -> RoundLoad:
    """Send ``payloads`` (one request each) under ``point``'s load — or, with ``share``, this process's
    part of a round (``payloads`` then holds that part's requests) — every request recorded."""
    indices = share.indices if share else range(len(payloads))
    records = [
        ServedRequest(index=index, scheduled_s=0.0, prompt_tokens_client=prompt_tokens[i] if prompt_tokens else None,
                      turn=getattr(payloads[i], "turn", None))
        for i, index in enumerate(indices)
    ]
    # no cyclic collection while the load runs: a full pass over a session's objects stalled the
    # loop 40 ms at 256 streams (every chunk read in that window shared a later stamp)
    collecting = gc.isenabled()
    gc.disable()
    # the schedule (and a duration's clock) starts once the round is laid out and the collector off:
    # a CI run (tests in parallel, neighbours) once lost a 0.3 s round's whole duration before its start
    share = share or whole_round(point, len(payloads), time.perf_counter() + 0.005)
    lags: list[float] = []
    probe = asyncio.ensure_future(_probe_loop_lag(lags))
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    try:
        if share.due_s is not None:
            await _open_loop(client.send, records, payloads, share.due_s, share.max_in_flight, timeout_s)
        elif records:
            loop = _sessions_loop if share.sessions else _closed_loop
            await loop(client.send, records, payloads, share.concurrency or 1, timeout_s, share.deadline_s)
    finally:
        cpu_s, wall_s = time.process_time() - cpu_before, time.perf_counter() - wall_before
        probe.cancel()
        if collecting:
            gc.enable()
    if share.deadline_s is not None:  # requests a duration-bounded round never got to are not part of it
        records = [r for r in records if r.dispatched_s is not None]
    client.complete(records)  # after the round: parsing and counting are not the load's
    return RoundLoad(tuple(records), cpu_s, wall_s, tuple(lags), worker_cpu_fractions=(cpu_s / wall_s if wall_s > 0 else 0.0,))


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop where it is installed (a faster loop is a faster client), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


@dataclass
class LoadRunner:
    """Runs rounds on one event loop that outlives them (a client's connections stay open between
    rounds, as a long-running client's would); ``close`` ends the client and the loop."""

    client: LoadClient
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        self.loop = new_event_loop()
        self.loop.run_until_complete(self.client.open())

    def run(self, payloads: Sequence[Any], point: LoadPoint, prompt_tokens: Sequence[int | None] | None = None,
            share: Share | None = None) -> RoundLoad:
        return self.loop.run_until_complete(
            run_round_async(self.client, payloads, point, timeout_s=self.timeout_s, prompt_tokens=prompt_tokens, share=share)
        )

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.client.close())
        finally:
            self.loop.close()


def round_requests(point: LoadPoint, window_s: float, minimum: int = 4) -> int:
    """Requests one bounded round sends: the rate times the window (open loop), or ``concurrency``
    streams of a few requests each (closed loop)."""
    if point.open_loop:
        return max(minimum, int(round((point.rate_rps or 0) * window_s)))
    return max(minimum, (point.concurrency or 1) * 3)


def search_max_rate(meets: Callable[[float], bool], low_rps: float, high_rps: float, probes: int) -> tuple[float | None, list[tuple[float, bool]]]:
    """The highest rate in [low, high] at which ``meets(rate)`` holds, by bisection on a log scale in
    at most ``probes`` calls (each a bounded round): (best rate or None if even ``low`` fails, the probes)."""
    tried: list[tuple[float, bool]] = []
    if probes < 1 or not 0 < low_rps <= high_rps:
        raise ValueError("search_max_rate needs 0 < low <= high and at least one probe")
    ok = meets(low_rps)
    tried.append((low_rps, ok))
    if not ok:
        return None, tried
    best, lo, hi = low_rps, low_rps, high_rps
    if len(tried) < probes:
        ok = meets(hi)
        tried.append((hi, ok))
        if ok:
            return hi, tried
    while len(tried) < probes:
        mid = float(np.sqrt(lo * hi))
        ok = meets(mid)
        tried.append((mid, ok))
        if ok:
            best, lo = mid, mid
        else:
            hi = mid
    return best, tried
