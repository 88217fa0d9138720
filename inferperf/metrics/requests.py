"""What a served round is made of: one record per request, the load that was offered, the round.

The load generator (``inferperf.serving.loadgen``) fills these as requests go out and come back;
the metrics (``inferperf.metrics.served``) and the self-check (``inferperf.metrics.self_check``)
read them. Times are seconds on the generator's clock (``time.perf_counter``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from inferperf.metrics.generation import RequestTiming


@dataclass
class ServedRequest:
    """What one request did, in seconds on the load generator's clock (``time.perf_counter``)."""

    index: int
    #: when the arrival schedule said to send it (closed loop: when its stream became free)
    scheduled_s: float
    prompt_tokens_client: int | None = None
    #: when the generator's loop got to it (its lag behind the schedule is the client's fault)
    dispatched_s: float | None = None
    #: when it went out, after any wait for an in-flight slot (that wait is client queueing delay)
    send_s: float | None = None
    #: how long after ``send_s`` the send of its last byte returned: it left the client within
    #: [send_s, send_s + send_slack_s] (0 where the client does not stamp after the send)
    send_slack_s: float = 0.0
    first_byte_s: float | None = None
    chunk_times_s: list[float] = field(default_factory=list)
    chunk_tokens: list[int] = field(default_factory=list)
    #: per chunk, what it carried where not all content: "content", "reasoning" or "tool" (empty: all content)
    chunk_kinds: list[str] = field(default_factory=list)
    #: multi-turn traffic: the request's turn in its session (0-based)
    turn: int | None = None
    done_s: float | None = None
    prompt_tokens_server: int | None = None
    completion_tokens_server: int | None = None
    #: tokens the client's tokenizer counted in the streamed text (None: no tokenizer, one per chunk)
    completion_tokens_client: int | None = None
    finish_reason: str | None = None
    status: int | None = None
    error: str | None = None
    warmup: bool = False
    #: where the arrival stamps come from: "kernel" (the socket's receive time) or "user" (when
    #: the client's loop read the bytes)
    stamp_source: str = "user"
    #: per read of the response, how long the bytes had waited in the socket before the client's
    #: loop read them (user-space stamp − kernel stamp): the receive side's lag
    receive_lags_s: list[float] = field(default_factory=list)
    #: token chunks that arrived in one read with a later chunk: their stamp is the later one's
    shared_read_chunks: int = 0
    #: per chunk, how much earlier than its stamp it may have arrived: 0 when the read's kernel stamp
    #: is its own packet's, else the time since the connection's previous read (its bytes waited in
    #: the socket behind a later chunk's); empty when the stamps are user-space only
    chunk_slack_s: list[float] = field(default_factory=list)
    #: the request carried the client's length-forcing fields (False after a server refused them)
    length_forced: bool = True
    #: the wire's raw exchange until the client parses it after the round (not part of the record)
    raw: object = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None and self.done_s is not None and self.send_s is not None

    @property
    def completion_tokens(self) -> int:
        """Tokens generated: the server's ``usage`` when it gave one, else the chunks' counts."""
        if self.completion_tokens_server is not None:
            return self.completion_tokens_server
        return sum(self.chunk_tokens)

    @property
    def token_count_mismatch(self) -> bool:
        """The client tokenizer's count differs from the server's ``usage`` (either side present)."""
        client, server = self.completion_tokens_client, self.completion_tokens_server
        prompt_client, prompt_server = self.prompt_tokens_client, self.prompt_tokens_server
        return (client is not None and server is not None and client != server) or (
            prompt_client is not None and prompt_server is not None and prompt_client != prompt_server
        )

    def token_times_s(self) -> tuple[float, ...]:
        """One time per generated token: each chunk's arrival repeated for the tokens it carried.

        When the server's count exceeds the chunks' (tokens that produced no text of their own,
        e.g. an unfinished UTF-8 sequence at the end), the rest arrived with the last chunk."""
        times: list[float] = []
        for arrived, tokens in zip(self.chunk_times_s, self.chunk_tokens):
            times.extend([arrived] * tokens)
        missing = self.completion_tokens - len(times)
        if missing > 0 and times:
            times.extend([times[-1]] * missing)
        return tuple(times)

    def timing(self, reference: str = "send") -> RequestTiming | None:
        """The request's token times against its send or its scheduled time (None if it failed)."""
        if not self.ok:
            return None
        start = self.send_s if reference == "send" else self.scheduled_s
        return RequestTiming(start_s=start, token_times_s=self.token_times_s(), prompt_tokens=self.prompt_tokens_server or 0)  # type: ignore[arg-type]

    def e2e_s(self, reference: str = "send") -> float | None:
        if not self.ok:
            return None
        start = self.send_s if reference == "send" else self.scheduled_s
        return self.done_s - start  # type: ignore[operator]

    def chunk_gaps_s(self) -> list[float]:
        times = [t for t, n in zip(self.chunk_times_s, self.chunk_tokens) if n > 0]
        return [b - a for a, b in zip(times, times[1:])]


