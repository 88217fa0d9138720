"""The load generator held against ground truth: a stand-in server (``inferperf/serving/truth_server.c``)
logs when each request reached its socket and when it wrote each token; the client's TTFT and ITL
must be within the fidelity bound of that log wherever its self-check calls a round valid, and the
bound the self-check computes from its own stamps must cover the error it really made."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from inferperf.metrics.requests import LoadPoint, RoundLoad, ServedRequest
from inferperf.metrics.served import Slo, served_metrics
from inferperf.serving.fidelity import (
    Fidelity,
    StandInUnavailable,
    Truth,
    TruthServer,
    build_truth_server,
    compare,
)
from inferperf.serving.loadgen import LoadRunner
from inferperf.serving.openai.client import CompletionRequest, OpenAIStreamClient

#: slack for the two processes' clocks: each turns the kernel's real-time stamps into monotonic
#: time with an offset it measured to a few microseconds
TRUTH_SLACK_S = 0.0002


@pytest.fixture(scope="module")
def truth_server(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("numpy")
    try:
        build_truth_server()
    except StandInUnavailable as exc:
        pytest.skip(str(exc))
    with TruthServer(tmp_path_factory.mktemp("truth"), first_ms=20, gap_ms=10, tokens=32) as server:
        yield server


def _round(server: TruthServer, client: OpenAIStreamClient, streams: int, per_stream: int, tag: str) -> tuple[RoundLoad, Fidelity, dict]:
    requests = [CompletionRequest(f"{tag}-{i}", 32) for i in range(streams * per_stream)]
    client.prepare(requests)
    runner = LoadRunner(client, timeout_s=30)
    try:
        point = LoadPoint("closed", concurrency=streams)
        rnd = runner.run(requests, point)
    finally:
        runner.close()
    fidelity = compare([rnd], server.truth(), lambda record: requests[record.index].prompt)
    assert fidelity.unstamped_arrivals == 0, "the stand-in stamped a request with its own read, not the kernel's stamp"
    check = served_metrics([rnd], point, Slo())["self_check"]
    return rnd, fidelity, check  # type: ignore[return-value]


def _assert_bound_covers_the_error(rnd: RoundLoad, fidelity: Fidelity, check: dict) -> None:
    """The self-check's stamp-error bound covers the error the client really made, at each percentile;
    a failure says, first and short, what a CI log needs to read it (pytest cuts long messages)."""
    for name, error in fidelity.percentile_errors_s.items():
        bound = check[f"{name}_stamp_error_bound_s"] or 0.0
        if error > bound + TRUTH_SLACK_S:
            ok = sum(r.ok for r in rnd.requests)
            pytest.fail(f"{name}: error {error * 1e3:.2f} ms > bound {bound * 1e3:.2f} ms; compared {fidelity.requests} of "
                        f"{len(rnd.requests)} requests ({ok} ok); shared reads {check['shared_read_chunk_fraction']}; "
                        f"client {getattr(fidelity, name + '_client_s', None)} s, truth {getattr(fidelity, name + '_truth_s', None)} s; "
                        f"errors {({k: round(v * 1e3, 2) for k, v in fidelity.percentile_errors_s.items()})} ms")


def _request(index: int, send_s: float, chunk_times_s: list[float]) -> ServedRequest:
    return ServedRequest(index=index, scheduled_s=send_s, send_s=send_s, chunk_times_s=chunk_times_s, done_s=chunk_times_s[-1], status=200)


def test_a_truth_stamped_late_by_a_preempted_server_is_not_counted_as_client_error() -> None:
    """The stand-in stamps around each write: when it was preempted between a write and its stamp
    (1.5 ms here), the token's truth is the interval, and a client that read the token when it was
    written is right; a client 2 ms late is still 2 ms off the far end of the interval."""
    ms = 0.001
    writes_before = (10 * ms, 20 * ms, 30 * ms, 40 * ms)
    writes = (10.01 * ms, 21.5 * ms, 30.01 * ms, 40.01 * ms)  # the second write's stamp 1.5 ms late
    truth = {"a": Truth(0.0, writes, writes_before), "b": Truth(0.0, writes, writes_before)}
    on_time = _request(0, 0.0, [10.005 * ms, 20.005 * ms, 30.005 * ms, 40.005 * ms])
    late = _request(1, 0.0, [10.005 * ms, 23.5 * ms, 30.005 * ms, 40.005 * ms])
    rnd = RoundLoad(requests=(on_time, late), client_cpu_s=0.01, wall_s=0.05)
    fidelity = compare([rnd], truth, lambda record: "ab"[record.index])
    assert fidelity.requests == 2 and fidelity.ttft_error_p99_s == 0.0
    # the stamps after the writes alone put the on-time client's gaps 1.5 ms off; the interval does not
    assert abs(fidelity.itl_p99_client_s - fidelity.itl_p99_truth_s) > ms
    assert fidelity.percentile_errors_s["itl_p50"] == 0.0
    assert fidelity.itl_error_p50_s == 0.0
    # the late read: 23.5 ms against a write done by 21.5 ms is 2 ms outside, and still counted
    assert abs(fidelity.itl_error_p99_s - 2 * ms) < 0.05 * ms, fidelity
    assert fidelity.percentile_errors_s["itl_p99"] > ms, fidelity


def test_a_read_the_kernel_left_unstamped_is_not_exact_and_its_loop_lag_bounds_a_request_without_stamps() -> None:
    """Stamping is machine-wide and the kernel turns it on lazily: a read can come without a kernel
    stamp in a connection whose other reads have one. Its chunk carries the loop's stamp, so it is
    exact no more: it came at some point since the previous read. And a request none of whose reads
    were stamped, in a round whose others were, takes the loop's lateness as its slack, not 0."""
    from inferperf.metrics.self_check import self_check
    from inferperf.serving.openai.client import parse_stream
    from inferperf.serving.wire import Exchange

    events = [b'data: {"choices": [{"text": " a", "finish_reason": null}]}\n\n',
              b'data: {"choices": [{"text": " b", "finish_reason": "length"}]}\n\n', b"data: [DONE]\n\n"]
    exchange = Exchange(send_s=0.0, sent_s=0.0, status=200)
    for user, kernel, data in ((0.0205, 0.0201, events[0]), (0.0350, None, events[1]), (0.0352, 0.0351, events[2])):
        exchange.body += data
        exchange.read_user_s.append(user)
        exchange.read_kernel_s.append(kernel)
        exchange.read_body_end.append(len(exchange.body))
    record = ServedRequest(index=0, scheduled_s=0.0, send_s=0.0)
    parse_stream(record, exchange, None)
    assert record.chunk_times_s == [0.0201, 0.0350]
    assert record.chunk_slack_s[0] == 0.0  # its read ended with it, and the kernel stamped it
    assert abs(record.chunk_slack_s[1] - (0.0350 - 0.0205)) < 1e-12  # since the previous read, not 0

    stamped = _request(0, 0.0, [0.020, 0.030])
    stamped.chunk_slack_s, stamped.stamp_source = [0.0, 0.0], "kernel"
    unstamped = _request(1, 0.0, [0.024, 0.034])  # no per-chunk slack: none of its reads had a kernel stamp
    rnd = RoundLoad(requests=(stamped, unstamped), client_cpu_s=0.01, wall_s=0.05, loop_lags_s=(0.004,) * 20)
    check = self_check(rnd, LoadPoint("closed", concurrency=2), None, None)
    assert check["stamp_source"] == "kernel"
    assert check["ttft_p99_stamp_error_bound_s"] > 0.003, check  # the unstamped request's 4 ms of loop lag, not 0


