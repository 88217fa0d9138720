"""The Triton host process: ``python -m inferperf.serving.triton.host --manifest M --http-port ...``.

It loads every model of the manifest, binds each into NVIDIA Triton Inference Server through
PyTriton (KServe v2 over gRPC and HTTP, on 127.0.0.1 only) and serves until SIGTERM/SIGINT.
The model code runs in this process, the server in PyTriton's ``tritonserver`` child: clients
(the benchmarks) live in another process, as they would in production.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import sysconfig
import time
from pathlib import Path
from typing import Callable

import numpy as np

from inferperf.serving.triton.models import ServedModel, read_manifest

InferFn = Callable[[np.ndarray], np.ndarray]
ACCESS_TOKEN_ENV = "INFERPERF_TRITON_TOKEN"


def _savedmodel_infer(model: ServedModel, threads: int | None) -> InferFn:
    from inferperf.models.keras_zoo import import_tensorflow

    tf = import_tensorflow(threads)
    signature = tf.saved_model.load(model.path).signatures["serving_default"]

    def infer(images: np.ndarray) -> np.ndarray:
        return signature(images=tf.constant(images))["classes"].numpy()

    return infer


def _timm_infer(model: ServedModel, threads: int | None) -> InferFn:
    import torch

    from inferperf.models.timm_zoo import ClassifyUint8
    from inferperf.models.vit import load_timm

    if threads:
        torch.set_num_threads(threads)
    network, _ = load_timm(Path(model.path), model.architecture)
    classify = ClassifyUint8(network).eval()

    def infer(images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return classify(torch.from_numpy(images)).numpy()

    return infer


def _sleep_infer(model: ServedModel, threads: int | None) -> InferFn:
    def infer(images: np.ndarray) -> np.ndarray:
        time.sleep(model.sleep_s)
        return np.zeros(len(images), dtype=np.int32)

    return infer


LOADERS: dict[str, Callable[[ServedModel, int | None], InferFn]] = {
    "savedmodel": _savedmodel_infer,
    "timm": _timm_infer,
    "sleep": _sleep_infer,
}


def bind(triton, model: ServedModel, infer: InferFn) -> None:
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

    @batch
    def triton_infer(images: np.ndarray) -> dict[str, np.ndarray]:
        return {"classes": infer(images).astype(np.int32).reshape(-1, 1)}

    batcher = DynamicBatcher(max_queue_delay_microseconds=model.max_queue_delay_us) if model.dynamic_batching else None
    size = model.image_size
    triton.bind(
        model_name=model.name,
        infer_func=triton_infer,
        inputs=[Tensor(name="images", dtype=np.uint8, shape=(size, size, 3))],
        outputs=[Tensor(name="classes", dtype=np.int32, shape=(1,))],
        config=ModelConfig(max_batch_size=model.max_batch_size, batcher=batcher),
        strict=True,
    )


def python_library_path() -> str:
    """PyTriton's Python-backend stub must load this interpreter's libpython (pyenv builds)."""
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    current = os.environ.get("LD_LIBRARY_PATH", "")
    return ":".join(p for p in (libdir, current) if p)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inferperf.serving.triton.host")
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    os.environ["LD_LIBRARY_PATH"] = python_library_path()
    models = read_manifest(args.manifest)
    infers = [(m, LOADERS[m.kind](m, args.threads)) for m in models]  # load before serving: fail fast

    from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

    config = TritonConfig(
        http_address="127.0.0.1",
        grpc_address="127.0.0.1",
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        allow_metrics=False,
    )
    # statistics and the other admin endpoints stay token-protected; the session that started
    # this host knows the token (passed in the environment, never on the command line)
    token = os.environ.get(ACCESS_TOKEN_ENV) or None
    triton = Triton(config=config, workspace=str(args.workspace), security_config=TritonSecurityConfig(access_token=token))
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for model, infer in infers:
            bind(triton, model, infer)
        triton.run()
        print(f"inferperf host ready: {', '.join(m.name for m in models)}", flush=True)
        while not stopping and triton.is_alive():
            time.sleep(0.2)
        return 0 if stopping else 3
    finally:
        triton.stop()


if __name__ == "__main__":
    sys.exit(main())
