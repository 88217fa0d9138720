"""The streaming client of OpenAI-compatible ``/v1/completions`` (vLLM, SGLang, TGI, llama.cpp,
``transformers serve``), on the suite's own receive path (``inferperf.serving.wire``).

Why not an HTTP library: held against a server that logs when it really wrote each token
(``tests/truth_server.js``), httpx stamped arrivals late by the time its own parsing and the
event loop took — +11 ms at the median TTFT and 3x at p99 with 16 streams — and topped out below
1,500 tokens/s on a core. Here a request is prebuilt bytes written on a keep-alive connection; a
response is stamped per read by the kernel and in user space and kept as raw bytes; the events
are parsed, their JSON read and their tokens counted in ``complete``, after the round
(docs/techniques/served-generation.md, "The client", has the figures of each stack measured).

A request records: send, first byte (the response headers), every chunk's arrival and how many
tokens it carried, done; prompt and completion tokens from the server's ``usage`` and the client
tokenizer's count beside them; ``finish_reason``, HTTP status and any error; where its stamps
came from and how long its bytes waited in the socket. Tokens per chunk come, best first, from a
server that reports its running ``usage`` in every chunk (vLLM's ``continuous_usage_stats``),
else the client tokenizer on the chunk's text, else one per chunk.

``complete_once`` (the served-vs-local agreement) and ``list_models`` are plain requests outside
any measurement, on httpx.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

from inferperf.metrics.requests import ServedRequest
from inferperf.serving.endpoints import Dialect
from inferperf.serving.wire import ConnectionPool, Exchange, post

CONNECT_TIMEOUT_S = 5.0
#: the end of a server-sent event: a blank line (sse-starlette writes CRLF line ends)
_EVENT_END = re.compile(rb"\r?\n\r?\n")


@dataclass
class CompletionRequest:
    """One request's payload: the prompt text and its length in tokens (client tokenizer)."""

    prompt: str
    max_tokens: int
    prompt_tokens: int | None = None
    #: the chat endpoint's messages (None: one user message holding ``prompt``)
    messages: list[dict[str, str]] | None = None
    #: multi-turn traffic: the session and the turn (0-based), and the think time after this turn's answer
    session: int | None = None
    turn: int | None = None
    think_s: float = 0.0
    #: trace replay: seconds after the trace's first request at which this one arrives
    arrival_s: float | None = None
    #: which shared prefix the prompt starts with (None: none)
    prefix_group: int | None = None
    #: the request's bytes as each client sends them (built once, before the round)
    wire: dict[tuple[str, str, str, bool, str], bytes] = field(default_factory=dict, repr=False, compare=False)


#: the endpoints the client speaks, under the base URL
API_PATHS = {"completions": "/completions", "chat": "/chat/completions"}


