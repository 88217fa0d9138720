"""The load generator's workers as Ray actors on a local two-node cluster (``ray.cluster_utils``),
one of them with its real-time clock injected 250 ms off: the measured offset finds the skew, the
workers' arrivals keep one schedule, and the round stays true to the stand-in's log."""

from __future__ import annotations

import pytest

from inferperf.metrics.requests import LoadPoint
from inferperf.metrics.served import Slo, served_metrics
from inferperf.serving.fidelity import (
    StandInUnavailable,
    TruthServer,
    build_truth_server,
    compare,
)
from inferperf.serving.loadgen import arrival_offsets
from inferperf.serving.openai.client import CompletionRequest, OpenAIStreamClient

SKEW_S = 0.25


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray", reason="install the [ray] extra: pip install -e '.[ray]'")
    from ray.cluster_utils import Cluster

    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    nodes.add_node(num_cpus=1)
    ray.init(address=nodes.address, include_dashboard=False, log_to_driver=False)
    try:
        yield nodes
    finally:
        ray.shutdown()
        nodes.shutdown()


@pytest.mark.slow
def test_ray_workers_on_two_nodes_keep_one_schedule_through_a_clock_skew(cluster, tmp_path) -> None:
    from inferperf.serving.ray_workers import RayPool

    try:
        build_truth_server()
    except StandInUnavailable as exc:
        pytest.skip(str(exc))
    with TruthServer(tmp_path, first_ms=20, gap_ms=10, tokens=16) as server:
        pool = RayPool(OpenAIStreamClient(server.base_url, "truth", "openai"), workers=2, address=cluster.address, clock_skews_s=(0.0, SKEW_S))
        try:
            assert len(set(pool._nodes)) == 2, "one worker per node"
            requests = [CompletionRequest(f"ray-{i}", 16) for i in range(24)]
            point = LoadPoint("poisson", rate_rps=60.0, seed=1)
            rnd = pool.run(requests, point)
        finally:
            pool.close()
        truth = server.truth()
    offsets = sorted(c.offset_s for c in pool.clocks)
    assert abs(offsets[0]) < 0.005 and abs(offsets[1] - SKEW_S) < 0.005, pool.clocks  # the skew, measured
    assert rnd.clock is not None and all(c["uncertainty_s"] < 0.05 for c in rnd.clock.values())
    assert [r.index for r in rnd.requests] == list(range(24)) and all(r.ok for r in rnd.requests)
    # one clock: the records, moved onto the coordinator's clock, put each send where the server
    # received it, whichever node sent it (without the correction the skewed worker's half would be
    # 250 ms off) ... At least three quarters within 10 ms, not all: the skewed worker sends half of them, and a
    # neighbour that pauses a process between its send stamp and the send moves one request, not the clock
    received = [truth[r.prompt].received_s for r in requests]
    sent = [r.send_s or 0.0 for r in rnd.requests]
    transit = [received[i] - sent[i] for i in range(24)]
    middle = sorted(transit)[12]
    off = sorted(abs(t - middle) for t in transit)
    assert off[17] < 0.01, (received, sent)
    # ... and one schedule: the records' schedule is the seeded one
    intended = arrival_offsets(point, 24)
    scheduled = [r.scheduled_s for r in rnd.requests]
    assert max(abs((scheduled[i] - scheduled[0]) - (intended[i] - intended[0])) for i in range(24)) < 0.005
    fidelity = compare([rnd], truth, lambda record: requests[record.index].prompt)
    assert fidelity.requests == 24
    metrics = served_metrics([rnd], point, Slo())
    if metrics["valid"]:
        # a round called valid kept that schedule: the server received the arrivals as it spaced them
        # (beside a busy neighbour the workers can send 20 ms late: then the round says it is invalid)
        # (against the median offset, not the first request's: one late first arrival would move every other one)
        offsets = [received[i] - intended[i] for i in range(24)]
        typical = sorted(offsets)[12]
        drift = [abs(o - typical) for o in offsets]
        assert max(drift) < 0.01, (drift, metrics["self_check"])
        assert fidelity.within_bound
    else:
        assert metrics["invalid_reason"]
    assert "clock_uncertainty_s" in metrics["self_check"]
