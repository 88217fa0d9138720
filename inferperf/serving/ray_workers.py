"""The load generator past one machine: its workers as Ray actors on the nodes of a cluster.

``RayPool`` is ``WorkerPool`` (``inferperf.serving.workers``) with each worker a Ray actor
(``pip install -e '.[ray]'``), spread over the nodes of the cluster at ``address`` — or of a local
Ray instance when none is given. The round is split as on one machine; what changes is the clock.

**The clock model.** A node's CLOCK_MONOTONIC is its own: no two machines share one. So

- each worker measures every latency on its own monotonic clock (a TTFT or a gap is a difference of
  two readings of one clock: no correction enters it);
- the round starts at one wall-clock instant ``T0`` of the coordinating process; each worker's
  real-time clock differs from the coordinator's by an offset ``θ`` measured before every round,
  NTP-style: the coordinator asks for the worker's real time between two readings of its own,
  ``θ = t_worker − (t_sent + t_back) / 2``, from the exchange with the shortest round trip of
  ``CLOCK_SAMPLES``; its uncertainty is half that round trip;
- a worker starts its share of the schedule at ``T0 + θ`` on its real-time clock, read as its own
  monotonic time; its records come back shifted onto the coordinator's monotonic clock (by its
  real-time offset, ``θ`` and the coordinator's), so the whole round's window, rates and goodput
  are computed on one clock;
- ``θ`` and its uncertainty are recorded per worker (``RoundLoad.clock``), and a round whose
  largest uncertainty exceeds the fidelity bound at p50 (1 ms) is invalid: its workers' arrivals
  may be misaligned by more than the figures can carry.

For testing the model on one machine, a worker can be given an injected ``clock_skew_s``: its
real-time readings are off by that much, as another node's would be.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from inferperf.metrics.requests import LoadPoint, RoundLoad, ServedRequest
from inferperf.serving.loadgen import DEFAULT_TIMEOUT_S, LoadClient, LoadRunner, Share
from inferperf.serving.workers import START_AHEAD_S, merge_rounds, split_round

#: clock exchanges per worker and round; the one with the shortest round trip is kept
CLOCK_SAMPLES = 20


def realtime_minus_monotonic(skew_s: float = 0.0) -> float:
    """This process's real-time clock (plus an injected ``skew_s``) minus ``time.perf_counter``."""
    return time.clock_gettime(time.CLOCK_REALTIME) + skew_s - time.perf_counter()


class RayLoadWorker:
    """One worker on a node: a ``LoadRunner`` (its own loop, connections, client) and its clock."""

    def __init__(self, client: LoadClient, timeout_s: float, clock_skew_s: float = 0.0) -> None:
        self.skew = clock_skew_s
        self.runner = LoadRunner(client, timeout_s=timeout_s)

    def node(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def realtime(self) -> float:
        return time.clock_gettime(time.CLOCK_REALTIME) + self.skew

    def run(self, payloads: Sequence[Any], point: LoadPoint, prompt_tokens: Sequence[int | None] | None, share: Share,
            start_realtime_s: float) -> tuple[RoundLoad, float]:
        """This worker's share, due from ``start_realtime_s`` on its real-time clock (``share.due_s`` are
        offsets from the start); returns the round and this worker's real-time − monotonic offset."""
        offset = realtime_minus_monotonic(self.skew)
        start = start_realtime_s - offset  # on this process's monotonic clock
        if share.due_s is not None:
            share = replace(share, due_s=tuple(start + due for due in share.due_s))
        else:
            wait = start - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        return self.runner.run(payloads, point, prompt_tokens, share=share), offset

    def close(self) -> None:
        self.runner.close()


@dataclass(frozen=True)
class ClockEstimate:
    """A worker's real-time offset from the coordinator's, and how sure: half the shortest round trip."""

    node: str
    offset_s: float
    uncertainty_s: float


def _shift(record: ServedRequest, by: float) -> ServedRequest:
    """``record`` with every time moved by ``by`` seconds (onto the coordinator's clock)."""
    times = ("scheduled_s", "dispatched_s", "send_s", "first_byte_s", "done_s")
    moved = replace(record, **{name: getattr(record, name) + by for name in times if getattr(record, name) is not None})
    moved.chunk_times_s = [t + by for t in record.chunk_times_s]
    return moved


@dataclass
class RayPool:
    """``workers`` Ray actors spread over the cluster at ``address`` (None: a local Ray instance)."""

    client: LoadClient
    workers: int
    address: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    #: injected real-time skew per worker (testing the clock model on one machine)
    clock_skews_s: Sequence[float] = ()
    clocks: list[ClockEstimate] = field(default_factory=list)

    def __post_init__(self) -> None:
        import ray

        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(include_dashboard=False, log_to_driver=False, num_cpus=max(2, self.workers))
        actor: Any = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(RayLoadWorker)
        skews = list(self.clock_skews_s) + [0.0] * self.workers
        self._actors: list[Any] = [actor.remote(self.client, self.timeout_s, skews[w]) for w in range(self.workers)]
        self._nodes = ray.get([a.node.remote() for a in self._actors])

    def measure_clocks(self) -> list[ClockEstimate]:
        """Each worker's real-time offset from this process's, NTP-style from the shortest exchange."""
        import ray

        found = []
        for actor, node in zip(self._actors, self._nodes):
            best = (float("inf"), 0.0)
            for _ in range(CLOCK_SAMPLES):
                sent = time.clock_gettime(time.CLOCK_REALTIME)
                theirs = ray.get(actor.realtime.remote())
                back = time.clock_gettime(time.CLOCK_REALTIME)
                if back - sent < best[0]:
                    best = (back - sent, theirs - (sent + back) / 2)
            found.append(ClockEstimate(node, best[1], best[0] / 2))
        self.clocks = found
        return found

    def run(self, payloads: Sequence[Any], point: LoadPoint, prompt_tokens: Sequence[int | None] | None = None) -> RoundLoad:
        import ray

        clocks = self.measure_clocks()
        shares = split_round(point, len(payloads), self.workers, 0.0)  # open-loop due times as offsets from the start
        start = time.clock_gettime(time.CLOCK_REALTIME) + START_AHEAD_S
        futures = []
        for actor, share, clock in zip(self._actors, shares, clocks):
            part = [payloads[i] for i in share.indices]
            tokens = [prompt_tokens[i] for i in share.indices] if prompt_tokens else None
            futures.append(actor.run.remote(part, point, tokens, share, start + clock.offset_s))
        ours = realtime_minus_monotonic()
        parts = []
        for (rnd, their_offset), clock in zip(ray.get(futures), clocks):
            by = their_offset - clock.offset_s - ours  # their monotonic -> real time -> ours -> our monotonic
            parts.append(replace(rnd, requests=tuple(_shift(r, by) for r in rnd.requests)))
        merged = merge_rounds(parts)
        return replace(merged, clock={c.node[:12] + f"#{i}": {"offset_s": c.offset_s, "uncertainty_s": c.uncertainty_s} for i, c in enumerate(clocks)})

    def close(self) -> None:
        import ray

        try:
            ray.get([a.close.remote() for a in self._actors], timeout=30)
        except Exception:  # a worker already gone: nothing left to close
            pass
        for actor in self._actors:
            ray.kill(actor)
