"""Intake fixtures: settings for the loopback image server, and the server itself.

The suite's network guard (``tests/conftest.py``) fails any test whose code connects beyond
loopback or looks up a name the test did not put in ``network.dns``; a broken address check
shows up as a failing test, never as traffic.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest

from dishlens.settings import Settings, load_settings
from tests.intake import photos
from tests.support.servers import LoopbackHTTPServer, served_in_thread

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


class ImageServer(LoopbackHTTPServer):
    def __init__(self, routes: dict[str, Route]) -> None:
        super().__init__(_Handler)
        self.routes = routes
        self.seen: list[dict] = []

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
    with served_in_thread(ImageServer(_routes())) as server:
        yield server


@pytest.fixture
def image_server(_image_server: ImageServer) -> ImageServer:
    _image_server.seen.clear()
    return _image_server
