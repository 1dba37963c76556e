"""Fixtures for the JSON API: the real bundled model, apps around it, photos, a loopback server.

The suite's network guard fails any test that connects beyond loopback or looks up a name, so
a broken SSRF check fails a test instead of sending a packet.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from api.main import create_app
from classifier import Classifier, load_classifier
from dishlens.settings import Settings
from tests.support.servers import LoopbackHTTPServer, served_in_thread

# ---------------------------------------------------------------------------------------------
# MODEL AND APP


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    """The bundled model, loaded once (tests never depend on its accuracy)."""
    return load_classifier(settings=Settings())


AppFactory = Callable[..., FastAPI]


@pytest.fixture
def make_app(classifier: Classifier) -> AppFactory:
    """``make_app(**settings_fields, loader=...)``: an app serving the session's model."""

    def make(*, loader: Callable[[], Classifier] | None = None, **fields: object) -> FastAPI:
        return create_app(Settings(**fields), loader=loader or (lambda: classifier))

    return make


def wait_ready(client: TestClient, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the app did not become ready"
        time.sleep(0.02)


@pytest.fixture
def client(make_app: AppFactory) -> Iterator[TestClient]:
    with TestClient(make_app()) as test_client:
        wait_ready(test_client)
        yield test_client


@pytest.fixture
def client_for(make_app: AppFactory) -> Iterator[Callable[..., TestClient]]:
    """``client_for(**settings_fields)``: a ready client for an app with those settings."""
    with_clients: list[TestClient] = []

    def make(**fields: object) -> TestClient:
        test_client = TestClient(make_app(**fields))
        test_client.__enter__()
        with_clients.append(test_client)
        wait_ready(test_client)
        return test_client

    yield make
    for test_client in with_clients:
        test_client.__exit__(None, None, None)


# ---------------------------------------------------------------------------------------------
# PHOTOS


def encode(image: Image.Image, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def jpeg_bytes() -> bytes:
    """A small synthetic photo (a gradient, so JPEG has something to encode)."""
    image = Image.linear_gradient("L").resize((320, 240)).convert("RGB")
    return encode(image)


# ---------------------------------------------------------------------------------------------
# LOOPBACK IMAGE SERVER


class PhotoServer(LoopbackHTTPServer):
    hits: int
    photo: bytes


class _PhotoHandler(BaseHTTPRequestHandler):
    server: PhotoServer

    def do_GET(self) -> None:
        self.server.hits += 1
        if self.path == "/food.jpg":
            self._send(200, self.server.photo, "image/jpeg")
        elif self.path == "/slow.jpg":
            time.sleep(3)
            self._send(200, self.server.photo, "image/jpeg")
        elif self.path == "/page.jpg":
            self._send(200, b"<html><body>not a photo</body></html>", "image/jpeg")
        else:
            self._send(404, b"missing", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def photo_server(jpeg_bytes: bytes) -> Iterator[PhotoServer]:
    """A threaded HTTP server on 127.0.0.1 serving /food.jpg, /slow.jpg, /page.jpg, 404s."""
    server = PhotoServer(_PhotoHandler)
    server.hits, server.photo = 0, jpeg_bytes
    with served_in_thread(server):
        yield server


# ---------------------------------------------------------------------------------------------
# LIVE SERVER (uvicorn in this process, for clients that speak raw HTTP)


@pytest.fixture
def live_api(classifier: Classifier) -> Iterator[Callable[..., str]]:
    """``live_api(app)``: serve ``app`` with uvicorn on a loopback port; its base URL."""
    import uvicorn

    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def serve(app: FastAPI) -> str:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 30
        while not (server.started and app.state.runner.ready):
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield serve
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)
