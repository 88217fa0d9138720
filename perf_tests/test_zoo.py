"""Technique 3 (docs/experiments.md#3): a classification model zoo on the CPU, local vs served.

The seed's 13 Keras applications exported as SavedModels (uint8 in, argmax classes out) and
their timm counterparts. "local": the loaded signature / model called in-process. "served": the
same artefact hosted by NVIDIA Triton Inference Server (PyTriton), called over gRPC and HTTP
(KServe v2). Batch 8, sequential; seconds per image cover the model call or the request only.
Then served throughput under load: N concurrent clients sending batch-1 requests, with and
without Triton's dynamic batching, with p50/p90/p99 latency from the raw per-request samples.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from inferperf.cases import Case, Tier
from inferperf.measure import ModelFacts, Workload
from inferperf.models.zoo_specs import ZOO, LoadVariant, load_variants
from inferperf.params import parametrize_cases
from inferperf.settings import Budget

TECHNIQUE = "zoo"
MODELS: dict[Tier, tuple[str, ...]] = {"quick": ("mobilenetv2", "efficientnetb0"), "standard": tuple(ZOO)}
IMAGES: dict[Tier, int] = {"quick": 16, "standard": 100}
BATCH = 8
BUDGETS: dict[Tier, Budget] = {"quick": Budget(rounds=3, warmup_rounds=1), "standard": Budget(2, 1)}
#: load test: which model, how many concurrent clients, requests per client per round
LOAD_MODEL: dict[Tier, str] = {"quick": "mobilenetv2_keras", "standard": "resnet50_keras"}
LOAD_CLIENTS: dict[Tier, tuple[int, ...]] = {"quick": (4,), "standard": (1, 4, 8)}
LOAD_REQUESTS: dict[Tier, int] = {"quick": 8, "standard": 25}
REQUIRES = {"keras": ("tf",), "timm": ("torch",)}
BACKEND = {"keras": "tf", "timm": "torch"}


def zoo_cases(tier: Tier) -> list[Case]:
    cases = []
    for key in MODELS[tier]:
        for framework in ("keras", "timm"):
            model, needs = f"{key}_{framework}", REQUIRES[framework]
            cases.append(Case(TECHNIQUE, model, "local", "cpu", "fp32", BATCH, backend=BACKEND[framework], requires=needs))
            for protocol in ("grpc", "http"):
                cases.append(
                    Case(TECHNIQUE, model, f"served_{protocol}", "cpu", "fp32", BATCH, backend="triton", requires=(*needs, "serve"))
                )
    return cases


#: every load variant of every tier, by name
LOAD_VARIANTS: dict[str, LoadVariant] = {v.name: v for clients in LOAD_CLIENTS.values() for v in load_variants(clients)}


def load_cases(tier: Tier) -> list[Case]:
    framework = LOAD_MODEL[tier].rpartition("_")[2]
    return [
        Case(TECHNIQUE, LOAD_MODEL[tier], variant.name, "cpu", "fp32", 1, backend="triton", requires=(*REQUIRES[framework], "serve"))
        for variant in load_variants(LOAD_CLIENTS[tier])
    ]


#: open-loop load on the same model: Poisson arrivals at these rates, dynamic batching off and on
OPEN_RATES: dict[Tier, tuple[float, ...]] = {"quick": (20.0,), "standard": (10.0, 40.0)}
OPEN_WINDOW_S: dict[Tier, float] = {"quick": 3.0, "standard": 10.0}


def open_load_cases(tier: Tier) -> list[Case]:
    framework = LOAD_MODEL[tier].rpartition("_")[2]
    return [
        Case(TECHNIQUE, LOAD_MODEL[tier], f"poisson_r{rate:g}{'_dynbatch' if dynamic else ''}", "cpu", "fp32", 1, backend="triton",
             requires=(*REQUIRES[framework], "serve"))
        for rate in OPEN_RATES[tier] for dynamic in (False, True)
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    makers = {"test_zoo": zoo_cases, "test_served_load": load_cases, "test_served_open_loop": open_load_cases}
    parametrize_cases(metafunc, makers[metafunc.function.__name__])


def _baseline(case: Case) -> Case:
    return replace(case, variant="local", batch=BATCH)


@pytest.fixture(scope="module")
def local_classes() -> dict[str, np.ndarray]:
    """Classes each model predicted locally, so served answers can be checked against them."""
    return {}


def test_zoo(case: Case, zoo_artefacts, zoo_images, settings, serve, zoo_served_models, local_classes, measure_case, request) -> None:
    if case.variant != "local":
        serve.require()  # before the model is exported: under an OpenAI --served-url this case skips
    artefact = zoo_artefacts(case.model)
    images = zoo_images(artefact.image_size, IMAGES[settings.tier])
    extra: dict[str, object] = {"images": len(images), "image_size": artefact.image_size, "export_s": artefact.export_s}
    if case.variant == "local":
        local = request.getfixturevalue("zoo_local")
        call, setup_s = local.classify, local.load_s
    else:
        from inferperf.serving.triton.client import make_client

        protocol = case.variant.removeprefix("served_")
        endpoint = serve(zoo_served_models(case, "test_zoo"))
        url = endpoint.url(protocol)
        if url is None:
            pytest.skip(f"--served-url gives no {protocol} endpoint")
        client = make_client(protocol, url)
        request.addfinalizer(client.close)
        call, setup_s = (lambda batch: client.infer(case.model, batch)), 0.0
        extra.update(protocol=protocol, endpoint=url, server="triton (pytriton)" if endpoint.owned else "--served-url")
    predicted: list[np.ndarray] = []

    def sequential_pass() -> None:
        predicted.clear()
        for start in range(0, len(images), BATCH):
            predicted.append(call(images[start : start + BATCH]))

    facts = ModelFacts(
        params=artefact.params, model_bytes=_bytes(artefact.directory), flops_per_item=artefact.flops_per_item, setup_s=setup_s
    )
    measure_case(
        case,
        # warming up with one batch: a round of the biggest models is minutes long at standard
        Workload(sequential_pass, items_per_round=len(images), inference=False, warmup=lambda: call(images[:BATCH])),
        BUDGETS,
        facts=facts,
        extra={**extra, "baseline_case_id": _baseline(case).case_id, "framework": artefact.framework},
    )
    classes = np.concatenate(predicted)
    assert classes.shape == (len(images),) and classes.dtype == np.int32
    if case.variant == "local":
        local_classes[case.model] = classes
    elif case.model in local_classes:
        # the server runs the very same artefact: it must answer exactly what the local call did
        np.testing.assert_array_equal(classes, local_classes[case.model])


def _bytes(directory) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def _load_target(case: Case, dynamic: bool, zoo_artefacts, zoo_images, serve, zoo_served_models):
    """(artefact, endpoint, served model name, one image) of a load case: both the plain and the
    dynamically batched model served, the load sent over gRPC."""
    serve.require()
    name = f"{case.model}_dynbatch" if dynamic else case.model
    artefact = zoo_artefacts(case.model)
    endpoint = serve(zoo_served_models(case, "test_served_load"))  # the model and its dynamically batched twin
    if endpoint.grpc is None:
        pytest.skip("--served-url gives no grpc endpoint (the load test uses gRPC)")
    return artefact, endpoint, name, zoo_images(artefact.image_size, 1)


def test_served_load(case: Case, zoo_artefacts, zoo_images, settings, serve, zoo_served_models, triton_host, measure_case, benchmark) -> None:
    """Closed loop: ``clients`` streams each sending batch-1 requests back to back, through the
    suite's load generator on one asyncio gRPC channel."""
    from inferperf.metrics.distribution import distribution
    from inferperf.metrics.requests import LoadPoint
    from inferperf.serving.triton.client import triton_load

    variant = LOAD_VARIANTS[case.variant]
    dynamic, clients = variant.dynamic_batching, variant.clients
    artefact, endpoint, name, image = _load_target(case, dynamic, zoo_artefacts, zoo_images, serve, zoo_served_models)
    requests = LOAD_REQUESTS[settings.tier]
    per_round: list[list[float]] = []
    runner = triton_load(endpoint.grpc, name)

    def load_round() -> None:
        rnd = runner.run([image] * (clients * requests), LoadPoint("closed", concurrency=clients))
        errors = [r.error for r in rnd.requests if not r.ok]
        assert not errors, errors[:3]
        per_round.append([r.e2e_s() for r in rnd.requests])  # type: ignore[misc]

    try:
        info = measure_case(
            case,
            Workload(load_round, items_per_round=clients * requests, inference=False),
            BUDGETS,
            facts=ModelFacts(params=artefact.params),
            extra={"clients": clients, "requests_per_client": requests, "dynamic_batching": dynamic,
                   "baseline_case_id": replace(case, variant=LoadVariant(clients, False).name).case_id},
        )
    finally:
        runner.close()
    # the rounds that ran, as recorded (a budget's time cap may trim them), after the warm-ups
    warmups, rounds = int(info["warmup_rounds"]), int(info["rounds"])
    timed = [latency for rnd in per_round[warmups : warmups + rounds] for latency in rnd]
    assert len(timed) == rounds * clients * requests
    latencies = distribution(timed) or {}
    extra: dict[str, object] = {f"latency_{q}_s": latencies.get(q) for q in ("p50", "p90", "p99")}
    extra["request_latencies_s"] = [float(v) for v in timed]
    if triton_host is not None:
        stats = triton_host.statistics(name).get("model_stats", [{}])[0]
        inferences, executions = int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))
        extra["server_mean_batch"] = inferences / executions if executions else None
    benchmark.extra_info.update(extra)  # known only after the timed rounds


