"""A small OpenAI-compatible streaming server for the client's fault tests: ``python tests/sse_server.py PORT``.

It is a real HTTP server in a real child process (stdlib ``http.server``), there to produce on
demand what a production server does only when it breaks: a malformed chunk, a stream cut
short, an HTTP error, a server that serves one request at a time. The prompt chooses:
``normal``, ``malformed``, ``cut``, ``error``; every request generates ``max_tokens`` tokens
``INFERPERF_TEST_TOKEN_S`` seconds apart, one at a time across all connections (capacity one).
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
        else:
            self._json(200, {"status": "ok"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        mode, tokens = str(body.get("prompt", "normal")), int(body.get("max_tokens", 4))
        if mode == "error":
            self._json(500, {"detail": "injected failure"})
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
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