@dataclass(frozen=True)
class LoadPoint:
    """What a round offered: the load mode and its parameters (recorded under ``load``).

    Modes: ``closed`` (``concurrency`` streams), ``sessions`` (``concurrency`` multi-turn sessions at
    once, each turn sent when the last one's answer ended plus its think time), and the open loops
    ``constant``, ``poisson``, ``gamma`` (gaps gamma-distributed with shape ``burstiness``: 1 is
    Poisson, below 1 burstier, above more regular) at ``rate_rps``, and ``trace`` (each request at
    its time in a trace, ``offsets_s``, divided by ``speed``)."""

    mode: str  # "closed", "sessions", "constant", "poisson", "gamma", "trace"
    concurrency: int | None = None
    rate_rps: float | None = None
    max_in_flight: int | None = None
    seed: int | None = None
    burstiness: float | None = None
    #: a closed loop's (or sessions') streams stop taking requests this long after the round starts
    duration_s: float | None = None
    #: trace replay: the trace's own times, seconds from its first request, and the speed-up applied
    offsets_s: tuple[float, ...] | None = field(default=None, repr=False)
    speed: float | None = None

    @property
    def open_loop(self) -> bool:
        return self.mode not in ("closed", "sessions")

    def as_record(self) -> dict[str, object]:
        labels = {"closed": "closed loop", "sessions": "closed loop, multi-turn sessions", "constant": "open loop, constant arrivals",
                  "poisson": "open loop, Poisson arrivals", "gamma": "open loop, gamma arrivals", "trace": "open loop, trace replay"}
        record: dict[str, object] = {"mode": self.mode, "label": labels[self.mode], "concurrency": self.concurrency,
                                     "rate_rps": self.rate_rps, "max_in_flight": self.max_in_flight, "seed": self.seed}
        for key in ("burstiness", "duration_s", "speed"):
            if getattr(self, key) is not None:
                record[key] = getattr(self, key)
        return record


@dataclass(frozen=True)
class RoundLoad:
    """One round's requests (warm-ups excluded by the caller) and the client's own cost."""

    requests: tuple[ServedRequest, ...]
    client_cpu_s: float
    wall_s: float
    #: how late the client's event loop woke for a short timer, sampled through the round: how busy
    #: the loop was, the same for sends and reads
    loop_lags_s: tuple[float, ...] = ()
    #: each client process's CPU time over its wall time (one entry: one process; ``client_cpu_s``
    #: is their sum, ``wall_s`` the longest)
    worker_cpu_fractions: tuple[float, ...] = ()
    #: workers on other nodes (Ray): each one's real-time offset from the coordinator and its
    #: uncertainty, seconds (None: one machine, one monotonic clock)
    clock: Mapping[str, Mapping[str, float]] | None = None


def _since(origin: float, stamp: float | None) -> float | None:
    return None if stamp is None else stamp - origin


def request_rows(rounds: Sequence[RoundLoad]) -> list[dict[str, object]]:
    """Every request of ``rounds`` as one flat record (``--served-requests``: a line of JSON each).

    Times are seconds since the round's origin (its earliest scheduled send), so a round's rows read
    on their own; the per-request latencies are the ones the case's distributions are made of
    (``inferperf.metrics.served``): ``ttft_s``, ``tpot_s`` and ``e2e_s`` from the send, the
    ``*_from_schedule_s`` from the scheduled time; ``token_times_s`` holds one arrival per token (a
    chunk's stamp repeated for the tokens it carried). A failed request has its error and no latencies.
    """
    rows: list[dict[str, object]] = []
    for number, rnd in enumerate(rounds):
        if not rnd.requests:
            continue
        origin = min(r.scheduled_s for r in rnd.requests)
        for request in rnd.requests:
            sent, scheduled = request.timing("send"), request.timing("schedule")
            rows.append({
                "round": number,
                "index": request.index,
                "turn": request.turn,
                "ok": request.ok,
                "scheduled_s": request.scheduled_s - origin,
                "dispatched_s": _since(origin, request.dispatched_s),
                "send_s": _since(origin, request.send_s),
                "send_slack_s": request.send_slack_s,
                "first_byte_s": _since(origin, request.first_byte_s),
                "done_s": _since(origin, request.done_s),
                "token_times_s": [t - origin for t in sent.token_times_s] if sent else [],
                "chunk_tokens": list(request.chunk_tokens),
                "ttft_s": sent.ttft_s if sent else None,
                "ttft_from_schedule_s": scheduled.ttft_s if scheduled else None,
                "tpot_s": sent.tpot_s if sent else None,
                "e2e_s": request.e2e_s("send"),
                "e2e_from_schedule_s": request.e2e_s("schedule"),
                "prompt_tokens_client": request.prompt_tokens_client,
                "prompt_tokens_server": request.prompt_tokens_server,
                "completion_tokens": request.completion_tokens if request.ok else None,
                "completion_tokens_client": request.completion_tokens_client,
                "finish_reason": request.finish_reason,
                "status": request.status,
                "error": request.error,
                "stamp_source": request.stamp_source,
            })
    return rows