def test_a_request_the_stand_in_read_late_is_logged_when_it_reached_the_socket(tmp_path: Path) -> None:
    """A fresh stand-in, stopped while a connection opens and a request comes on it from a client
    that asks for no stamps itself, logs the kernel's arrival, not its own read 50 ms later. (When
    it asked for stamps only on accepted sockets, the kernel had stamping off whenever nothing else
    on the machine held it on, and such a request was logged as read: 1 round in 5 on a quiet VM.)"""
    import json
    import os
    import signal
    import socket

    from inferperf.serving.wire import release_kernel_stamping

    release_kernel_stamping()  # this process's own clients hold stamping on: the stand-in must not need them
    with TruthServer(tmp_path, first_ms=5, gap_ms=5, tokens=2) as server:
        pid = server.server.pid
        assert pid is not None
        body = json.dumps({"model": "truth", "prompt": "read-late", "max_tokens": 2, "stream": True}).encode()
        request = (f"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        os.kill(pid, signal.SIGSTOP)
        try:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)  # the kernel accepts it for the stopped server
            sock.sendall(request)
            sent = time.perf_counter()
            time.sleep(0.05)
        finally:
            os.kill(pid, signal.SIGCONT)
        with sock:
            response = b""
            while b"[DONE]" not in response:
                data = sock.recv(65536)
                if not data:
                    break
                response += data
        truth = server.truth()["read-late"]
    assert truth.received_by_kernel, "the stand-in had no kernel stamp for a request that arrived while it was stopped"
    assert truth.received_s <= sent + TRUTH_SLACK_S, f"logged {(truth.received_s - sent) * 1e3:.1f} ms after the send returned"


