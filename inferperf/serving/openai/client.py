"""An async streaming client of OpenAI-compatible ``/v1/completions`` (vLLM, SGLang, TGI, llama.cpp,
``transformers serve``), built on httpx.

Why httpx: one well-kept library with an asyncio client, connection pooling with explicit limits
(the pool must never be what queues a request), streamed bodies read line by line, and typed
timeouts; ``transformers[serving]`` already installs it (through ``openai``). The ``openai``
package itself is not used: its client hides when each chunk arrived behind its own parsing and
retries, and a benchmark must see every byte's time and every failure.

A request records: send, first byte (the response headers), every chunk's arrival and how many
tokens it carried, done; prompt and completion tokens from the server's ``usage`` and the client
tokenizer's count beside them; ``finish_reason``, HTTP status and any error. Tokens per chunk
come, best first, from a server that reports its running ``usage`` in every chunk (vLLM's
``continuous_usage_stats``), else the client tokenizer on the chunk's text, else one per chunk.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from inferperf.metrics.requests import ServedRequest
from inferperf.serving.endpoints import Dialect

CONNECT_TIMEOUT_S = 5.0


@dataclass
class CompletionRequest:
    """One request's payload: the prompt text and its length in tokens (client tokenizer)."""

    prompt: str
    max_tokens: int
    prompt_tokens: int | None = None


