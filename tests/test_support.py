"""The suite's own helpers (``tests/support``): the network guard, loopback servers, the
allocator probe.

The guard's tests call its check directly instead of a real ``connect``, so even a broken guard
could not make them send a packet.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler

import pytest

from tests.support.network import Network
from tests.support.servers import REPO_ROOT, LoopbackHTTPServer, free_port


def test_guard_is_installed(network: Network) -> None:
    assert getattr(socket.socket.connect, "__name__", "") == "connect"
    assert socket.socket.connect.__module__ == "tests.support.network"
    assert socket.getaddrinfo.__module__ == "tests.support.network"


@pytest.mark.parametrize(
    "address",
    [("192.0.2.1", 80), ("169.254.169.254", 80), ("::ffff:10.0.0.1", 443, 0, 0), ("example", 80)],
)
def test_guard_refuses_non_loopback(address: tuple) -> None:
    spare = Network()
    with socket.socket() as sock, pytest.raises(pytest.fail.Exception):
        spare.check_destination(sock, address, "connect")
    assert spare.violations and spare.connects == []


@pytest.mark.parametrize("address", [("127.0.0.1", 80), ("127.9.9.9", 80), ("::1", 80, 0, 0)])
def test_guard_allows_loopback(address: tuple) -> None:
    spare = Network()
    with socket.socket() as sock:
        spare.check_destination(sock, address, "connect")
    assert spare.violations == []


def test_unknown_names_are_never_looked_up(network: Network) -> None:
    with pytest.raises(pytest.fail.Exception):
        socket.getaddrinfo("dishlens-guard-check.invalid", 80)
    assert network.violations == ["DNS lookup of 'dishlens-guard-check.invalid'"]
    network.violations.clear()


def test_literals_resolve_without_dns(network: Network) -> None:
    assert socket.getaddrinfo("127.0.0.1", 80)[0][4][0] == "127.0.0.1"
    assert network.violations == []


def test_a_test_may_add_names_to_its_dns_table(network: Network) -> None:
    network.dns["kitchen.test"] = ["127.0.0.1"]
    network.dns["gone.test"] = socket.gaierror(socket.EAI_NONAME, "no such name")

    assert socket.getaddrinfo("kitchen.test", 80)[0][4] == ("127.0.0.1", 80)
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("gone.test", 80)
    assert network.lookups == ["kitchen.test", "gone.test"] and network.violations == []


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_the_loopback_server_starts_under_the_guard_and_answers(network: Network) -> None:
    server = LoopbackHTTPServer(_Hello)  # binding asks DNS nothing (no getfqdn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with urllib.request.urlopen(server.url("/"), timeout=10) as answer:
            assert answer.read() == b"hello"
    finally:
        server.shutdown()
        server.server_close()
    assert network.connects == [("127.0.0.1", server.port)] and network.violations == []


def test_a_free_port_can_be_bound() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))


PRINT_ALLOCATOR = "from tests.support.servers import allocator; print(allocator())"


@pytest.mark.parametrize(
    ("preload", "expected"), [("", "glibc malloc"), ("libtcmalloc_minimal.so.4", "tcmalloc")]
)
def test_the_allocator_probe_names_what_a_preload_chose(preload: str, expected: str) -> None:
    env = dict(os.environ, LD_PRELOAD=preload)
    command = [sys.executable, "-c", PRINT_ALLOCATOR]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    if preload and "cannot be preloaded" in result.stderr:
        pytest.skip(f"{preload} is not installed here (Debian: libtcmalloc-minimal4)")
    assert result.stdout.strip() == expected
