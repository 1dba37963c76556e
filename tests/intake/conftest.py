"""Intake fixtures: a network guard on every test, and a real image server on 127.0.0.1.

The guard is autouse: any connect or datagram to a non-loopback address, and any DNS lookup of
a name the test did not put in ``network.dns``, fails the test before a packet leaves. So a
broken address check shows up as a failing test, never as traffic.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from dishlens.settings import Settings, load_settings
from tests.intake import photos

# ---------------------------------------------------------------------------------------------
# NETWORK GUARD


@dataclass
class Network:
    """What the code under test tried to do; ``dns`` is the only name table it can use."""

    dns: dict[str, object] = field(default_factory=lambda: {"localhost": ["127.0.0.1"]})
    connects: list[tuple[str, int]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def refuse(self, what: str) -> None:
        self.violations.append(what)
        pytest.fail(f"network guard: {what}", pytrace=False)

    def check_destination(self, sock: socket.socket, address: object, action: str) -> None:
        if sock.family == getattr(socket, "AF_UNIX", None):
            return
        host = address[0] if isinstance(address, tuple) else address
        try:
            ip = ipaddress.ip_address(str(host).split("%", 1)[0])
        except ValueError:
            self.refuse(f"{action} to a name ({host!r}) instead of a checked address")
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if not ip.is_loopback:
            self.refuse(f"{action} to non-loopback address {host!r}")
        if action == "connect":
            self.connects.append((str(ip), address[1]))

    def answer(self, host: str, port: object, family: int) -> list:
        entry = self.dns[host]
        if isinstance(entry, BaseException):
            raise entry
        answers = entry() if callable(entry) else entry
        result = []
        for text in answers:
            v6 = ":" in text
            kind = socket.AF_INET6 if v6 else socket.AF_INET
            if family not in (0, socket.AF_UNSPEC, kind):
                continue
            sockaddr = (text, int(port or 0), 0, 0) if v6 else (text, int(port or 0))
            result.append((kind, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return result


@pytest.fixture(autouse=True)
def network(monkeypatch: pytest.MonkeyPatch) -> Iterator[Network]:
    net = Network()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto
    real_getaddrinfo = socket.getaddrinfo

    def connect(sock: socket.socket, address: object) -> None:
        net.check_destination(sock, address, "connect")
        return real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: object) -> int:
        net.check_destination(sock, address, "connect")
        return real_connect_ex(sock, address)

    def sendto(sock: socket.socket, data: bytes, *args: object) -> int:
        net.check_destination(sock, args[-1], "sendto")
        return real_sendto(sock, data, *args)

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        net.lookups.append(name)
        if name in net.dns:
            return net.answer(name, port, family)
        try:  # IP literals only: AI_NUMERICHOST never asks DNS
            return real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        except socket.gaierror:
            net.refuse(f"DNS lookup of {name!r}")

    def no_lookup(name: str, *args: object) -> None:
        net.refuse(f"DNS lookup of {name!r}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for name in ("gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        monkeypatch.setattr(socket, name, no_lookup)
    yield net
    assert not net.violations, net.violations


# ---------------------------------------------------------------------------------------------
# SETTINGS


@pytest.fixture
def settings() -> Settings:
    """Defaults, except that the loopback server may be reached and timeouts are short."""
    return dataclasses.replace(
        load_settings(), allow_private_urls=True, fetch_connect_timeout=1.0, fetch_timeout=3.0
    )


@pytest.fixture
def public_settings(settings: Settings) -> Settings:
    """The production default: private addresses refused."""
    return dataclasses.replace(settings, allow_private_urls=False)


# ---------------------------------------------------------------------------------------------
# LOOPBACK IMAGE SERVER

Route = Callable[["_Handler", dict[str, list[str]]], None]


class _Handler(BaseHTTPRequestHandler):
    server: ImageServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.server.seen.append({"path": parts.path, "headers": dict(self.headers.items())})
        route = self.server.routes.get(parts.path)
        try:
            if route is None:
                self.send_error(404)
            else:
                route(self, parse_qs(parts.query))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should for bombs and drips

    def reply(self, body: bytes, content_type: str = "image/jpeg", **headers: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str, status: int = 302) -> None:
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class ImageServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[str, Route]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes = routes
        self.seen: list[dict] = []

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call getfqdn(): a reverse DNS lookup, which we never do.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    @property
    def port(self) -> int:
        return self.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def handle_error(self, request: object, client_address: object) -> None:
        pass


def _static(body: bytes, content_type: str = "image/jpeg", **headers: str) -> Route:
    return lambda handler, query: handler.reply(body, content_type, **headers)


def _stream(handler: _Handler, total: int, *, length: bool) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "image/jpeg")
    if length:
        handler.send_header("Content-Length", str(total))
    handler.end_headers()
    block = b"\xff\xd8\xff\xe0" + bytes(64 * 1024 - 4)
    for _ in range(total // len(block)):
        handler.wfile.write(block)


def _drip(handler: _Handler, query: dict) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "image/jpeg")
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    handler.wfile.write(b"\xff\xd8\xff\xe0")
    stop = time.monotonic() + 4.0
    while time.monotonic() < stop:
        handler.wfile.write(b"\x00")
        handler.wfile.flush()
        time.sleep(0.05)


def _silent(handler: _Handler, query: dict) -> None:
    time.sleep(3.0)


def _short_body(handler: _Handler, query: dict) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "image/jpeg")
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    handler.wfile.write(photos.photo("JPEG")[:1000])


def _redirect_chain(handler: _Handler, query: dict) -> None:
    hops = int(query.get("n", ["0"])[0])
    if hops == 0:
        handler.redirect("/photo.jpg")
    else:
        handler.redirect(f"/chain?n={hops - 1}")


def _redirect_to(handler: _Handler, query: dict) -> None:
    handler.redirect(query["location"][0])


def _routes() -> dict[str, Route]:
    jpeg = photos.photo("JPEG")
    return {
        "/photo.jpg": _static(jpeg),
        "/photo.png": _static(photos.photo("PNG"), "image/png"),
        "/photo.webp": _static(photos.photo("WEBP"), "image/webp"),
        "/photo.heic": _static(photos.photo("HEIF"), "image/heic"),
        "/identity.jpg": _static(jpeg, Content_Encoding="identity"),
        "/big": lambda h, q: _stream(h, 50 * 1024 * 1024, length=True),
        "/big-unannounced": lambda h, q: _stream(h, 50 * 1024 * 1024, length=False),
        "/drip": _drip,
        "/silent": _silent,
        "/short-body": _short_body,
        "/chain": _redirect_chain,
        "/redirect-to": _redirect_to,
        "/relative": lambda h, q: h.redirect("photo.png", 301),
        "/no-location": lambda h, q: h.send_error(302),
        "/html-as-image": _static(photos.HTML, "image/jpeg"),
        "/gzip-bomb": _static(photos.gzip_bomb(20 * 1024 * 1024), Content_Encoding="gzip"),
        "/pixel-bomb.png": _static(photos.png_bomb(30_000, 30_000), "image/png"),
        "/truncated.jpg": _static(jpeg[: len(jpeg) // 2]),
        "/image.svg": _static(photos.SVG, "image/svg+xml"),
        "/error": lambda h, q: h.send_error(500),
    }


@pytest.fixture(scope="session")
def _image_server() -> Iterator[ImageServer]:
    server = ImageServer(_routes())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def image_server(_image_server: ImageServer) -> ImageServer:
    _image_server.seen.clear()
    return _image_server
