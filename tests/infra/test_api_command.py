"""The API task's command from the stack template, run as it is on Fargate (on a loopback port)."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.infra.common import ROOT, props
from tests.support.servers import free_port

CALLER = "203.0.113.7"  # TEST-NET-3: an address no real caller has
# Stands in for the load balancer's address: uvicorn trusts 127.0.0.1 by default, not this.
BALANCER = "127.0.0.2"


def api_command(port: int) -> list[str]:
    command = list(props("ApiTaskDefinition")["ContainerDefinitions"][0]["Command"])
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    assert command[0] == "uvicorn"
    return [sys.executable, "-m", *command]


def get_health(port: int, timeout: float = 60.0) -> httpx.Response:
    """``GET /healthz`` as the load balancer forwards a caller's request, once the server is up."""
    deadline = time.monotonic() + timeout
    headers = {"X-Forwarded-For": CALLER, "X-Forwarded-Proto": "https"}
    transport = httpx.HTTPTransport(local_address=BALANCER)
    with httpx.Client(transport=transport, trust_env=False, timeout=5) as client:
        while True:
            try:
                return client.get(f"http://127.0.0.1:{port}/healthz", headers=headers)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def can_bind(address: str) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((address, 0))
        except OSError:
            return False
    return True


def test_the_deployed_api_command_serves_and_logs_the_callers_address():
    # Only the load balancer reaches the task, so its X-Forwarded-For is trusted; without that
    # every access-log line would show the load balancer's own address.
    if not can_bind(BALANCER):
        pytest.skip(f"this machine has no {BALANCER} on loopback (Linux has all of 127/8)")
    port = free_port()
    # The bundled model: start-up checks its files (quick; a missing model would stop start-up)
    # and loads it in the background while /healthz answers.
    env = dict(os.environ, LOG_LEVEL="info", API_WORKER_PROCESSES="false")
    server = subprocess.Popen(
        api_command(port),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = get_health(port)
    finally:
        server.terminate()
        log, _ = server.communicate(timeout=30)

    assert health.status_code == 200
    assert f'{CALLER}:0 - "GET /healthz HTTP/1.1" 200' in log


def test_the_deployed_api_command_keeps_an_idle_connection_open_past_uvicorns_default():
    # The ALB reuses idle connections for up to its idle timeout (600 s); uvicorn's default
    # keep-alive (5 s) would close them first and the ALB would answer 502. Here: one request,
    # 7 s idle, a second request on the same socket.
    port = free_port()
    env = dict(os.environ, API_WORKER_PROCESSES="false")  # the bundled model, in threads
    server = subprocess.Popen(
        api_command(port), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        get_health(port)  # up
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/healthz")
        assert connection.getresponse().read()
        local = connection.sock.getsockname()
        time.sleep(7)
        connection.request("GET", "/healthz")
        assert connection.getresponse().status == 200
        assert connection.sock.getsockname() == local  # not a new connection
        connection.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