def test_a_client_holds_the_kernels_stamping_on_before_its_first_packet() -> None:
    """Bytes that reach a socket while no socket on the machine asks for stamps are never stamped.
    The client's pool holds stamping on from its creation: bytes sent after it to a socket that asks
    for stamps only once they are there still come with the kernel's stamp."""
    import socket

    from inferperf.serving.wire import SO_TIMESTAMPNS, ConnectionPool, kernel_stamps_available, release_kernel_stamping

    if not kernel_stamps_available():
        pytest.skip("kernel receive stamps are Linux's")
    release_kernel_stamping()
    ConnectionPool("127.0.0.1", 9)  # holds stamping on; it connects to nothing until asked
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(server.getsockname()) as client:
        accepted, _ = server.accept()
        with accepted:
            client.sendall(b"x")
            time.sleep(0.01)
            accepted.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)  # asked only now: the stamp is from the arrival
            _, ancillary, _, _ = accepted.recvmsg(1, 64)
    assert any(kind == SO_TIMESTAMPNS for _, kind, _ in ancillary), "the byte arrived unstamped"


@pytest.mark.parametrize("streams", [1, 16, 128])
def test_a_round_called_valid_is_within_the_bound_of_the_truth(truth_server: TruthServer, streams: int) -> None:
    client = OpenAIStreamClient(truth_server.base_url, "truth", "openai")
    rnd, fidelity, check = _round(truth_server, client, streams, 2, f"valid{streams}")
    assert fidelity.requests == len(rnd.requests), "every request is in the truth's log and was compared"
    assert all(r.stamp_source == "kernel" for r in rnd.requests)
    errors = fidelity.percentile_errors_s
    # the bound the client derives from its own stamps covers the error it really made
    _assert_bound_covers_the_error(rnd, fidelity, check)
    if check["valid"]:
        assert fidelity.within_bound, (errors, check)
    else:  # a busy machine may make a round invalid; then the reason is named
        assert check["invalid_reason"]


class StallingClient(OpenAIStreamClient):
    """The suite's client with a loop that something else keeps busy: 25 ms of work every 30 ms."""

    async def open(self) -> None:
        await super().open()
        self._stall = asyncio.ensure_future(self._busy())

    async def _busy(self) -> None:
        while True:
            time.sleep(0.025)  # noqa: ASYNC251 - blocking the loop is the point
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        self._stall.cancel()
        await super().close()


def test_a_client_that_reads_late_is_out_of_bound_and_says_so(truth_server: TruthServer) -> None:
    """A loop blocked 25 ms at a time reads tokens 10 ms apart in bunches: its stamps are late, the
    figures wrong, and the self-check must not call the round valid (the test fails if it does)."""
    for attempt in range(3):  # pausing client and stand-in together (scripts/pause-tests) once left the errors inside
        client = StallingClient(truth_server.base_url, "truth", "openai")
        rnd, fidelity, check = _round(truth_server, client, 16, 2, f"stalled{attempt}")
        errors = fidelity.percentile_errors_s
        if not fidelity.within_bound:  # the stall really did make the client wrong ...
            break
    else:
        pytest.fail(f"a loop blocked 25 ms in every 30 left the client within the bound in 3 rounds: {errors}")
    assert not check["valid"] and "uncertain" in check["invalid_reason"], check  # ... and it says so
    _assert_bound_covers_the_error(rnd, fidelity, check)
    assert check["shared_read_chunk_fraction"] > 0.1


class HeldSend:
    """A socket whose sends start 3 ms after they are asked for: a client preempted between its send
    stamp and the syscall (a neighbour's pause on CI put 0.6 ms there)."""

    def __init__(self, sock: object) -> None:
        self._sock = sock

    def send(self, data: bytes) -> int:
        time.sleep(0.003)
        return self._sock.send(data)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)


