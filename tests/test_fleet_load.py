"""Served generation for a fleet: ``--load`` specs, ``--traffic`` in a real tokenizer's tokens, the chat
endpoint, multi-turn sessions, trace replay, gamma arrivals, the server's ``/metrics`` — against the
real test server in a child process (``tests/sse_server.py``) — and bad input as one line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from inferperf.metrics.requests import LoadPoint
from inferperf.metrics.served import Slo, served_metrics
from inferperf.serving.loadgen import arrival_offsets
from inferperf.serving.loadspec import LoadSpecError, parse_load, parse_loads, sweep_rate
from inferperf.serving.traffic import TrafficError, build_requests, parse_traffic
from tests.helpers import start_sse_server

HERE = Path(__file__).parent
ROOT = HERE.parent


# --------------------------------------------------------------------------------------------
# --load


def test_load_specs_name_one_case_per_point() -> None:
    loads = parse_loads(["closed:1,4,16", "poisson:10,20:cap=8", "gamma:10:burstiness=0.5:seed=3", "constant:2.5", "sessions:2",
                         "trace:speed=2", "poisson:4:duration=5"])
    assert list(loads) == ["closed_c1", "closed_c4", "closed_c16", "poisson_r10_cap8", "poisson_r20_cap8", "gamma_r10_b0.5",
                           "constant_r2.5", "sessions_c2", "trace_x2", "poisson_r4_d5"]
    assert loads["poisson_r20_cap8"].point == LoadPoint("poisson", rate_rps=20.0, max_in_flight=8, seed=0)
    assert loads["gamma_r10_b0.5"].point.burstiness == 0.5 and loads["gamma_r10_b0.5"].point.seed == 3
    assert loads["poisson_r4_d5"].requests == 20  # a duration's worth of arrivals at the rate
    sweep = parse_load("sweep:points=3:streams=8")
    assert [s.name for s in sweep] == ["sweep_c1", "sweep_c8", "sweep_r1of3", "sweep_r2of3", "sweep_r3of3"]
    assert [s.sweep_step for s in sweep[2:]] == [(1, 3), (2, 3), (3, 3)]
    assert sweep_rate((1, 3), 2.0, 10.0) == pytest.approx(4.0) and sweep_rate((3, 3), 2.0, 10.0) == pytest.approx(8.0)


@pytest.mark.parametrize("spec", ["closed", "closed:1.5", "poisson:0", "bursty:3", "poisson:4:cap=0", "closed:4:cap=2",
                                  "poisson:4:burstiness=2", "poisson:x", "sweep:4", "poisson:4:rate=2", "poisson:4,"])
def test_a_load_spec_that_does_not_parse_says_why(spec: str) -> None:
    with pytest.raises(LoadSpecError, match=r"^--load '"):
        parse_load(spec)


def test_gamma_arrivals_are_burstier_below_one_and_keep_the_rate() -> None:
    def cv(shape: float) -> float:
        gaps = np.diff(arrival_offsets(LoadPoint("gamma", rate_rps=10.0, burstiness=shape, seed=1), 2000))
        return float(gaps.std() / gaps.mean())

    bursty, poisson, regular = cv(0.25), cv(1.0), cv(8.0)
    assert bursty > 1.5 > poisson > 0.8 > 0.5 > regular  # CV 1/sqrt(shape): 2, 1, 0.35
    offsets = arrival_offsets(LoadPoint("gamma", rate_rps=10.0, burstiness=0.25, seed=1), 200)
    assert offsets[-1] == pytest.approx(200 / 10.0 * 199 / 200)  # the round spans its window at the rate asked for
    trace = arrival_offsets(LoadPoint("trace", offsets_s=(0.0, 1.0, 4.0), speed=2.0), 3)
    assert trace == [0.0, 0.5, 2.0]


# --------------------------------------------------------------------------------------------
# --traffic, in a real tokenizer's tokens


@pytest.fixture(scope="module")
def tokenizer():
    pytest.importorskip("transformers")
    from inferperf.models.textgen import byte_level_tokenizer

    return byte_level_tokenizer(512)


def _count(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_random_traffic_has_exact_lengths_distributions_and_shared_prefixes(tokenizer) -> None:
    fixed = build_requests(parse_traffic("random:in=96:out=16"), tokenizer, 6, 0, 0)
    assert [r.prompt_tokens for r in fixed] == [96] * 6 and all(_count(tokenizer, r.prompt) == 96 for r in fixed)
    assert [r.max_tokens for r in fixed] == [16] * 6
    drawn = build_requests(parse_traffic("random:in=normal(64,16,32,96):out=uniform(4,12):seed=2"), tokenizer, 200, 0, 0)
    lengths = [r.prompt_tokens for r in drawn]
    assert min(lengths) >= 32 and max(lengths) <= 96 and 58 < np.mean(lengths) < 70 and np.std(lengths) > 10
    assert {r.max_tokens for r in drawn} <= set(range(4, 13)) and len({r.max_tokens for r in drawn}) > 5
    shared = build_requests(parse_traffic("random:in=32:out=8:prefixes=2:prefix_len=64"), tokenizer, 6, 0, 0)
    assert [r.prefix_group for r in shared] == [0, 1, 0, 1, 0, 1]
    assert shared[0].prompt[:60] == shared[2].prompt[:60] != shared[1].prompt[:60]
    assert all(r.prompt_tokens == 96 for r in shared)


def test_multiturn_sessions_grow_their_history(tokenizer) -> None:
    requests = build_requests(parse_traffic("multiturn:turns=3:in=16:out=8:think=0.25"), tokenizer, 6, 0, 0)
    assert [(r.session, r.turn) for r in requests] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    first, second = requests[0], requests[1]
    assert second.prompt.startswith(first.prompt) and second.prompt_tokens > first.prompt_tokens + 16
    assert [m["role"] for m in second.messages] == ["user", "assistant", "user"] and second.think_s == 0.25


def test_datasets_and_traces_from_files(tmp_path: Path, tokenizer) -> None:
    jsonl = tmp_path / "prompts.jsonl"
    jsonl.write_text('{"prompt": "hello there", "output_len": 5}\n\n{"input_len": 40, "output_len": 7}\n')
    made = build_requests(parse_traffic(f"jsonl:{jsonl}"), tokenizer, 4, 0, 0)
    assert [r.max_tokens for r in made] == [5, 7, 5, 7] and made[1].prompt_tokens == 40
    sharegpt = ROOT / "tests" / "data" / "sharegpt-small.json"
    single = build_requests(parse_traffic(f"sharegpt:{sharegpt}"), tokenizer, 2, 0, 0)
    assert single[0].turn == 0 and all(r.turn == 0 for r in single)
    sessions = build_requests(parse_traffic(f"sharegpt:{sharegpt}"), tokenizer, 2, 0, 0, sessions=True)
    assert max(r.turn for r in sessions) >= 1
    trace = ROOT / "tests" / "data" / "mooncake-small.jsonl"
    replay = build_requests(parse_traffic(f"trace:{trace}:block=32"), tokenizer, 1, 0, 0)
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [r.arrival_s for r in replay] == [(line["timestamp"] - lines[0]["timestamp"]) / 1000 for line in lines]
    assert [r.prompt_tokens for r in replay] == [line["input_length"] for line in lines]
    # requests 0 and 2 share their first two hash ids: the same first two 32-token blocks; 1 does not
    assert lines[0]["hash_ids"][:2] == lines[2]["hash_ids"][:2] != lines[1]["hash_ids"][:2]
    assert replay[0].prompt[:40] == replay[2].prompt[:40] != replay[1].prompt[:40]
    assert replay[0].prefix_group == replay[2].prefix_group != replay[1].prefix_group


@pytest.mark.parametrize("content, message", [
    ('{"prompt": "x", "output_len": 3}\n{"prompt": "y"\n', r"prompts\.jsonl:2: not a JSON object"),
    ('{"prompt": "x", "output_len": 0}\n', r"prompts\.jsonl:1: output_len must be a positive whole number"),
])
def test_a_malformed_dataset_line_is_named(tmp_path: Path, tokenizer, content: str, message: str) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text(content)
    with pytest.raises(TrafficError, match=message):
        build_requests(parse_traffic(f"jsonl:{path}"), tokenizer, 2, 0, 0)


def test_a_trace_going_back_in_time_is_named(tmp_path: Path, tokenizer) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_text('{"timestamp": 10, "input_length": 8, "output_length": 2}\n{"timestamp": 5, "input_length": 8, "output_length": 2}\n')
    with pytest.raises(TrafficError, match=r"trace\.jsonl:2: timestamp 5 goes back"):
        build_requests(parse_traffic(f"trace:{path}"), tokenizer, 1, 0, 0)


def test_traffic_specs_that_do_not_parse(tmp_path: Path) -> None:
    for spec, message in [("zipf:in=3", "unknown kind"), ("jsonl", "needs a file"), (f"jsonl:{tmp_path}/none.jsonl", "no such file"),
                          ("random:in=normal(1,2)", "in="), ("random:colour=red", "KEY=VALUE")]:
        with pytest.raises(TrafficError, match=message):
            parse_traffic(spec)
    from inferperf.serving.traffic import load_tokenizer

    with pytest.raises(TrafficError, match="--tokenizer .*: no such directory"):
        load_tokenizer(tmp_path / "missing")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "tokenizer.json").write_text("{not json")
    with pytest.raises(TrafficError, match="--tokenizer .*broken: does not load"):
        load_tokenizer(tmp_path / "broken")


@pytest.mark.parametrize("option", ["--load=poisson:fast", "--traffic=zipf", "--served-api=grpc", "--tokenizer=/nonexistent"])
def test_bad_served_options_stop_the_session_in_one_line(option: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "perf_tests/test_generation_served.py", "--collect-only", "-q", option,
                           "-p", "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 4, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and option.split("=")[0] in errors[0], done.stderr


def test_load_options_become_cases() -> None:
    done = subprocess.run([sys.executable, "-m", "pytest", "perf_tests/test_generation_served.py", "--collect-only", "-q",
                           "--load=closed:1,8", "--load=gamma:5:burstiness=0.5", "--served-api=completions,chat",
                           "--traffic=random:in=64:prefixes=2", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    assert any("served_vllm_chat_gamma_r5_b0.5-" in i for i in ids) and any("served_tf_closed_c8-bs8" in i for i in ids)
    # shared prefixes: vLLM with prefix caching off is a variant beside it
    assert any("served_vllmnopc_closed_c1-" in i for i in ids)
    assert len(ids) == 5 * 2 * 4  # servers (tf, tfcb, llamacpp, vllm, vllmnopc) x endpoints x (3 points + capacity)


# --------------------------------------------------------------------------------------------
# the chat endpoint, sessions and the server's metrics against a real server


@pytest.fixture(scope="module")
def test_server(tmp_path_factory: pytest.TempPathFactory):
    server, base = start_sse_server(tmp_path_factory.mktemp("sse") / "sse.log")
    try:
        yield base
    finally:
        server.stop()


def _runner(base: str, api: str = "completions"):
    from inferperf.serving.loadgen import LoadRunner
    from inferperf.serving.openai.client import OpenAIStreamClient

    return LoadRunner(OpenAIStreamClient(base, "test-model", "plain", api=api, timeout_s=20.0), timeout_s=20.0)


def test_chat_counts_reasoning_and_tool_tokens_apart_from_content(test_server: str) -> None:
    from inferperf.serving.openai.client import CompletionRequest

    runner = _runner(test_server, "chat")
    try:
        rnd = runner.run([CompletionRequest("hello", 8), CompletionRequest("tool", 8)], LoadPoint("closed", concurrency=1))
    finally:
        runner.close()
    assert all(r.ok for r in rnd.requests), [r.error for r in rnd.requests]
    plain, tool = rnd.requests
    assert plain.chunk_kinds == ["reasoning"] * 4 + ["content"] * 4
    assert tool.chunk_kinds == ["reasoning"] * 4 + ["tool"] + ["content"] * 3
    metrics = served_metrics([rnd], LoadPoint("closed", concurrency=1), Slo())
    assert metrics["reasoning_tokens_per_request"] == 4 and metrics["tool_call_tokens_per_request"] == 0.5
    assert metrics["content_tokens_per_request"] == 3.5
    assert metrics["ttft_content_p50_s"] > metrics["ttft_s"]  # the answer comes after the thinking


def test_sessions_send_each_turn_after_the_last_answer_and_its_think_time(test_server: str) -> None:
    from inferperf.serving.openai.client import CompletionRequest

    think = 0.05
    turns = [CompletionRequest("normal", 4, session=s, turn=t, think_s=think) for s in range(3) for t in range(3)]
    runner = _runner(test_server)
    try:
        rnd = runner.run(turns, LoadPoint("sessions", concurrency=2))
    finally:
        runner.close()
    assert all(r.ok for r in rnd.requests)
    by_index = {r.index: r for r in rnd.requests}
    for session in range(3):
        chain = [by_index[session * 3 + t] for t in range(3)]
        for earlier, later in zip(chain, chain[1:]):
            assert later.send_s >= earlier.done_s + think * 0.9  # never before the answer plus its think time
    metrics = served_metrics([rnd], LoadPoint("sessions", concurrency=2), Slo())
    assert metrics["turns_completed"] == 9 and metrics["ttft_later_turns_p50_s"] is not None


def test_a_duration_bounds_a_closed_round(test_server: str) -> None:
    from inferperf.serving.openai.client import CompletionRequest

    runner = _runner(test_server)
    try:
        rnd = runner.run([CompletionRequest("normal", 4)] * 400, LoadPoint("closed", concurrency=2, duration_s=0.3))
    finally:
        runner.close()
    assert 2 <= len(rnd.requests) < 400 and all(r.ok for r in rnd.requests)  # requests never sent are not failures


def test_a_round_started_past_its_duration_still_sends_one_request_a_stream(test_server: str) -> None:
    """A process paused between laying out a round and starting it (CI once lost a 0.3 s round that
    way) must not give an empty round: each stream's first request is taken at the start."""
    from inferperf.serving.loadgen import Share
    from inferperf.serving.openai.client import CompletionRequest

    runner = _runner(test_server)
    try:
        share = Share(tuple(range(40)), concurrency=2, deadline_s=time.perf_counter() - 1.0)
        rnd = runner.run([CompletionRequest("normal", 4)] * 40, LoadPoint("closed", concurrency=2, duration_s=0.3), share=share)
    finally:
        runner.close()
    assert len(rnd.requests) == 2 and all(r.ok for r in rnd.requests)


