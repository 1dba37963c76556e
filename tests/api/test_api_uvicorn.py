"""The API as deployed: ``uvicorn api.main:app`` in its own process on a loopback port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

import intake
from benchmarks import loadgen
from classifier import Classifier


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with loadgen.spawn_server(model=None, max_image_mb=1) as url:
        yield url


@pytest.mark.slow
def test_real_uvicorn_serves_and_refuses(
    base_url: str, classifier: Classifier, jpeg_bytes: bytes
):
    expected = classifier.predict(intake.image_from_bytes(jpeg_bytes)).best.label

    with httpx.Client(base_url=base_url, trust_env=False, timeout=30) as client:
        ready = client.get("/readyz")
        photo = client.post("/v1/classify", files={"photo": ("a.jpg", jpeg_bytes, "image/jpeg")})
        oversize = client.post(
            "/v1/classify",
            files={"photo": ("big.jpg", b"\0" * (2 * 1024 * 1024), "image/jpeg")},
        )
        after = client.get("/healthz")
        private = client.post("/v1/classify", json={"url": f"{base_url}/healthz"})

    assert ready.json() == {"status": "ready", "model": classifier.name}
    assert photo.status_code == 200
    assert photo.json()["top"][0]["label"] == expected
    assert oversize.status_code == 413
    assert oversize.headers["content-type"] == "application/problem+json"
    assert after.status_code == 200
    assert private.status_code == 400
    assert private.json()["type"] == "urn:dishlens:problem:blocked-address"


@pytest.mark.slow
def test_real_uvicorn_hangs_up_instead_of_reading_a_refused_huge_upload(base_url: str):
    """A client announcing 10 GB gets its 413 and a closed connection at once, after sending
    only the headers: the server does not wait for (or read) the body to keep the connection."""
    address = urlsplit(base_url)
    head = (
        f"POST /v1/classify HTTP/1.1\r\nhost: {address.netloc}\r\n"
        "content-type: multipart/form-data; boundary=x\r\n"
        f"content-length: {10 * 1024**3}\r\n\r\n"
    )
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(head.encode() + b"--x\r\n")
        received = b""
        while chunk := connection.recv(65536):  # ends when the server closes; times out if not
            received += chunk

    status_line, _, rest = received.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    assert b"\r\nconnection: close\r\n" in rest.lower()


def test_python_m_api_serves_on_the_configured_address(monkeypatch: pytest.MonkeyPatch) -> None:
    import api.__main__ as entry

    calls = []
    monkeypatch.setattr(entry.uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setenv("API_HOST", "0.0.0.0")
    monkeypatch.setenv("API_PORT", "8123")

    entry.main()

    assert calls == [("api.main:app", {"host": "0.0.0.0", "port": 8123})]
