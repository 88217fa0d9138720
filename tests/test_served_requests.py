"""``--served-requests``: every timed request of a served case comes back as a record, one JSON line.

The rows must be what the case's figures are made of: recomputed from the file, its TTFT, TPOT and
per-token latencies are the run's own keys, and every timed request is there (warm-ups are not).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inferperf.metrics.generation import RequestTiming
from inferperf.metrics.requests import RoundLoad, ServedRequest, request_rows
from inferperf.metrics.served import Slo, token_metrics
from tests.helpers import REPO, start_sse_server


def _request(index: int, scheduled: float, send: float, chunks: list[tuple[float, int]], error: str | None = None) -> ServedRequest:
    record = ServedRequest(index, scheduled, dispatched_s=scheduled, send_s=send)
    record.chunk_times_s = [t for t, _ in chunks]
    record.chunk_tokens = [n for _, n in chunks]
    record.done_s = chunks[-1][0] if chunks else send + 0.5
    record.completion_tokens_server = sum(n for _, n in chunks)
    record.error = error
    return record


def _rounds() -> list[RoundLoad]:
    first = RoundLoad((
        _request(0, 100.0, 100.001, [(100.050, 1), (100.060, 1), (100.080, 2)]),  # a chunk of two tokens
        _request(1, 100.020, 100.030, [(100.100, 1), (100.111, 1)]),
        _request(2, 100.040, 100.040, [], error="HTTP 500"),
    ), client_cpu_s=0.01, wall_s=0.2)
    second = RoundLoad((
        _request(0, 205.0, 205.002, [(205.090, 1), (205.095, 1), (205.130, 1)]),
    ), client_cpu_s=0.01, wall_s=0.2)
    return [first, second]


def test_rows_are_the_values_the_case_figures_are_made_of() -> None:
    rounds = _rounds()
    rows = request_rows(rounds)
    assert [(r["round"], r["index"]) for r in rows] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    # seconds since each round's earliest scheduled send
    assert rows[1]["scheduled_s"] == pytest.approx(0.020) and rows[3]["scheduled_s"] == 0.0
    assert rows[0]["token_times_s"] == pytest.approx([0.050, 0.060, 0.080, 0.080])
    assert rows[0]["ttft_s"] == pytest.approx(0.049) and rows[1]["ttft_from_schedule_s"] == pytest.approx(0.080)
    failed = rows[2]
    assert failed["ok"] is False and failed["error"] == "HTTP 500"
    assert failed["ttft_s"] is None and failed["token_times_s"] == [] and failed["completion_tokens"] is None

    metrics = token_metrics(rounds, Slo())
    done = [r for r in rows if r["ok"]]
    assert np.percentile([r["ttft_s"] for r in done], 50) == pytest.approx(metrics["ttft_s"], rel=1e-12)
    assert np.percentile([r["tpot_s"] for r in done], 99) == pytest.approx(metrics["tpot_p99_s"], rel=1e-12)
    gaps = [g for r in done for g in RequestTiming(0.0, tuple(r["token_times_s"]), 0).token_gaps_s()]
    assert np.percentile(gaps, 99) == pytest.approx(metrics["token_latency_p99_s"], rel=1e-12)
    assert json.loads(json.dumps(rows)) == rows  # plain JSON values only


def test_a_served_case_writes_every_timed_request(tmp_path: Path) -> None:
    server, base = start_sse_server(tmp_path / "sse.log")
    records, run = tmp_path / "requests", tmp_path / "run.json"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "perf_tests/test_generation_served.py", "--benchmark-only", "-q", "-p", "no:cacheprovider",
             f"--served-url=openai+{base}", "--served-model=test-model", "--load=closed:2", "--rounds=2", "--warmup-rounds=1",
             "-k", "closed_c2", f"--served-requests={records}", f"--benchmark-json={run}", f"--basetemp={tmp_path / 'base'}"],
            cwd=REPO, capture_output=True, text=True, timeout=300)
    finally:
        server.stop()
    assert done.returncode == 0, done.stdout[-3000:]
    (bench,) = json.loads(run.read_text())["benchmarks"]
    info = bench["extra_info"]
    technique, case = info["case_id"].split("/", 1)
    rows = [json.loads(line) for line in (records / technique / f"{case}.jsonl").read_text().splitlines()]
    assert all(r["case_id"] == info["case_id"] for r in rows)
    assert len(rows) == info["requests_sent"] and {r["round"] for r in rows} == {0, 1}  # the timed rounds, no warm-up
    ok = [r for r in rows if r["ok"]]
    assert len(ok) == info["requests_completed"] > 0
    assert np.percentile([r["ttft_s"] for r in ok], 50) == pytest.approx(info["ttft_s"], rel=1e-9)
    assert np.percentile([r["ttft_from_schedule_s"] for r in ok], 99) == pytest.approx(info["ttft_p99_from_schedule_s"], rel=1e-9)
    assert sum(r["completion_tokens"] for r in ok) == 2 * bench["extra_info"]["items_per_round"]
    for r in ok:
        times = r["token_times_s"]
        assert len(times) == r["completion_tokens"] and times == sorted(times) and times[0] >= r["send_s"] >= r["scheduled_s"]
