"""Clients of a served model over the KServe v2 protocol (Triton's gRPC and HTTP clients).

The served benchmarks talk to a ``ServedClient`` only, so another server (TF Serving's gRPC
PredictionService, say) plugs in by implementing ``infer``/``close`` and registering its
protocol in ``CLIENTS``.
"""

from __future__ import annotations

import time
from typing import Callable, Literal, Protocol

import numpy as np

Protocol_ = Literal["grpc", "http"]
DEFAULT_TIMEOUT_S = 60.0


class RequestTimeout(TimeoutError):
    """A request did not complete within the client's timeout."""


class ServedClient(Protocol):
    protocol: str

    def infer(self, model: str, images: np.ndarray) -> np.ndarray:
        """uint8 (N, S, S, 3) images -> int32 classes (N,)."""
        ...

    def close(self) -> None: ...


class TritonGrpcClient:
    protocol = "grpc"

    def __init__(self, url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        import tritonclient.grpc as grpcclient

        self._grpc = grpcclient
        self.timeout_s = timeout_s
        self.client = grpcclient.InferenceServerClient(url=url)

    def infer(self, model: str, images: np.ndarray) -> np.ndarray:
        from tritonclient.utils import InferenceServerException

        request = self._grpc.InferInput("images", list(images.shape), "UINT8")
        request.set_data_from_numpy(np.ascontiguousarray(images))
        try:
            result = self.client.infer(
                model, [request], outputs=[self._grpc.InferRequestedOutput("classes")], client_timeout=self.timeout_s
            )
        except InferenceServerException as exc:
            if "deadline" in str(exc).lower():
                raise RequestTimeout(f"gRPC request to {model!r} exceeded {self.timeout_s} s") from None
            raise
        return result.as_numpy("classes").reshape(-1)

    def close(self) -> None:
        self.client.close()


class TritonHttpClient:
    protocol = "http"

    def __init__(self, url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        import tritonclient.http as httpclient

        self._http = httpclient
        self.timeout_s = timeout_s
        self.client = httpclient.InferenceServerClient(url=url, connection_timeout=timeout_s, network_timeout=timeout_s)

    def infer(self, model: str, images: np.ndarray) -> np.ndarray:
        request = self._http.InferInput("images", list(images.shape), "UINT8")
        request.set_data_from_numpy(np.ascontiguousarray(images), binary_data=True)
        try:
            result = self.client.infer(model, [request], outputs=[self._http.InferRequestedOutput("classes", binary_data=True)])
        except Exception as exc:  # gevent/socket timeouts surface under several types
            if "timeout" in type(exc).__name__.lower() or "timed out" in str(exc).lower():
                raise RequestTimeout(f"HTTP request to {model!r} exceeded {self.timeout_s} s") from None
            raise
        return result.as_numpy("classes").reshape(-1)

    def close(self) -> None:
        self.client.close()


CLIENTS: dict[str, Callable[[str, float], ServedClient]] = {"grpc": TritonGrpcClient, "http": TritonHttpClient}


def make_client(protocol: str, url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> ServedClient:
    return CLIENTS[protocol](url, timeout_s)


# --------------------------------------------------------------------------------------------
# Load: through the suite's one load generator (inferperf.serving.loadgen)


def triton_load(url: str, model: str, timeout_s: float = DEFAULT_TIMEOUT_S):
    """A ``LoadRunner`` sending batch-1 classifications of ``model`` at ``url`` (gRPC): closed loop
    (N streams back to back) or open loop, as the rounds ask."""
    from inferperf.serving.loadgen import LoadRunner

    return LoadRunner(TritonLoadClient(url, model, timeout_s), timeout_s=timeout_s)


# --------------------------------------------------------------------------------------------
# The load generator's client for Triton (KServe v2 over gRPC, asyncio client)


class TritonLoadClient:
    """``inferperf.serving.loadgen.LoadClient`` for Triton: one batch-1 classification per request on
    one shared HTTP/2 channel. A request has no stream: it is one chunk of one item that arrives with
    the answer, so its latency is ``e2e`` (and ``ttft``) in the served metrics."""

    def __init__(self, url: str, model: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url, self.model, self.timeout_s = url, model, timeout_s
        self.client = None

    async def open(self) -> None:
        import tritonclient.grpc.aio as aio

        self._aio = aio
        self.client = aio.InferenceServerClient(url=self.url)

    async def send(self, record, images: np.ndarray) -> None:
        aio = self._aio
        request = aio.InferInput("images", list(images.shape), "UINT8")
        request.set_data_from_numpy(np.ascontiguousarray(images))
        record.send_s = time.perf_counter()
        try:
            result = await self.client.infer(  # type: ignore[attr-defined]
                self.model, [request], outputs=[aio.InferRequestedOutput("classes")], client_timeout=self.timeout_s
            )
            arrived = time.perf_counter()
            classes = result.as_numpy("classes")
            if classes is None or classes.size != len(images):
                raise ValueError(f"expected {len(images)} classes, got {None if classes is None else classes.size}")
            record.first_byte_s = record.done_s = arrived
            record.chunk_times_s, record.chunk_tokens = [arrived], [len(images)]
            record.status, record.finish_reason = 200, "complete"
        except Exception as exc:  # recorded: a failed request stays in every denominator
            record.error = f"request {record.index}: {type(exc).__name__}: {str(exc)[:200]}"
            record.done_s = time.perf_counter()

    def complete(self, records) -> None:
        """Nothing to parse after the round: an answer is complete when it arrives."""

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
