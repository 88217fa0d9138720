"""The Triton host's lifecycle: free ports on 127.0.0.1, start, wait until ready, stop by PID.

Every failure names the host's log file, which is kept after the server stops.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from inferperf.serving.endpoints import TritonEndpoint
from inferperf.serving.process import LOCALHOST, ServerProcess, free_port, port_is_free
from inferperf.serving.triton.host import ACCESS_TOKEN_ENV
from inferperf.serving.triton.models import ServedModel, write_manifest

#: the header Triton checks for its protected endpoints (statistics, model repository, …)
ACCESS_HEADER = "triton-access-token"


def choose_ports(preferred: Sequence[int | None] = (None, None, None)) -> tuple[int, int, int]:
    """(http, grpc, metrics) ports: each preferred port if it is free, else another free one."""
    chosen: list[int] = []
    for wanted in preferred:
        if wanted is not None and wanted not in chosen and port_is_free(wanted):
            chosen.append(wanted)
        else:
            chosen.append(free_port(avoid=chosen))
    return chosen[0], chosen[1], chosen[2]


def _ready(http: str, models: Sequence[ServedModel], timeout_s: float) -> bool:
    paths = ["/v2/health/ready"] + [f"/v2/models/{m.name}/ready" for m in models]
    try:
        for path in paths:
            with urllib.request.urlopen(f"http://{http}{path}", timeout=timeout_s) as response:
                if response.status != 200:
                    return False
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return True


class TritonHost:
    """One host process (PyTriton + tritonserver) serving a set of models."""

    def __init__(
        self,
        workspace: Path,
        *,
        threads: int | None = None,
        start_timeout_s: float = 300.0,
        stop_timeout_s: float = 30.0,
        ports: Sequence[int | None] = (None, None, None),
    ) -> None:
        self.workspace = workspace
        self.threads = threads
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.preferred_ports = tuple(ports)
        self.server = ServerProcess("the Triton host", start_timeout_s=start_timeout_s, stop_timeout_s=stop_timeout_s)
        self.models: tuple[ServedModel, ...] = ()
        self.endpoint: TritonEndpoint | None = None
        self.starts = 0
        self.access_token = secrets.token_urlsafe(24)

    @property
    def pid(self) -> int | None:
        return self.server.pid

    @property
    def log_path(self) -> Path | None:
        return self.server.log_path

    def ensure(self, models: Sequence[ServedModel]) -> TritonEndpoint:
        """Serve exactly ``models``, restarting the host when the set changes."""
        if self.endpoint is not None and self.server.alive() and tuple(models) == self.models:
            return self.endpoint
        self.stop()
        return self.start(models)

    def start(self, models: Sequence[ServedModel]) -> TritonEndpoint:
        self.starts += 1
        run_dir = self.workspace / f"host{self.starts:03d}"
        run_dir.mkdir(parents=True, exist_ok=True)
        manifest = write_manifest(models, run_dir / "manifest.json")
        http, grpc, metrics = choose_ports(self.preferred_ports)
        command = [
            sys.executable, "-m", "inferperf.serving.triton.host", "--manifest", str(manifest),
            "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics),
            "--workspace", str(run_dir / "pytriton"),
        ]
        if self.threads:
            command += ["--threads", str(self.threads)]
        env = {**os.environ, ACCESS_TOKEN_ENV: self.access_token}
        endpoint = TritonEndpoint(http=f"{LOCALHOST}:{http}", grpc=f"{LOCALHOST}:{grpc}")
        self.server.launch(command, run_dir / "host.log", lambda: _ready(endpoint.http or "", models, timeout_s=2.0), env)
        self.models, self.endpoint = tuple(models), endpoint
        return endpoint

    def stop(self) -> None:
        """SIGTERM to the host (it stops tritonserver), then SIGKILL to its process group if it hangs."""
        self.endpoint, self.models = None, ()
        self.server.stop()

    def statistics(self, model: str) -> dict:
        """Triton's per-model statistics (request counts, batch executions) over HTTP."""
        if self.endpoint is None or self.endpoint.http is None:
            return {}
        request = urllib.request.Request(
            f"http://{self.endpoint.http}/v2/models/{model}/stats", headers={ACCESS_HEADER: self.access_token}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
