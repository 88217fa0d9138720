"""The load generator past one core: a round's schedule split across worker processes on one machine.

One client process carries about 60,000 streamed tokens/s within the fidelity bound on a core
(docs/techniques/served-generation.md); a fleet streams more. ``WorkerPool`` starts N worker
processes (spawned: a fresh interpreter each, its own event loop, connections and client), keeps
them across rounds as ``LoadRunner`` keeps its loop, and splits each round:

- **closed loop**: the streams dealt out among the workers, and the requests with them;
- **open loop**: the schedule laid out once in the parent (the same seeded arrivals one process
  would send), every N-th arrival to each worker, all due on the machine's one monotonic clock
  (CLOCK_MONOTONIC is shared by every process of a machine, so no clock needs correcting), and
  the in-flight cap divided among them.

Each worker sends, reads, stamps and then parses its own share; the records come back merged by
their index in the round, with each worker's CPU fraction and loop lags, so the self-check judges
every worker (the busiest decides) and the whole. The client must pickle (the served model's
tokenizer does; a lambda does not: ``TokenCounter``).
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Sequence

from inferperf.metrics.requests import LoadPoint, RoundLoad
from inferperf.serving.loadgen import (
    DEFAULT_TIMEOUT_S,
    LoadClient,
    LoadRunner,
    Share,
    whole_round,
)

#: how far ahead of the first arrival the parent lays the schedule: the workers must have the
#: round's message in hand before it starts
START_AHEAD_S = 0.25


def split_round(point: LoadPoint, count: int, workers: int, start_s: float) -> list[Share]:
    """The round's shares, one per worker: streams and requests dealt out, or every N-th arrival."""
    whole = whole_round(point, count, start_s)
    shares = []
    streams = point.concurrency or 1
    busy = min(workers, streams) if whole.due_s is None else workers  # a worker without a stream sends nothing
    for w in range(workers):
        indices = whole.indices[w::busy] if w < busy else ()
        if whole.due_s is None:
            shares.append(Share(indices, concurrency=streams // busy + (1 if w < streams % busy else 0)))
        else:
            cap = None
            if point.max_in_flight:
                cap = max(1, point.max_in_flight // workers + (1 if w < point.max_in_flight % workers else 0))
            shares.append(Share(indices, due_s=whole.due_s[w::workers], max_in_flight=cap))
    return shares


def merge_rounds(parts: Sequence[RoundLoad]) -> RoundLoad:
    """The workers' rounds as one: records by their index in the round, CPU added, the longest wall."""
    requests = sorted((r for part in parts for r in part.requests), key=lambda r: r.index)
    return RoundLoad(
        tuple(requests),
        client_cpu_s=sum(p.client_cpu_s for p in parts),
        wall_s=max((p.wall_s for p in parts), default=0.0),
        loop_lags_s=tuple(lag for p in parts for lag in p.loop_lags_s),
        worker_cpu_fractions=tuple(f for p in parts for f in p.worker_cpu_fractions),
    )


def _serve(conn: Connection, client: LoadClient, timeout_s: float) -> None:
    """A worker: one ``LoadRunner`` on its own loop, a round per message until told to stop."""
    runner = LoadRunner(client, timeout_s=timeout_s)
    conn.send("ready")
    try:
        while True:
            message = conn.recv()
            if message is None:
                break
            payloads, point, prompt_tokens, share = message
            conn.send(runner.run(payloads, point, prompt_tokens, share=share))
    finally:
        runner.close()


@dataclass
class WorkerPool:
    """N worker processes, each a client of its own; ``run`` a round as ``LoadRunner.run`` does."""

    client: LoadClient
    workers: int
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"a pool needs at least one worker, got {self.workers}")
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no loop or socket inherited
        self._pipes: list[Connection] = []
        self._processes = []
        for _ in range(self.workers):
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(child, self.client, self.timeout_s), daemon=True)
            process.start()
            self._pipes.append(parent)
            self._processes.append(process)
        for pipe in self._pipes:
            if not pipe.poll(120) or pipe.recv() != "ready":
                self.close()
                raise RuntimeError("a load-generator worker did not start within 120 s")

    def run(self, payloads: Sequence[Any], point: LoadPoint, prompt_tokens: Sequence[int | None] | None = None) -> RoundLoad:
        shares = split_round(point, len(payloads), self.workers, time.perf_counter() + START_AHEAD_S)
        for pipe, share in zip(self._pipes, shares):
            part = [payloads[i] for i in share.indices]
            tokens = [prompt_tokens[i] for i in share.indices] if prompt_tokens else None
            pipe.send((part, point, tokens, share))
        return merge_rounds([pipe.recv() for pipe in self._pipes])

    def close(self) -> None:
        for pipe in self._pipes:
            try:
                pipe.send(None)
            except (OSError, BrokenPipeError):
                pass
        for process in self._processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)