@dataclass
class OpenAIStreamClient:
    """Streams completions from ``base_url`` (``http://host:port/v1``) for ``model``."""

    base_url: str
    model: str
    dialect: Dialect = "openai"
    #: counts the tokens of a chunk's text (the served model's tokenizer), None: one per chunk
    count_tokens: Callable[[str], int] | None = None
    timeout_s: float = 60.0
    #: False once the server refused the length-forcing fields (the record says so)
    forcing: bool = True
    _client: Any = field(default=None, repr=False)

    def open(self) -> None:
        import httpx

        self._client = httpx.AsyncClient(
            base_url=self.base_url.rstrip("/"),
            timeout=httpx.Timeout(self.timeout_s, connect=CONNECT_TIMEOUT_S),
            # no pool limit: an open-loop arrival must never queue inside the HTTP library
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=256),
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def body(self, request: CompletionRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model, "prompt": request.prompt, "max_tokens": request.max_tokens,
            "temperature": 0, "stream": True,
        }
        if not self.forcing or self.dialect == "plain":
            return body
        if self.dialect == "llamacpp":
            body["repeat_penalty"] = 1.0  # greedy as the local reference decodes (no output-length field exists)
            return body
        if self.dialect == "transformers":
            # transformers serve takes extra settings as a whole GenerationConfig (JSON): greedy,
            # exactly max_tokens new tokens, no end-of-sequence id (as the local variants force it)
            body["generation_config"] = json.dumps({
                "max_new_tokens": request.max_tokens, "min_new_tokens": request.max_tokens,
                "do_sample": False, "eos_token_id": -1,
            })
        else:
            body.update(min_tokens=request.max_tokens, ignore_eos=True,
                        stream_options={"include_usage": True, "continuous_usage_stats": True})
        return body

    async def send(self, record: ServedRequest, request: CompletionRequest) -> None:
        """Sends one streamed completion and fills ``record``; errors are recorded, never raised."""
        import httpx

        try:
            await self._stream(record, request)
            if record.status in (400, 422) and self.forcing and self.dialect == "openai":
                # a server without vLLM's extensions: fall back to standard fields, say so in the record
                self.forcing = False
                fresh = ServedRequest(record.index, record.scheduled_s, record.prompt_tokens_client, record.dispatched_s)
                await self._stream(fresh, request)
                record.__dict__.update(fresh.__dict__)
        except httpx.ConnectError as exc:
            record.error = f"request {record.index}: cannot connect to {self.base_url}: {exc}"
        except httpx.TimeoutException:
            record.error = f"request {record.index}: no answer from {self.base_url} within {self.timeout_s:.0f} s"
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            record.error = f"request {record.index}: stream cut after {len(record.chunk_times_s)} chunks ({type(exc).__name__}: {exc})"
        except httpx.HTTPError as exc:
            record.error = f"request {record.index}: {type(exc).__name__}: {exc}"
        if record.done_s is None:
            record.done_s = time.perf_counter()

    async def _stream(self, record: ServedRequest, request: CompletionRequest) -> None:
        body = self.body(request)
        record.send_s = time.perf_counter()
        async with self._client.stream("POST", "/completions", json=body) as response:
            record.first_byte_s = time.perf_counter()
            record.status = response.status_code
            if response.status_code != 200:
                detail = (await response.aread()).decode("utf-8", "replace").strip().replace("\n", " ")
                record.error = f"request {record.index}: HTTP {response.status_code}: {detail[:200]}"
                record.done_s = time.perf_counter()
                return
            counted, running_usage = 0, 0
            async for line in response.aiter_lines():
                arrived = time.perf_counter()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                    if not isinstance(chunk, dict):
                        raise ValueError("not an object")
                except ValueError:
                    record.error = f"request {record.index}: malformed stream chunk {data[:80]!r}"
                    record.done_s = arrived
                    return
                if "error" in chunk:
                    record.error = f"request {record.index}: the server's stream reported an error: {str(chunk['error'])[:200]}"
                    record.done_s = arrived
                    return
                choices = chunk.get("choices") or []
                text = "".join(str(c.get("text") or (c.get("delta") or {}).get("content") or "") for c in choices if isinstance(c, dict))
                usage = chunk.get("usage")
                tokens: int | None = None
                if isinstance(usage, dict):
                    record.prompt_tokens_server = _int(usage.get("prompt_tokens"))
                    completion = _int(usage.get("completion_tokens"))
                    if completion is not None:
                        if text:  # a running count in a chunk with text: the server says what it carried
                            tokens = completion - running_usage
                        running_usage = completion
                        record.completion_tokens_server = completion
                if text:
                    client_tokens = self.count_tokens(text) if self.count_tokens else None
                    counted += client_tokens or 0
                    if tokens is None:
                        tokens = client_tokens if client_tokens is not None else 1
                    record.chunk_times_s.append(arrived)
                    record.chunk_tokens.append(tokens)
                finish = next((c.get("finish_reason") for c in choices if isinstance(c, dict) and c.get("finish_reason")), None)
                if finish:
                    record.finish_reason = str(finish)
            record.done_s = time.perf_counter()
            if self.count_tokens is not None:
                record.completion_tokens_client = counted
            if record.finish_reason is None:
                record.error = f"request {record.index}: stream ended without a finish_reason after {len(record.chunk_times_s)} chunks (cut)"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def openai_sender(client: OpenAIStreamClient):
    """(send, close) for ``inferperf.serving.loadgen.LoadRunner``."""
    client.open()
    return client.send, client.aclose


def complete_once(base_url: str, model: str, prompt: str, max_tokens: int, dialect: Dialect, timeout_s: float = 60.0) -> dict[str, Any]:
    """One non-streamed greedy completion (the served-vs-local token check); raises on failure."""
    import httpx

    client = OpenAIStreamClient(base_url, model, dialect)
    body = client.body(CompletionRequest(prompt, max_tokens))
    body["stream"] = False
    body.pop("stream_options", None)
    response = httpx.post(f"{base_url.rstrip('/')}/completions", json=body, timeout=httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S))
    response.raise_for_status()
    return response.json()


def list_models(base_url: str, timeout_s: float = 5.0) -> list[str]:
    """The model ids ``GET /models`` names (a dead endpoint raises within ``timeout_s``)."""
    import httpx

    response = httpx.get(f"{base_url.rstrip('/')}/models", timeout=timeout_s)
    response.raise_for_status()
    return [str(m.get("id")) for m in response.json().get("data", []) if isinstance(m, dict)]