def test_a_send_held_after_its_stamp_widens_the_ttft_bound_it_really_missed_by(truth_server: TruthServer, monkeypatch) -> None:
    """The stamp after the send bounds when the request left: the TTFT error a held send really causes
    (3 ms against the truth) is inside the self-check's bound, and the round is not called valid."""
    from inferperf.serving import wire

    connect = wire.Connection.connect

    async def held(self: wire.Connection, loop: asyncio.AbstractEventLoop) -> None:
        await connect(self, loop)
        self.sock = HeldSend(self.sock)  # type: ignore[assignment]

    monkeypatch.setattr(wire.Connection, "connect", held)
    client = OpenAIStreamClient(truth_server.base_url, "truth", "openai")
    rnd, fidelity, check = _round(truth_server, client, 2, 2, "held")
    assert all(r.send_slack_s >= 0.003 for r in rnd.requests), [r.send_slack_s for r in rnd.requests]
    errors = fidelity.percentile_errors_s
    assert errors["ttft_p50"] >= 0.0025, errors  # the client's TTFT really was 3 ms long ...
    _assert_bound_covers_the_error(rnd, fidelity, check)  # ... and its bound says so
    assert not check["valid"] and "TTFT" in check["invalid_reason"], check


def test_the_stand_in_keeps_its_schedule(truth_server: TruthServer, tmp_path: Path) -> None:
    # in one of two rounds: a pause of the stand-in (a VM's, 0.3 s) makes it write every overdue token at once when it
    # resumes — what it really did, so its log says so, but not its schedule; a stand-in off its schedule is off in both
    medians = []
    for attempt in range(2):
        client = OpenAIStreamClient(truth_server.base_url, "truth", "openai")
        _, fidelity, _ = _round(truth_server, client, 4, 1, f"schedule{attempt}")
        medians.append((fidelity.ttft_p50_truth_s, fidelity.itl_p50_truth_s))
        if abs(medians[-1][0] - 0.020) < 0.002 and abs(medians[-1][1] - 0.010) < 0.002:
            return
    pytest.fail(f"the stand-in's TTFT and gap medians were {medians} s, not (0.020, 0.010) within 2 ms")


def test_worker_processes_split_the_round_and_keep_to_the_truth(truth_server: TruthServer) -> None:
    """Two worker processes: every request sent once, records merged by index, each worker's CPU
    recorded, and the merged round as true to the stand-in's log as one process's."""
    from inferperf.serving.workers import WorkerPool

    requests = [CompletionRequest(f"workers-{i}", 32) for i in range(32)]
    pool = WorkerPool(OpenAIStreamClient(truth_server.base_url, "truth", "openai"), workers=2, timeout_s=30)
    try:
        point = LoadPoint("closed", concurrency=16)
        rnd = pool.run(requests, point)
        poisson = LoadPoint("poisson", rate_rps=40.0, seed=3, max_in_flight=8)
        open_round = pool.run([CompletionRequest(f"workers-open-{i}", 32) for i in range(20)], poisson)
    finally:
        pool.close()
    assert [r.index for r in rnd.requests] == list(range(32)) and all(r.ok for r in rnd.requests)
    assert len(rnd.worker_cpu_fractions) == 2
    fidelity = compare([rnd], truth_server.truth(), lambda record: requests[record.index].prompt)
    assert fidelity.requests == 32
    check = served_metrics([rnd], point, Slo())["self_check"]
    if check["valid"]:
        assert fidelity.within_bound
    # the open loop: one seeded schedule dealt out, every arrival on the shared clock, in order
    assert [r.index for r in open_round.requests] == list(range(20)) and all(r.ok for r in open_round.requests)
    scheduled = [r.scheduled_s for r in open_round.requests]
    assert scheduled == sorted(scheduled)
    # on time unless the machine paused the client (CI's neighbours have, for 0.3 s): then the round's own self-check
    # must say its sends lagged the schedule, as it says to a user
    lags_ms = [round((r.dispatched_s - r.scheduled_s) * 1e3, 1) for r in open_round.requests]
    if max(lags_ms) >= 50:
        open_check = served_metrics([open_round], poisson, Slo())["self_check"]
        assert not open_check["valid"] and "lag behind the schedule" in open_check["invalid_reason"], (lags_ms, open_check)


def test_client_ceiling_ramps_until_out_of_bound_and_is_recorded(truth_server: TruthServer, tmp_path: Path, monkeypatch, capsys) -> None:
    from inferperf.cli import main
    from inferperf.serving.runners import cached_ceiling

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cached_ceiling() is None
    assert main(["client-ceiling", "--streams", "2,8", "--per-stream", "1"]) == 0
    out = capsys.readouterr().out
    assert "ceiling:" in out or "cannot be trusted" in out
    found = cached_ceiling()
    assert found is not None and found["workers"] == 1 and [s["streams"] for s in found["steps"]][0] == 2
    from inferperf.session import _load_generator_ceiling

    recorded = _load_generator_ceiling()
    assert recorded is not None and "steps" not in recorded and recorded["tokens_per_s"] == found["tokens_per_s"]
