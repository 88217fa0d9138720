"""The Triton host's lifecycle and faults, against a real Triton server (PyTriton)."""

import socket
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import needs, run_pytest

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_parse_served_url():
    from inferperf.serving.endpoints import (
        OpenAIEndpoint,
        TritonEndpoint,
        parse_served_url,
        wrong_family,
    )

    endpoint = parse_served_url("grpc://triton.internal:8001,http://triton.internal:8000/")
    assert isinstance(endpoint, TritonEndpoint)
    assert endpoint.grpc == "triton.internal:8001" and endpoint.http == "triton.internal:8000" and not endpoint.owned
    for bad in ("triton:8001", "ftp://x:1", "grpc://nohostport", "", "openai+ftp://x:1/v1"):
        with pytest.raises(ValueError, match="--served-url"):
            parse_served_url(bad, "m")
    openai = parse_served_url("openai+http://gpu-box:8000", "llama")
    assert isinstance(openai, OpenAIEndpoint) and openai.base_url == "http://gpu-box:8000/v1" and openai.model == "llama"
    with pytest.raises(ValueError, match="--served-model"):
        parse_served_url("openai+http://gpu-box:8000/v1")  # the model its server serves is required
    with pytest.raises(ValueError, match="--served-model"):
        parse_served_url("grpc://triton:8001", "llama")  # a Triton URL takes no model name
    assert wrong_family("grpc://triton:8001", "triton") is None and wrong_family(None, "openai") is None
    assert "OpenAI-compatible" in (wrong_family("openai+http://x:1/v1", "triton") or "")
    assert "KServe-v2" in (wrong_family("http://x:1", "openai") or "")


def test_a_port_in_use_gets_another_port():
    from inferperf.serving.triton.lifecycle import choose_ports, port_is_free

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert not port_is_free(taken)
        http, grpc, metrics = choose_ports((taken, None, None))
        assert http != taken and len({http, grpc, metrics}) == 3


def test_a_server_that_fails_to_start_names_its_log(tmp_path):
    needs("pytriton", "serve")
    from inferperf.serving.process import ServerStartError
    from inferperf.serving.triton.lifecycle import TritonHost
    from inferperf.serving.triton.models import ServedModel

    host = TritonHost(tmp_path, start_timeout_s=120)
    broken = ServedModel(name="broken", kind="savedmodel", path=str(tmp_path / "no_such_savedmodel"))
    started = time.monotonic()
    with pytest.raises(ServerStartError) as failure:
        host.start([broken])
    assert time.monotonic() - started < 120
    message = str(failure.value)
    assert "exited with code" in message and str(host.log_path) in message
    assert host.log_path.exists() and "no_such_savedmodel" in host.log_path.read_text()


@pytest.fixture(scope="module")
def sleepy_server(tmp_path_factory):
    needs("pytriton", "serve")
    from inferperf.serving.triton.lifecycle import TritonHost
    from inferperf.serving.triton.models import ServedModel

    workspace = tmp_path_factory.mktemp("triton")
    host = TritonHost(workspace, start_timeout_s=180)
    with socket.socket() as busy:  # the preferred HTTP port is taken: the host must use another
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        host.preferred_ports = (busy.getsockname()[1], None, None)
        endpoint = host.start(
            [
                ServedModel(name="slow", kind="sleep", image_size=8, sleep_s=3.0),
                ServedModel(name="quick", kind="sleep", image_size=8, sleep_s=0.05),
                ServedModel(name="quick_dynbatch", kind="sleep", image_size=8, sleep_s=0.05, dynamic_batching=True, max_queue_delay_us=20000),
            ]
        )
        assert endpoint.http != f"127.0.0.1:{busy.getsockname()[1]}"
    yield host, endpoint, workspace
    pid = host.pid
    host.stop()
    assert pid is not None and not _alive(pid)
    assert _processes_mentioning(str(workspace)) == []  # tritonserver went with its host


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_a_request_that_times_out_fails_within_the_timeout(sleepy_server, protocol):
    from inferperf.serving.triton.client import RequestTimeout, make_client

    _, endpoint, _ = sleepy_server
    client = make_client(protocol, endpoint.url(protocol), timeout_s=0.5)
    image = np.zeros((1, 8, 8, 3), dtype=np.uint8)
    try:
        assert client.infer("quick", image).tolist() == [0]
        started = time.monotonic()
        with pytest.raises(RequestTimeout):
            client.infer("slow", image)
        assert time.monotonic() - started < 2.5
    finally:
        client.close()


def test_dynamic_batching_batches_concurrent_requests(sleepy_server):
    from inferperf.metrics.requests import LoadPoint
    from inferperf.serving.triton.client import triton_load

    host, endpoint, _ = sleepy_server
    image = np.zeros((1, 8, 8, 3), dtype=np.uint8)

    def counts(name: str, inferences: int = 0) -> tuple[int, int]:
        """The model's counts, once they include ``inferences``: Triton counts a request after its
        response went out, so beside a busy neighbour the last one can be read before it is counted."""
        deadline = time.monotonic() + 5
        while True:
            stats = host.statistics(name)["model_stats"][0]
            found = int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))
            if found[0] >= inferences or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    deltas = {}
    for name in ("quick", "quick_dynbatch"):
        before = counts(name)
        runner = triton_load(endpoint.grpc, name)
        try:
            rnd = runner.run([image] * 24, LoadPoint("closed", concurrency=6))
        finally:
            runner.close()
        assert all(r.ok for r in rnd.requests) and len(rnd.requests) == 24
        after = counts(name, before[0] + 24)
        deltas[name] = (after[0] - before[0], after[1] - before[1])
    assert deltas["quick"] == (24, 24)  # without the batcher every request runs alone
    inferences, executions = deltas["quick_dynbatch"]
    assert inferences == 24 and executions < 24  # concurrent requests were batched together


@pytest.mark.parametrize(
    ("url", "selection", "why"),
    [
        # the zoo's Triton cases under an OpenAI-compatible URL ...
        (["--served-url", "openai+http://127.0.0.1:9/v1", "--served-model", "m"], "zoo and served",
         "is an OpenAI-compatible server; the zoo's served cases (technique 3) need a KServe-v2 (Triton) endpoint"),
        # ... and served generation under a Triton URL
        (["--served-url", "grpc://127.0.0.1:9"], "generation and served",
         "is a KServe-v2 (Triton) server; served generation needs an OpenAI-compatible endpoint"),
    ],
)
def test_a_case_of_the_other_server_family_skips_saying_why(url, selection, why):
    from inferperf.extras import has_extra, missing_reason

    for extra in ("torch", "tf", "serve", "genserve"):
        if not has_extra(extra):  # else a case skips for its missing extra first
            pytest.skip(missing_reason(extra))
    result = run_pytest("perf_tests", "--benchmark-only", "--device", "cpu", "-q", "-rs", "-k", selection, *url, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skips and all(why in line for line in skips), result.stdout[-3000:]
    assert "error" not in result.stdout.lower().replace("errors", ""), result.stdout[-3000:]
