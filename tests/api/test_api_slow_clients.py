"""Slow clients and slow linked servers cannot hold the model's places (real uvicorn, raw
sockets on loopback)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx

from api.main import create_app
from classifier import Classifier
from dishlens.settings import Settings

BOUNDARY = "dishlens-slow"


@contextmanager
def slow_upload(base_url: str, declared: int = 5_000_000) -> Iterator[socket.socket]:
    """A client that sends the headers of a ``declared``-byte upload and then one byte of it."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (
        "POST /v1/classify HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="photo"; filename="a.jpg"\r\n\r\n'
    )
    sock.sendall(head.encode() + b"\xff")
    try:
        yield sock
    finally:
        sock.close()


def response_head(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def post_photo(base_url: str, photo: bytes) -> httpx.Response:
    files = {"photo": ("dish.jpg", photo, "image/jpeg")}
    return httpx.post(f"{base_url}/v1/classify", files=files, timeout=30, trust_env=False)


def make(classifier: Classifier, **fields: object):
    body_timeout = fields.pop("body_timeout", 30.0)
    return create_app(Settings(**fields), loader=lambda: classifier, body_timeout=body_timeout)


def test_a_slow_body_gets_408_and_the_connection_closes(classifier, live_api) -> None:
    base_url = live_api(make(classifier, body_timeout=1.0))
    with slow_upload(base_url) as sock:
        started = time.monotonic()
        head = response_head(sock, timeout=20)
        waited = time.monotonic() - started
        assert head.startswith(b"HTTP/1.1 408"), head
        assert b"connection: close" in head.lower()
        sock.settimeout(20)
        while sock.recv(4096):  # the server closes its end after the problem body
            pass
    assert waited >= 0.9


def test_slow_uploads_hold_no_model_place(classifier, live_api, jpeg_bytes: bytes) -> None:
    app = make(classifier, api_queue_size=1)
    base_url = live_api(app)
    capacity = app.state.runner.capacity
    with ExitStack() as stack:
        for _ in range(capacity + 4):
            stack.enter_context(slow_upload(base_url))
        time.sleep(0.3)  # let the server read every header
        ready = httpx.get(f"{base_url}/readyz", trust_env=False)
        answer = post_photo(base_url, jpeg_bytes)
    assert answer.status_code == 200, answer.text
    assert ready.status_code == 200
    assert app.state.runner.in_flight == 0


def test_slow_links_hold_no_model_place_and_have_places_of_their_own(
    classifier, live_api, photo_server, jpeg_bytes: bytes
) -> None:
    app = make(classifier, api_queue_size=1, allow_private_urls=True)
    base_url = live_api(app)
    slow_link = {"url": photo_server.url("/slow.jpg")}  # answers after 3 s
    first: list[httpx.Response] = []
    fetching = threading.Thread(
        target=lambda: first.append(
            httpx.post(f"{base_url}/v1/classify", json=slow_link, timeout=30, trust_env=False)
        )
    )
    fetching.start()
    deadline = time.monotonic() + 10
    while photo_server.hits == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    second = httpx.post(f"{base_url}/v1/classify", json=slow_link, timeout=30, trust_env=False)
    upload = post_photo(base_url, jpeg_bytes)
    fetching.join(timeout=30)
    assert second.status_code == 503
    assert second.json()["type"] == "urn:dishlens:problem:busy"
    assert upload.status_code == 200
    assert first[0].status_code == 200


def test_a_client_that_hangs_up_mid_body_is_not_an_internal_error(
    classifier, live_api, caplog
) -> None:
    base_url = live_api(make(classifier))
    with slow_upload(base_url):
        time.sleep(0.3)
    time.sleep(0.5)  # the server notices the hang-up
    assert "unexpected error" not in caplog.text
    assert httpx.get(f"{base_url}/healthz", trust_env=False).status_code == 200
