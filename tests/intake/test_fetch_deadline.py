"""FETCH_TIMEOUT covers the whole exchange, headers included: servers that drip their status
line, their headers or endless ``100 Continue`` lines are cut off at the deadline."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from dishlens.settings import Settings
from intake.errors import DownloadError, DownloadTimeoutError
from intake.fetch import download
from tests.intake import photos

# How long each slow server keeps going; far beyond the 1 s deadline the tests use.
SERVER_SECONDS = 15.0
Behaviour = Callable[[socket.socket], None]


def _drip(sock: socket.socket, data: bytes, every: float = 0.1) -> None:
    stop = time.monotonic() + SERVER_SECONDS
    for byte in data:
        if time.monotonic() > stop:
            return
        sock.sendall(bytes([byte]))
        time.sleep(every)


def slow_status_line(sock: socket.socket) -> None:
    _drip(sock, b"HTTP/1.1 200 OK" + b" " * 500 + b"\r\n", every=0.05)


def endless_headers(sock: socket.socket) -> None:
    sock.sendall(b"HTTP/1.1 200 OK\r\n")
    stop = time.monotonic() + SERVER_SECONDS
    number = 0
    while time.monotonic() < stop and number < 90:  # under http.client's 100-header limit
        sock.sendall(f"X-Slow-{number}: 1\r\n".encode())
        number += 1
        time.sleep(0.15)


def endless_continue(sock: socket.socket) -> None:
    stop = time.monotonic() + SERVER_SECONDS
    while time.monotonic() < stop:
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        time.sleep(0.1)


def unannounced_drip(sock: socket.socket) -> None:
    """A photo without Content-Length, one byte at a time, closed before it is complete."""
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\n\r\n")
    _drip(sock, photos.photo("JPEG")[:300], every=0.02)


class _Handler(socketserver.BaseRequestHandler):
    server: RawServer

    def handle(self) -> None:
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            received += chunk
        with contextlib.suppress(OSError):  # the client hung up, as it should
            self.server.behaviour(self.request)


class RawServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    behaviour: Behaviour


@pytest.fixture
def raw_server() -> Iterator[Callable[[Behaviour], str]]:
    servers: list[RawServer] = []

    def start(behaviour: Behaviour) -> str:
        server = RawServer(("127.0.0.1", 0), _Handler)
        server.behaviour = behaviour
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/photo.jpg"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "behaviour", [slow_status_line, endless_headers, endless_continue, unannounced_drip]
)
def test_slow_response_heads_hit_the_total_deadline(
    raw_server, settings: Settings, behaviour: Behaviour
) -> None:
    quick = dataclasses.replace(settings, fetch_timeout=1.0)
    url = raw_server(behaviour)
    started = time.monotonic()
    with pytest.raises(DownloadTimeoutError) as caught:
        download(url, quick)
    # Generous: the point is that it ends near 1 s, not after the server's 15 s.
    assert time.monotonic() - started < SERVER_SECONDS / 2
    assert caught.value.timeout == 1.0


def test_a_server_that_hangs_up_early_is_still_a_download_error(
    raw_server, settings: Settings
) -> None:
    url = raw_server(lambda sock: sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"))
    with pytest.raises(DownloadError):
        download(url, settings)
