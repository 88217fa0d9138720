"""A small OpenAI-compatible streaming server for the client's fault tests: ``python tests/sse_server.py PORT``.

It is a real HTTP server in a real child process (stdlib ``http.server``), there to produce on
demand what a production server does only when it breaks: a malformed chunk, a stream cut
short, an HTTP error, a server that serves one request at a time. The prompt chooses:
``normal``, ``malformed``, ``cut``, ``error``; every request generates ``max_tokens`` tokens
``INFERPERF_TEST_TOKEN_S`` seconds apart, one at a time across all connections (capacity one).

``/v1/chat/completions`` streams as a reasoning model does: the first half of the tokens as
``reasoning_content`` deltas, then a tool call's arguments when the last message asks for
``tool``, then content (404 when ``INFERPERF_TEST_NO_CHAT`` is set, as a completions-only
server answers). ``/metrics`` is a Prometheus page in vLLM's names: requests running (the
streams open now) and the prefix-cache counters (a hit per repeated prompt).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN_S = float(os.environ.get("INFERPERF_TEST_TOKEN_S", "0.002"))
ONE_AT_A_TIME = threading.Lock()
STATE = {"running": 0, "queries": 0, "hits": 0}
SEEN: set[str] = set()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _json(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._json(200, {"data": [{"id": "test-model"}]})
        elif self.path == "/metrics":
            page = (
                "# TYPE vllm:num_requests_running gauge\n"
                f'vllm:num_requests_running{{model_name="test-model"}} {STATE["running"]}.0\n'
                "# TYPE vllm:num_requests_waiting gauge\n"
                'vllm:num_requests_waiting{model_name="test-model"} 0.0\n'
                "# TYPE vllm:prefix_cache_queries counter\n"
                f'vllm:prefix_cache_queries_total{{model_name="test-model"}} {STATE["queries"]}.0\n'
                "# TYPE vllm:prefix_cache_hits counter\n"
                f'vllm:prefix_cache_hits_total{{model_name="test-model"}} {STATE["hits"]}.0\n'
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "text/plain; version=0.0.4")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
        else:
            self._json(200, {"status": "ok"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        if self.path.endswith("/chat/completions"):
            self._chat(body)
            return
        mode, tokens = str(body.get("prompt", "normal")), int(body.get("max_tokens", 4))
        if not body.get("stream", True):  # a plain completion (the served-vs-local check asks one)
            self._json(200, {"choices": [{"index": 0, "text": " ".join(f"t{i}" for i in range(tokens)), "finish_reason": "length"}]})
            return
        STATE["queries"] += 1
        STATE["hits"] += mode in SEEN
        SEEN.add(mode)
        if mode == "error":
            self._json(500, {"detail": "injected failure"})
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        STATE["running"] += 1
        try:
            self._stream(mode, tokens)
        finally:
            STATE["running"] -= 1

    def _chat(self, body: dict) -> None:
        if os.environ.get("INFERPERF_TEST_NO_CHAT"):
            self._json(404, {"detail": "Not Found"})
            return
        tokens = int(body.get("max_tokens", 4))
        last = str((body.get("messages") or [{}])[-1].get("content", ""))
        stream = bool(body.get("stream"))
        if not stream:
            self._json(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "length"}]})
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        reasoning = tokens // 2
        tool = 1 if last == "tool" else 0
        for index in range(tokens):
            time.sleep(TOKEN_S)
            if index < reasoning:
                delta = {"reasoning_content": f"r{index} "}
            elif index < reasoning + tool:
                delta = {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}
            else:
                delta = {"content": f"c{index} "}
            self.wfile.write(f"data: {json.dumps({'choices': [{'index': 0, 'delta': delta}]})}\n\n".encode())
            self.wfile.flush()
        final = {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
                 "usage": {"prompt_tokens": 3, "completion_tokens": tokens, "total_tokens": 3 + tokens}}
        self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
        self.wfile.flush()

    def _stream(self, mode: str, tokens: int) -> None:
        with ONE_AT_A_TIME:
            for index in range(tokens):
                time.sleep(TOKEN_S)
                if mode == "malformed" and index == 1:
                    self.wfile.write(b"data: {not json\n\n")
                    self.wfile.flush()
                    return
                if mode == "cut" and index == 2:
                    self.wfile.flush()
                    self.close_connection = True
                    return
                chunk = {"choices": [{"index": 0, "text": f"t{index} "}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            final = {"choices": [{"index": 0, "text": "", "finish_reason": "length"}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": tokens, "total_tokens": 3 + tokens}}
            self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
            self.wfile.flush()


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