def test_served_open_loop(case: Case, zoo_artefacts, zoo_images, settings, serve, zoo_served_models, measure_case) -> None:
    """Poisson arrivals at R requests/s on a seeded schedule, through the same load generator as
    served generation; latency from the scheduled time as well as from the send."""
    from inferperf.metrics.requests import LoadPoint, RoundLoad
    from inferperf.metrics.served import request_metrics
    from inferperf.serving.loadgen import round_requests
    from inferperf.serving.triton.client import triton_load

    rate = float(case.variant.split("_")[1].removeprefix("r"))
    dynamic = case.variant.endswith("_dynbatch")
    artefact, endpoint, name, image = _load_target(case, dynamic, zoo_artefacts, zoo_images, serve, zoo_served_models)
    point = LoadPoint("poisson", rate_rps=rate, seed=0)
    count = round_requests(point, OPEN_WINDOW_S[settings.tier])
    runner = triton_load(endpoint.grpc, name)
    rounds: list[RoundLoad] = []

    def derived(info) -> dict[str, object]:
        # a classification is one answer, no token stream: the request-level metrics are what applies
        return request_metrics(rounds[: int(info["rounds"])], point)

    try:
        info = measure_case(
            case,
            Workload(lambda: rounds.append(runner.run([image] * count, point)), items_per_round=count, inference=False,
                     warmup=lambda: runner.run([image] * 4, LoadPoint("closed", concurrency=1))),
            BUDGETS,
            facts=ModelFacts(params=artefact.params),
            extra={"dynamic_batching": dynamic, "baseline_case_id": replace(case, variant=f"poisson_r{rate:g}").case_id},
            derive=derived,
        )
    finally:
        runner.close()
    assert info["requests_failed"] == 0, info["errors"]
