"""Loopback ports and processes: a free port, the JSON API in a subprocess, the allocator.

The benchmarks use these too, so that the suite and the measurements start servers one way.
"""

from __future__ import annotations

import contextlib
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import BaseServer
from typing import TypeVar

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]


ServerT = TypeVar("ServerT", bound=BaseServer)


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server on 127.0.0.1 (a free port unless given) that never asks DNS.

    ``HTTPServer.server_bind`` calls ``getfqdn()``, a reverse lookup; the network guard would
    fail the test for it, so this binds without one.
    """

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    @property
    def port(self) -> int:
        return self.server_port

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def spawn_api(
    *, model: str | None = None, max_image_mb: int = 10, ready_timeout: float = 120.0
) -> Iterator[str]:
    """Start ``uvicorn api.main:app`` on a free loopback port; yield its base URL once ready."""
    port = free_port()
    env = dict(os.environ, ALLOW_PRIVATE_URLS="false", MAX_IMAGE_MB=str(max_image_mb))
    if model:
        env["MODEL_URI"] = model
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_api_ready(base_url, process, ready_timeout)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_api_ready(base_url: str, process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Return once ``GET /readyz`` answers 200; raise if ``process`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"the API server exited with status {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/readyz").status_code == 200:
                    return
            time.sleep(0.2)
    raise RuntimeError(f"the API at {base_url} was not ready after {timeout:.0f} s")


def allocator() -> str:
    """The malloc this process runs on: an ``LD_PRELOAD``-ed one (a spawned server inherits
    ``LD_PRELOAD`` too), else the C library's."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "the C library's malloc"
    for name in ("tcmalloc", "jemalloc"):
        if f"lib{name}" in maps:
            return name
    return "glibc malloc"


@contextlib.contextmanager
def served_in_thread(server: ServerT) -> Iterator[ServerT]:
    """Run ``server.serve_forever`` on a daemon thread for the block; shut it down after."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