def test_the_servers_metrics_are_sampled_through_a_round(test_server: str) -> None:
    pytest.importorskip("prometheus_client")
    summary = _sampled_round(test_server, period_s=0.1)
    assert summary["samples"] >= 2 and summary["period_s"] == 0.1
    assert summary["running_max"] >= 1  # from samples inside the round: before and after it the server is idle
    assert 0 < summary["scrape_s_mean"] < 2.0
    assert summary["prefix_cache_hit_rate"] == pytest.approx(0.5)  # 3 of the 6 prompts were seen before


def test_a_period_of_zero_samples_only_before_and_after_the_round(test_server: str) -> None:
    pytest.importorskip("prometheus_client")
    summary = _sampled_round(test_server, period_s=0.0)
    assert summary["samples"] == 0 and "running_max" not in summary and "scrape_s_mean" not in summary
    # the counters' difference needs only the two ends
    assert summary["prefix_cache_hit_rate"] == pytest.approx(0.5)


def _sampled_round(test_server: str, period_s: float) -> dict[str, object]:
    from inferperf.serving.openai.client import CompletionRequest
    from inferperf.serving.server_metrics import sampler_for

    sampler = sampler_for(test_server, period_s=period_s)
    assert sampler is not None
    runner = _runner(test_server)
    try:
        sampler.start()
        # one at a time in the server (capacity one), so 6 requests of 60 tokens take ~0.7 s; each prompt twice
        # prompts of this period only: the server's cache outlives a test
        runner.run([CompletionRequest(f"normal-{period_s}-{i % 3}", 60) for i in range(6)], LoadPoint("closed", concurrency=3))
        return sampler.stop()
    finally:
        runner.close()
        sampler.close()


def test_a_chat_endpoint_answering_404_fails_in_one_line(tmp_path: Path) -> None:
    import os

    server, base = start_sse_server(tmp_path / "sse.log", env={**os.environ, "INFERPERF_TEST_NO_CHAT": "1"})
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "perf_tests/test_generation_served.py", "--benchmark-only", "-q", "-p", "no:cacheprovider",
             f"--served-url=openai+{base}", "--served-model=test-model", "--served-api=chat", "--load=closed:1",
             "-k", "closed_c1", f"--basetemp={tmp_path / 'run'}"],
            cwd=ROOT, capture_output=True, text=True, timeout=300)
    finally:
        server.stop()
    assert done.returncode == 1, done.stdout[-2000:]
    assert "/chat/completions answered HTTP 404" in done.stdout