def request_body(model: str, request: CompletionRequest, dialect: Dialect, forcing: bool, *, stream: bool = True,
                 api: str = "completions") -> dict[str, Any]:
    """The JSON body: greedy, ``max_tokens``, and the dialect's way of forcing the output length."""
    body: dict[str, Any] = {"model": model, "max_tokens": request.max_tokens, "temperature": 0, "stream": stream}
    if api == "chat":
        body["messages"] = request.messages or [{"role": "user", "content": request.prompt}]
    else:
        body["prompt"] = request.prompt
    if not forcing or dialect == "plain":
        return body
    if dialect == "llamacpp":
        body["repeat_penalty"] = 1.0  # greedy as the local reference decodes (no output-length field exists)
    elif dialect == "transformers":
        # transformers serve takes extra settings as a whole GenerationConfig (JSON): greedy,
        # exactly max_tokens new tokens, no end-of-sequence id (as the local variants force it)
        body["generation_config"] = json.dumps({
            "max_new_tokens": request.max_tokens, "min_new_tokens": request.max_tokens, "do_sample": False, "eos_token_id": -1,
        })
        if stream:
            # transformers 5.25 sends a stream's usage only when asked (a chunk after the finish
            # reason); 5.24 sent it unasked and ignored this field with a warning
            body["stream_options"] = {"include_usage": True}
    else:
        body.update(min_tokens=request.max_tokens, ignore_eos=True)
        if stream:
            body["stream_options"] = {"include_usage": True, "continuous_usage_stats": True}
    return body


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class TokenCounter:
    """Counts the tokens of a chunk's text with the served model's tokenizer; pickles with it, so a
    worker process counts its own chunks."""

    tokenizer: Any

    def __call__(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass
class _StreamState:
    counted: int = 0
    running_usage: int = 0


def _chunk(record: ServedRequest, data: str, arrived: float, state: _StreamState, count_tokens: Callable[[str], int] | None) -> bool:
    """One ``data:`` payload into ``record``; False when the stream must stop (an error)."""
    try:
        chunk = json.loads(data)
        if not isinstance(chunk, dict):
            raise ValueError("not an object")
    except ValueError:
        record.error = f"request {record.index}: malformed stream chunk {data[:80]!r}"
        return False
    if "error" in chunk:
        record.error = f"request {record.index}: the server's stream reported an error: {str(chunk['error'])[:200]}"
        return False
    choices = [c for c in chunk.get("choices") or [] if isinstance(c, dict)]
    deltas: list[dict[str, Any]] = [d if isinstance(d := c.get("delta"), dict) else {} for c in choices]
    text = "".join(str(c.get("text") or d.get("content") or "") for c, d in zip(choices, deltas))
    # the chat endpoint's other generated tokens: a reasoning model's thinking, a tool call's arguments
    reasoning = "".join(str(d.get("reasoning_content") or d.get("reasoning") or "") for d in deltas)
    tool = "".join(str((t.get("function") or {}).get("arguments") or "") for d in deltas for t in d.get("tool_calls") or [] if isinstance(t, dict))
    kind = "content" if text else "reasoning" if reasoning else "tool" if tool else None
    text = text or reasoning or tool
    usage = chunk.get("usage")
    tokens: int | None = None
    if isinstance(usage, dict):
        record.prompt_tokens_server = _int(usage.get("prompt_tokens"))
        completion = _int(usage.get("completion_tokens"))
        if completion is not None:
            if text:  # a running count in a chunk with text: the server says what it carried
                tokens = completion - state.running_usage
            state.running_usage = completion
            record.completion_tokens_server = completion
    if text:
        client_tokens = count_tokens(text) if count_tokens else None
        state.counted += client_tokens or 0
        record.chunk_times_s.append(arrived)
        record.chunk_tokens.append(tokens if tokens is not None else client_tokens if client_tokens is not None else 1)
        if kind != "content" or record.chunk_kinds:  # kinds kept only once a chunk was not plain content
            record.chunk_kinds += ["content"] * (len(record.chunk_times_s) - 1 - len(record.chunk_kinds)) + [str(kind)]
    finish = next((c.get("finish_reason") for c in choices if c.get("finish_reason")), None)
    if finish:
        record.finish_reason = str(finish)
    return True


def parse_stream(record: ServedRequest, exchange: Exchange, count_tokens: Callable[[str], int] | None) -> None:
    """A streamed response's events into ``record``: each chunk at the arrival of the read that
    completed it, the server's usage, the client tokenizer's count, the finish reason or the error."""
    state = _StreamState()
    body = bytes(exchange.body)
    start, chunk_reads = 0, []
    kernel = any(k is not None for k in exchange.read_kernel_s)
    for end in _EVENT_END.finditer(body):
        read = min(exchange.read_of(end.end()), len(exchange.read_user_s) - 1)
        arrived = exchange.arrival_s(read)
        # exact when the read ended with this chunk and the kernel stamped it; else it came at some
        # point since the previous read (a read the kernel left unstamped carries the loop's stamp)
        exact = end.end() == exchange.read_body_end[read] and exchange.read_kernel_s[read] is not None
        slack = 0.0 if exact else arrived - (exchange.read_user_s[read - 1] if read > 0 else (exchange.send_s or arrived))
        for line in body[start:end.start()].split(b"\n"):
            line = line.rstrip(b"\r")
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip().decode("utf-8", "replace")
            if data == "[DONE]":
                break
            chunks_before = len(record.chunk_times_s)
            if not _chunk(record, data, arrived, state, count_tokens):
                record.done_s = arrived
                return
            added = len(record.chunk_times_s) - chunks_before
            chunk_reads += [read] * added
            if kernel:
                record.chunk_slack_s += [max(0.0, slack)] * added
        start = end.end()
    # a chunk whose read also completed a later chunk carries the later one's stamp
    record.shared_read_chunks = sum(a == b for a, b in zip(chunk_reads, chunk_reads[1:]))
    if count_tokens is not None:
        record.completion_tokens_client = state.counted
    if record.error is None and record.finish_reason is None:
        record.error = f"request {record.index}: stream ended without a finish_reason after {len(record.chunk_times_s)} chunks (cut)"


@dataclass
class OpenAIStreamClient:
    """Streams completions from ``base_url`` (``http://host:port/v1``) for ``model``: the load
    generator's ``LoadClient`` for the OpenAI-compatible family."""

    base_url: str
    model: str
    dialect: Dialect = "openai"
    #: counts the tokens of a chunk's text (the served model's tokenizer), None: one per chunk
    count_tokens: Callable[[str], int] | None = None
    timeout_s: float = 60.0
    #: False once the server refused the length-forcing fields (the record says so)
    forcing: bool = True
    pool: ConnectionPool | None = field(default=None, repr=False)
    #: ``completions`` (``/v1/completions``) or ``chat`` (``/v1/chat/completions``)
    api: str = "completions"

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url.rstrip("/"))
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the streaming client speaks plain HTTP/1.1 to http://host:port/v1, got {self.base_url!r}")
        if self.api not in API_PATHS:
            raise ValueError(f"no endpoint {self.api!r}; one of {', '.join(API_PATHS)}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = f"{parts.path}{API_PATHS[self.api]}"

    async def open(self) -> None:
        self.pool = ConnectionPool(self.host, self.port)

    def payload(self, request: CompletionRequest) -> bytes:
        """The request's bytes, built once (before the round, for a warmed-up client)."""
        key = (self.base_url, self.model, self.dialect, self.forcing, self.api)
        built = request.wire.get(key)
        if built is None:
            body = json.dumps(request_body(self.model, request, self.dialect, self.forcing, api=self.api)).encode()
            built = request.wire[key] = post(self.host, self.port, self.path, body)
        return built

    def prepare(self, requests: Sequence[CompletionRequest]) -> None:
        """Build every request's bytes now, so none is built while the load runs."""
        for request in requests:
            self.payload(request)

    async def send(self, record: ServedRequest, request: CompletionRequest) -> None:
        """Sends one streamed completion and fills ``record`` (parsed after the round); never raises."""
        assert self.pool is not None, "open() the client first"
        loop = asyncio.get_running_loop()
        exchange = await self.pool.exchange(self.payload(request), Exchange(), loop)
        if exchange.status in (400, 422) and self.forcing and self.dialect == "openai":
            # a server without vLLM's extensions: fall back to standard fields, say so in the record
            self.forcing = False
            exchange = await self.pool.exchange(self.payload(request), Exchange(), loop)
        record.raw = exchange
        record.length_forced = self.forcing and self.dialect != "plain"
        record.send_s, record.done_s, record.status = exchange.send_s, exchange.done_s, exchange.status
        if exchange.send_s is not None and exchange.sent_s is not None:
            record.send_slack_s = max(0.0, exchange.sent_s - exchange.send_s)
        if exchange.read_user_s:
            record.first_byte_s = exchange.arrival_s(0)
        if exchange.error is not None:
            where = f"{self.base_url}: " if exchange.send_s is None else ""
            record.error = f"request {record.index}: {where}{exchange.error}"

    def complete(self, records: Sequence[ServedRequest]) -> None:
        """After the round: each response's events parsed, its chunks stamped, its tokens counted."""
        for record in records:
            exchange = record.raw
            record.raw = None
            if not isinstance(exchange, Exchange):
                continue
            record.receive_lags_s = exchange.receive_lags_s()
            record.stamp_source = "kernel" if any(k is not None for k in exchange.read_kernel_s) else "user"
            if record.error is not None and not exchange.body:
                continue
            if exchange.status not in (None, 200):
                detail = bytes(exchange.body).decode("utf-8", "replace").strip().replace("\n", " ")
                record.error = f"request {record.index}: HTTP {exchange.status}: {detail[:200]}"
                continue
            cut = record.error
            record.error = None
            parse_stream(record, exchange, self.count_tokens)
            if cut is not None and record.error is None:
                record.error = f"{cut} (stream cut after {len(record.chunk_times_s)} chunks)"

    async def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


def complete_once(base_url: str, model: str, prompt: str, max_tokens: int, dialect: Dialect, timeout_s: float = 60.0,
                  api: str = "completions") -> dict[str, Any]:
    """One non-streamed greedy completion (the served-vs-local token check); raises on failure.

    A server that refuses the length-forcing fields (400/422: ``transformers serve`` and vLLM's
    ``min_tokens``) is asked again with the standard fields alone, as the streamed requests are."""
    import httpx

    url = f"{base_url.rstrip('/')}{API_PATHS[api]}"
    request = CompletionRequest(prompt, max_tokens)
    timeout = httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S)
    response = httpx.post(url, json=request_body(model, request, dialect, True, stream=False, api=api), timeout=timeout)
    if response.status_code in (400, 422) and dialect != "plain":
        response = httpx.post(url, json=request_body(model, request, dialect, False, stream=False, api=api), timeout=timeout)
    response.raise_for_status()
    return response.json()


def list_models(base_url: str, timeout_s: float = 5.0) -> list[str]:
    """The model ids ``GET /models`` names (a dead endpoint raises within ``timeout_s``)."""
    import httpx

    response = httpx.get(f"{base_url.rstrip('/')}/models", timeout=timeout_s)
    response.raise_for_status()
    return [str(m.get("id")) for m in response.json().get("data", []) if isinstance(m, dict)]
