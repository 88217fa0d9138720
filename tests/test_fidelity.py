"""The load generator held against ground truth: a stand-in server (``inferperf/serving/truth_server.c``)
logs when each request reached its socket and when it wrote each token; the client's TTFT and ITL
must be within the fidelity bound of that log wherever its self-check calls a round valid, and the
bound the self-check computes from its own stamps must cover the error it really made."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from inferperf.metrics.requests import LoadPoint, RoundLoad
from inferperf.metrics.served import Slo, served_metrics
from inferperf.serving.fidelity import (
    Fidelity,
    StandInUnavailable,
    TruthServer,
    build_truth_server,
    compare,
)
from inferperf.serving.loadgen import LoadRunner
from inferperf.serving.openai.client import CompletionRequest, OpenAIStreamClient

#: the stand-in's own stamps are taken just after each write returns: a few microseconds of slack
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
    check = served_metrics([rnd], point, Slo())["self_check"]
    return rnd, fidelity, check  # type: ignore[return-value]


def _errors(f: Fidelity) -> dict[str, float]:
    return {
        "ttft_p50": abs(f.ttft_p50_client_s - f.ttft_p50_truth_s), "ttft_p99": abs(f.ttft_p99_client_s - f.ttft_p99_truth_s),
        "itl_p50": abs(f.itl_p50_client_s - f.itl_p50_truth_s), "itl_p99": abs(f.itl_p99_client_s - f.itl_p99_truth_s),
    }


@pytest.mark.parametrize("streams", [1, 16, 128])
def test_a_round_called_valid_is_within_the_bound_of_the_truth(truth_server: TruthServer, streams: int) -> None:
    client = OpenAIStreamClient(truth_server.base_url, "truth", "openai")
    rnd, fidelity, check = _round(truth_server, client, streams, 2, f"valid{streams}")
    assert fidelity.requests == len(rnd.requests), "every request is in the truth's log and was compared"
    assert all(r.stamp_source == "kernel" for r in rnd.requests)
    errors = _errors(fidelity)
    # the bound the client derives from its own stamps covers the error it really made
    for name, error in errors.items():
        assert error <= (check[f"{name}_stamp_error_bound_s"] or 0.0) + TRUTH_SLACK_S, (name, errors, check)
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
    client = StallingClient(truth_server.base_url, "truth", "openai")
    rnd, fidelity, check = _round(truth_server, client, 16, 2, "stalled")
    errors = _errors(fidelity)
    assert not fidelity.within_bound, errors  # the stall really did make the client wrong ...
    assert not check["valid"] and "uncertain" in check["invalid_reason"], check  # ... and it says so
    for name, error in errors.items():
        assert error <= (check[f"{name}_stamp_error_bound_s"] or 0.0) + TRUTH_SLACK_S, (name, errors, check)
    assert check["shared_read_chunk_fraction"] > 0.1


def test_the_stand_in_keeps_its_schedule(truth_server: TruthServer, tmp_path: Path) -> None:
    client = OpenAIStreamClient(truth_server.base_url, "truth", "openai")
    _, fidelity, _ = _round(truth_server, client, 4, 1, "schedule")
    assert abs(fidelity.ttft_p50_truth_s - 0.020) < 0.002 and abs(fidelity.itl_p50_truth_s - 0.010) < 0.002
