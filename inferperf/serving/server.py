"""The Triton host's lifecycle: free ports on 127.0.0.1, start, wait until ready, stop by PID.

Every failure names the host's log file, which is kept after the server stops.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from inferperf.serving.host import ACCESS_TOKEN_ENV
from inferperf.serving.models import ServedModel, write_manifest

LOCALHOST = "127.0.0.1"
#: the header Triton checks for its protected endpoints (statistics, model repository, …)
ACCESS_HEADER = "triton-access-token"


class ServerStartError(RuntimeError):
    """The server did not become ready; the message names its log."""


@dataclass(frozen=True)
class Endpoint:
    """Where a KServe-v2 server answers: ``host:port`` for each protocol it offers."""

    http: str | None
    grpc: str | None
    #: started by this session (False: ``--served-url``, someone else's server)
    owned: bool = True

    def url(self, protocol: str) -> str | None:
        return {"http": self.http, "grpc": self.grpc}[protocol]


def parse_served_url(value: str) -> Endpoint:
    """``--served-url``: comma list of ``grpc://host:port`` and/or ``http://host:port``."""
    urls: dict[str, str] = {}
    for part in (p.strip() for p in value.split(",") if p.strip()):
        scheme, sep, address = part.partition("://")
        if not sep or scheme not in ("grpc", "http") or ":" not in address:
            raise ValueError(f"--served-url: expected grpc://host:port and/or http://host:port, got {part!r}")
        urls[scheme] = address.rstrip("/")
    if not urls:
        raise ValueError("--served-url: no endpoint given")
    return Endpoint(http=urls.get("http"), grpc=urls.get("grpc"), owned=False)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOCALHOST, port))
        except OSError:
            return False
    return True


def free_port(avoid: Sequence[int] = ()) -> int:
    """A port nothing listens on now (the kernel's choice), not one of ``avoid``."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((LOCALHOST, 0))
            port = int(probe.getsockname()[1])
        if port not in avoid:
            return port
    raise OSError("no free TCP port on 127.0.0.1")


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


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


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
        self.process: subprocess.Popen[bytes] | None = None
        self.models: tuple[ServedModel, ...] = ()
        self.endpoint: Endpoint | None = None
        self.log_path: Path | None = None
        self.starts = 0
        self.access_token = secrets.token_urlsafe(24)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def ensure(self, models: Sequence[ServedModel]) -> Endpoint:
        """Serve exactly ``models``, restarting the host when the set changes."""
        if self.endpoint is not None and self.process is not None and self.process.poll() is None:
            if tuple(models) == self.models:
                return self.endpoint
        self.stop()
        return self.start(models)

    def start(self, models: Sequence[ServedModel]) -> Endpoint:
        self.starts += 1
        run_dir = self.workspace / f"host{self.starts:03d}"
        run_dir.mkdir(parents=True, exist_ok=True)
        manifest = write_manifest(models, run_dir / "manifest.json")
        self.log_path = run_dir / "host.log"
        http, grpc, metrics = choose_ports(self.preferred_ports)
        command = [
            sys.executable, "-m", "inferperf.serving.host", "--manifest", str(manifest),
            "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics),
            "--workspace", str(run_dir / "pytriton"),
        ]
        if self.threads:
            command += ["--threads", str(self.threads)]
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env[ACCESS_TOKEN_ENV] = self.access_token
        with open(self.log_path, "wb") as log:
            # a session of its own: stop() can end the host and its tritonserver child together
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.models = tuple(models)
        endpoint = Endpoint(http=f"{LOCALHOST}:{http}", grpc=f"{LOCALHOST}:{grpc}")
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise ServerStartError(
                    f"the Triton host exited with code {code} before it was ready; its log: {self.log_path}\n"
                    f"{tail(self.log_path)}"
                )
            if _ready(endpoint.http or "", models, timeout_s=2.0):
                self.endpoint = endpoint
                return endpoint
            time.sleep(0.25)
        self.stop()
        raise ServerStartError(
            f"the Triton host was not ready within {self.start_timeout_s:.0f} s; its log: {self.log_path}\n{tail(self.log_path)}"
        )

    def stop(self) -> None:
        """SIGTERM to the host (it stops tritonserver), then SIGKILL to its process group if it hangs."""
        process, self.process, self.endpoint, self.models = self.process, None, None, ()
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=10)

    def statistics(self, model: str) -> dict:
        """Triton's per-model statistics (request counts, batch executions) over HTTP."""
        if self.endpoint is None or self.endpoint.http is None:
            return {}
        request = urllib.request.Request(
            f"http://{self.endpoint.http}/v2/models/{model}/stats", headers={ACCESS_HEADER: self.access_token}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
