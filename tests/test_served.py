"""Served generation: the load generator, the streaming client and the metrics, against real servers.

The client's faults are produced by ``tests/sse_server.py`` (a real HTTP server in a child
process); the served-vs-local agreement runs the real ``transformers serve``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from inferperf.metrics.distribution import percentile_interval
from inferperf.metrics.requests import LoadPoint, RoundLoad, ServedRequest
from inferperf.metrics.self_check import self_check
from inferperf.metrics.served import Slo, capacity_interval, parse_slo, served_metrics
from inferperf.serving.loadgen import arrival_offsets, search_max_rate

HERE = Path(__file__).parent


def _request(index: int, scheduled: float, send: float, tokens: list[float], *, error: str | None = None) -> ServedRequest:
    record = ServedRequest(index, scheduled, dispatched_s=scheduled, send_s=send)
    record.chunk_times_s, record.chunk_tokens = list(tokens), [1] * len(tokens)
    record.done_s = tokens[-1] if tokens else send
    record.completion_tokens_server = len(tokens)
    record.finish_reason = "length"
    record.error = error
    return record


def test_poisson_schedule_is_seeded_and_keeps_its_rate() -> None:
    point = LoadPoint("poisson", rate_rps=8.0, seed=3)
    first, again = arrival_offsets(point, 40), arrival_offsets(point, 40)
    assert first == again and first == sorted(first)
    assert first[-1] <= 40 / 8.0
    assert arrival_offsets(LoadPoint("poisson", rate_rps=8.0, seed=4), 40) != first
    assert arrival_offsets(LoadPoint("constant", rate_rps=4.0), 3) == [0.0, 0.25, 0.5]
    with pytest.raises(ValueError):
        arrival_offsets(LoadPoint("poisson", rate_rps=0.0), 3)


def test_metrics_from_schedule_and_send_and_failures_in_denominators() -> None:
    # request 0: sent on time; request 1: sent 0.5 s late (waited for a slot); request 2 failed
    ok_on_time = _request(0, 0.0, 0.0, [0.1, 0.2, 0.3])
    ok_late = _request(1, 0.0, 0.5, [0.6, 0.7, 0.8])
    failed = _request(2, 0.0, 0.0, [], error="request 2: HTTP 500: boom")
    failed.done_s = 0.05
    rnd = RoundLoad((ok_on_time, ok_late, failed), client_cpu_s=0.01, wall_s=1.0)
    metrics = served_metrics([rnd], LoadPoint("closed", concurrency=3), Slo(ttft_s=0.2))
    dist = metrics["latency_distributions"]
    assert dist["ttft_from_send_s"]["max"] == pytest.approx(0.1)
    assert dist["ttft_from_schedule_s"]["max"] == pytest.approx(0.6)  # the wait is the user's latency
    assert dist["tpot_s"]["p50"] == pytest.approx(0.1)
    # TTFT + (N - 1) TPOT = E2E
    assert dist["e2e_from_send_s"]["max"] == pytest.approx(0.1 + 2 * 0.1)
    assert metrics["requests_sent"] == 3 and metrics["requests_failed"] == 1
    assert metrics["error_rate"] == pytest.approx(1 / 3)
    assert metrics["good_fraction"] == pytest.approx(1 / 3)  # only the on-time one meets ttft <= 0.2 from the schedule
    assert metrics["goodput_rps"] == pytest.approx(1 / 0.8)


def test_chunk_with_several_tokens_divides_its_gap() -> None:
    record = _request(0, 0.0, 0.0, [0.1, 0.4])
    record.chunk_tokens = [1, 3]  # the second chunk carried three tokens
    record.completion_tokens_server = 4
    metrics = served_metrics([RoundLoad((record,), 0.0, 1.0)], LoadPoint("closed", concurrency=1), Slo())
    dist = metrics["latency_distributions"]
    assert dist["itl_per_token_s"]["max"] == pytest.approx(0.1)  # 0.3 s shared by three tokens
    assert dist["itl_per_chunk_s"]["max"] == pytest.approx(0.3)
    assert dist["tpot_s"]["p50"] == pytest.approx(0.1)


def test_self_check_marks_a_lagging_client_invalid() -> None:
    point = LoadPoint("poisson", rate_rps=10.0, seed=0)
    requests = []
    for i, offset in enumerate(arrival_offsets(point, 20)):
        r = _request(i, offset, offset, [offset + 0.05])
        requests.append(r)
    assert self_check(RoundLoad(tuple(requests), 0.01, 2.0), point, 0.05, 0.05)["valid"]
    for i, r in enumerate(requests):  # the client fell behind: each arrival later than the last
        r.dispatched_s = r.scheduled_s + 0.05 * i
    check = self_check(RoundLoad(tuple(requests), 0.01, 2.0), point, 0.05, 0.05)
    assert not check["valid"] and "lag" in check["invalid_reason"]
    assert not self_check(RoundLoad(tuple(requests[:2]), 1.9, 2.0), point, 0.05, 0.05)["valid"]  # a saturated client


def test_percentile_interval_brackets_the_percentile() -> None:
    values = np.sort(np.random.default_rng(0).exponential(size=500))
    low, high = percentile_interval(values, 99)
    assert low <= np.percentile(values, 99) <= high
    assert percentile_interval(values[:10], 99) is None  # too few values for a 95% upper bound


def test_slo_parsing() -> None:
    assert parse_slo("ttft=500ms,tpot=0.05") == Slo(ttft_s=0.5, tpot_s=0.05)
    for bad in ("ttft", "latency=1", "ttft=-1", "ttft=abc", ""):
        with pytest.raises(ValueError):
            parse_slo(bad)


def test_capacity_search_is_bounded_and_monotone() -> None:
    calls: list[float] = []

    def meets(rate: float) -> bool:
        calls.append(rate)
        return rate <= 5.0

    best, tried = search_max_rate(meets, 1.0, 32.0, 6)
    assert len(calls) == 6 and best is not None and 3.0 < best <= 5.0
    assert search_max_rate(lambda r: False, 1.0, 8.0, 4)[0] is None


def test_an_invalid_capacity_probe_is_not_an_slo_miss() -> None:
    def probe(rate: float, ok: bool, valid: bool = True) -> dict[str, object]:
        return {"rate_rps": rate, "meets_slo": ok, "valid": valid}

    probes = [probe(1, True), probe(16, False), probe(4, True), probe(8, False), probe(4, True), probe(8, False)]
    assert capacity_interval(probes) == (4, 8)
    # the client could not keep its schedule at 1/s (invalid, so not met), then did on the re-run:
    # before, the first round alone decided "not even the lowest rate" -> [None, 1]
    assert capacity_interval([probe(1, False, valid=False), *probes]) == (4, 8)
    assert capacity_interval([probe(1, False, valid=False)]) == (None, None)  # nothing valid: nothing known
    assert capacity_interval([probe(1, False), probe(2, True)]) == (None, 1)


# --------------------------------------------------------------------------------------------
# the client and the generator against a real HTTP server


@pytest.fixture(scope="module")
def sse_server(tmp_path_factory: pytest.TempPathFactory):
    from tests.helpers import start_sse_server

    server, base = start_sse_server(tmp_path_factory.mktemp("sse") / "sse.log")
    try:
        yield server, base
    finally:
        server.stop()


def _run(base: str, prompts: list[str], point: LoadPoint, tokens: int = 4, timeout_s: float = 20.0) -> RoundLoad:
    from inferperf.serving.loadgen import LoadRunner
    from inferperf.serving.openai.client import CompletionRequest, OpenAIStreamClient

    client = OpenAIStreamClient(base, "test-model", "plain", timeout_s=timeout_s)
    runner = LoadRunner(client, timeout_s=timeout_s)
    try:
        return runner.run([CompletionRequest(p, tokens) for p in prompts], point)
    finally:
        runner.close()


def test_faults_are_recorded_per_request_and_never_dropped(sse_server) -> None:
    _, base = sse_server
    rnd = _run(base, ["normal", "malformed", "cut", "error"], LoadPoint("closed", concurrency=1))
    normal, malformed, cut, error = rnd.requests
    assert normal.ok and normal.completion_tokens == 4 and normal.finish_reason == "length"
    assert "malformed stream chunk" in malformed.error and "request 1" in malformed.error
    assert "request 2" in cut.error and ("cut" in cut.error or "without a finish_reason" in cut.error)
    assert "HTTP 500" in error.error
    metrics = served_metrics([rnd], LoadPoint("closed", concurrency=1), Slo())
    assert metrics["requests_sent"] == 4 and metrics["requests_failed"] == 3


def test_open_loop_latency_from_the_schedule_shows_what_the_send_hides(sse_server) -> None:
    """A server that serves one request at a time, offered twice what it can take, behind a client
    with one connection: from the send every request looks as fast as alone; from the schedule
    the queue in front of the client shows (coordinated omission, measured)."""
    _, base = sse_server
    service = 8 * 0.002  # 8 tokens, 2 ms apart
    alone = _run(base, ["normal"] * 3, LoadPoint("closed", concurrency=1), tokens=8)
    one = float(np.median([r.e2e_s() for r in alone.requests]))  # what one request takes here, now
    rate = 2.0 / max(one, service)
    point = LoadPoint("poisson", rate_rps=rate, max_in_flight=1, seed=0)
    rnd = _run(base, ["normal"] * 24, point, tokens=8)
    assert all(r.ok for r in rnd.requests)
    from_send = np.percentile([r.e2e_s("send") for r in rnd.requests], 90)
    from_schedule = np.percentile([r.e2e_s("schedule") for r in rnd.requests], 90)
    assert from_schedule > 2 * from_send


def test_dead_endpoint_fails_within_its_bound() -> None:
    from inferperf.serving.openai.client import list_models
    from inferperf.serving.process import free_port

    pytest.importorskip("httpx")
    began = time.monotonic()
    with pytest.raises(Exception):
        list_models(f"http://127.0.0.1:{free_port()}/v1", timeout_s=2.0)
    assert time.monotonic() - began < 10
    rnd = _run(f"http://127.0.0.1:{free_port()}/v1", ["normal"], LoadPoint("closed", concurrency=1), timeout_s=3.0)
    assert "cannot connect" in rnd.requests[0].error


def test_a_server_killed_mid_round_costs_its_requests_not_the_run(tmp_path: Path) -> None:
    from inferperf.serving.loadgen import LoadRunner
    from inferperf.serving.openai.client import (
        CompletionRequest,
        OpenAIStreamClient,
        list_models,
    )
    from inferperf.serving.process import ServerProcess, free_port

    pytest.importorskip("httpx")
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    server = ServerProcess("the test SSE server", start_timeout_s=30)

    def ready() -> bool:
        try:
            return bool(list_models(base, 1.0))
        except Exception:
            return False

    env = {**__import__("os").environ, "INFERPERF_TEST_TOKEN_S": "0.05"}
    server.launch([sys.executable, str(HERE / "sse_server.py"), str(port)], tmp_path / "sse.log", ready, env)
    client = OpenAIStreamClient(base, "test-model", "plain", timeout_s=10)
    runner = LoadRunner(client, timeout_s=10)
    try:
        killer = subprocess.Popen([sys.executable, "-c", f"import os, signal, time; time.sleep(0.4); os.kill({server.pid}, signal.SIGKILL)"])
        rnd = runner.run([CompletionRequest("normal", 20)] * 4, LoadPoint("closed", concurrency=2))
        killer.wait(timeout=10)
    finally:
        runner.close()
        failure = server.failure("the server died")
        server.stop()
    assert any(not r.ok for r in rnd.requests)
    assert all(r.error or r.ok for r in rnd.requests)
    assert "exited with code -9" in failure and "sse.log" in failure


def test_transformers_serve_gives_the_local_greedy_tokens(tmp_path: Path) -> None:
    """The real server on technique 6's artefact: its greedy text equals local greedy decoding,
    a stream carries one token per chunk, and the client's count equals the server's usage."""
    pytest.importorskip("fastapi")
    pytest.importorskip("torch")
    from inferperf.models.text_specs import TEXT_MODELS
    from inferperf.models.textgen import (
        load_text_model,
        prompt_token_ids,
        save_random_text_model,
    )
    from inferperf.serving.openai.client import complete_once
    from inferperf.serving.openai.servers import OpenAIServerHost

    model_dir = tmp_path / "llama_tiny"
    save_random_text_model(TEXT_MODELS["llama_tiny"], model_dir)
    loaded = load_text_model(model_dir, "cpu")
    tokenizer = loaded.tokenizer
    prompt_ids = prompt_token_ids(tokenizer, [64], seed=1)[0]
    prompt = tokenizer.decode(prompt_ids)
    import torch

    with torch.inference_mode():
        out = loaded.model.generate(torch.tensor([prompt_ids]), max_new_tokens=12, do_sample=False, eos_token_id=-1)
    expected = tokenizer.decode(out[0, len(prompt_ids):], skip_special_tokens=True)
    host = OpenAIServerHost(tmp_path, threads=1)
    try:
        endpoint = host.transformers_serve(model_dir, continuous_batching=False)
        answer = complete_once(endpoint.base_url, endpoint.model, prompt, 12, endpoint.dialect)
        assert answer["choices"][0]["text"] == expected
        assert answer["usage"] == {"prompt_tokens": 64, "completion_tokens": 12, "total_tokens": 76}
        from inferperf.serving.loadgen import LoadRunner
        from inferperf.serving.openai.client import (
            CompletionRequest,
            OpenAIStreamClient,
        )

        count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
        client = OpenAIStreamClient(endpoint.base_url, endpoint.model, endpoint.dialect, count)
        runner = LoadRunner(client)
        try:
            rnd = runner.run([CompletionRequest(prompt, 12, 64)] * 2, LoadPoint("closed", concurrency=1))
        finally:
            runner.close()
        for record in rnd.requests:
            assert record.ok, record.error
            assert record.completion_tokens_server == record.completion_tokens_client == 12
            assert not record.token_count_mismatch
        # as --served-url sees it (the "openai" dialect: vLLM's min_tokens/ignore_eos, which
        # transformers serve answers with 422): the greedy check and the stream fall back to the
        # standard fields instead of failing the case at set-up
        plain = complete_once(endpoint.base_url, endpoint.model, prompt, 12, "openai")
        assert plain["choices"][0]["text"]
        fleet = OpenAIStreamClient(endpoint.base_url, endpoint.model, "openai")
        runner = LoadRunner(fleet)
        try:
            rnd = runner.run([CompletionRequest(prompt, 12, 64)] * 2, LoadPoint("closed", concurrency=1))
        finally:
            runner.close()
        assert all(r.ok for r in rnd.requests) and not fleet.forcing and not rnd.requests[-1].length_forced
    finally:
        host.stop()
    assert not host.alive()


# --------------------------------------------------------------------------------------------
# --metric: compare, history and ab judge a per-round metric with the same statistics


def _metric_run(path: Path, ttft_p99: float, tokens_per_s: float, seed: int, when: str = "2026-11-23T10:00:00") -> Path:
    from tests.runs import make_run, write_run

    rng = np.random.default_rng(seed)
    case = "generation/llama_tiny-cpu-fp32-served_tfcb_poisson_r4-bs1"
    rounds = 12
    ttft = (ttft_p99 * np.exp(rng.normal(0, 0.02, rounds))).tolist()
    tps = (tokens_per_s * np.exp(rng.normal(0, 0.02, rounds))).tolist()
    # the round time itself does not move: only the metric does
    run = make_run({case: [3.0 + 0.001 * i for i in range(rounds)]},
                   extra={case: {"round_metrics": {"ttft_p99_s": ttft, "output_tokens_per_s": tps}}})
    run["datetime"] = when
    return write_run(path, run)


def test_compare_judges_a_metric_not_the_round_time(tmp_path: Path, capsys) -> None:
    from inferperf.cli import main

    base = _metric_run(tmp_path / "base.json", 0.10, 200.0, 0)
    worse = _metric_run(tmp_path / "worse.json", 0.12, 200.0, 1)
    assert main(["compare", str(base), str(worse), "--fail-on-regression"]) == 0  # round times equal
    assert main(["compare", str(base), str(worse), "--metric", "ttft_p99_s", "--fail-on-regression"]) == 1
    out = capsys.readouterr()
    assert "slower" in out.out and "judging ttft_p99_s" in out.err
    # higher is better: more tokens/s is no regression, fewer is
    better = _metric_run(tmp_path / "better.json", 0.10, 240.0, 2)
    fewer = _metric_run(tmp_path / "fewer.json", 0.10, 160.0, 3)
    assert main(["compare", str(base), str(better), "--metric", "output_tokens_per_s", "--fail-on-regression"]) == 0
    assert main(["compare", str(base), str(fewer), "--metric", "output_tokens_per_s", "--fail-on-regression"]) == 1
    assert main(["compare", str(base), str(worse), "--metric", "nonsense"]) == 2
    assert "--metric: 'nonsense'" in capsys.readouterr().err


def test_history_and_ab_accept_a_metric(tmp_path: Path, capsys) -> None:
    from inferperf.cli import main

    store = tmp_path / "results" / "box" / "Linux-CPython-3.11-64bit"
    for night in range(12):
        level = 0.10 if night < 8 else 0.13  # p99 TTFT stepped up at night 9
        _metric_run(store / f"{night + 1:04d}_c{night:02d}.json", level, 200.0, night, f"2026-11-{night + 1:02d}T10:00:00")
    assert main(["history", str(tmp_path / "results"), "--fail-on-regression"]) == 0
    assert main(["history", str(tmp_path / "results"), "--metric", "ttft_p99_s", "--fail-on-regression"]) == 1
    # ab --analyse: blocks stored as ab keeps them, judged on the metric
    folder = tmp_path / "ab" / "run"
    for block in range(1, 9):
        _metric_run(folder / "base" / f"{block:04d}.json", 0.10, 200.0, 100 + block)
        _metric_run(folder / "candidate" / f"{block:04d}.json", 0.12, 200.0, 200 + block)
    capsys.readouterr()
    code = main(["ab", "--analyse", str(folder), "--metric", "ttft_p99_s", "--fail-on-regression"])
    out = capsys.readouterr().out
    assert code == 1, out


def test_llama_cpp_serves_the_same_greedy_tokens_from_the_gguf(tmp_path: Path) -> None:
    """The second engine: a GGUF written from technique 6's weights, served by llama.cpp, gives the
    local greedy text (runs where the [llamacpp] extra is installed)."""
    from inferperf.extras import has_extra, missing_reason

    if not has_extra("llamacpp"):
        pytest.skip(missing_reason("llamacpp"))
    import torch

    from inferperf.models.gguf_export import write_gguf
    from inferperf.models.text_specs import TEXT_MODELS
    from inferperf.models.textgen import (
        load_text_model,
        prompt_token_ids,
        save_random_text_model,
    )
    from inferperf.serving.openai.client import complete_once
    from inferperf.serving.openai.servers import OpenAIServerHost

    model_dir = tmp_path / "llama_tiny"
    save_random_text_model(TEXT_MODELS["llama_tiny"], model_dir)
    gguf = write_gguf(model_dir, tmp_path / "llama_tiny.gguf")
    loaded = load_text_model(model_dir, "cpu")
    prompt_ids = prompt_token_ids(loaded.tokenizer, [96], seed=2)[0]
    with torch.inference_mode():
        out = loaded.model.generate(torch.tensor([prompt_ids]), max_new_tokens=24, do_sample=False, eos_token_id=-1)
    expected = loaded.tokenizer.decode(out[0, len(prompt_ids):], skip_special_tokens=True)
    host = OpenAIServerHost(tmp_path, threads=1)
    try:
        endpoint = host.llama_cpp(gguf, threads=1, context_tokens=512)
        answer = complete_once(endpoint.base_url, endpoint.model, loaded.tokenizer.decode(prompt_ids), 24, endpoint.dialect)
    finally:
        host.stop()
    assert answer["choices"][0]["text"] == expected


def test_an_invalid_load_is_never_compared_or_reported_as_latency(tmp_path: Path, capsys) -> None:
    from inferperf.cli import main

    base = _metric_run(tmp_path / "base.json", 0.10, 200.0, 0)
    data = json.loads(base.read_text())
    data["benchmarks"][0]["extra_info"].update(valid=False, invalid_reason="p99 lag behind the schedule 40.0 ms > 5.0 ms",
                                               load={"mode": "poisson", "label": "open loop, Poisson arrivals"})
    lagging = tmp_path / "lagging.json"
    lagging.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["compare", str(base), str(lagging), "--metric", "ttft_p99_s"]) == 0
    out = capsys.readouterr().out
    assert "not comparable" in out and "invalid load" in out
    assert main(["report", str(lagging)]) == 0
    assert "INVALID (p99 lag behind the schedule" in capsys.readouterr().out
