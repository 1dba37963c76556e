"""``Connection: close`` after refusing a large body unread, and only then."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.connections import SMALL_BODY_BYTES
from tests.api.conftest import encode


@pytest.fixture(scope="module")
def large_jpeg() -> bytes:
    """A real photo bigger than SMALL_BODY_BYTES (noise does not compress)."""
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8)
    data = encode(Image.fromarray(pixels))
    assert len(data) > 2 * SMALL_BODY_BYTES
    return data


@pytest.fixture
def client(client_for: Callable[..., TestClient]) -> TestClient:
    return client_for(max_image_mb=1)


def photo_form(data: bytes) -> dict:
    return {"photo": ("dish.jpg", data, "image/jpeg")}


def test_a_declared_oversize_body_is_refused_and_the_connection_closed(client: TestClient):
    response = client.post("/v1/classify", files=photo_form(b"\0" * (2 * 1024 * 1024)))
    assert response.status_code == 413
    assert response.headers["connection"] == "close"


def test_a_large_body_refused_for_its_query_closes_the_connection(
    client: TestClient, large_jpeg: bytes
):
    response = client.post("/v1/classify?top_k=0", files=photo_form(large_jpeg))
    assert response.status_code == 422
    assert response.headers["connection"] == "close"


def test_a_large_chunked_body_of_the_wrong_type_closes_the_connection(client: TestClient):
    def chunks() -> Iterator[bytes]:
        yield b"x" * SMALL_BODY_BYTES
        yield b"x" * SMALL_BODY_BYTES

    response = client.post("/v1/classify", content=chunks(), headers={"content-type": "text/csv"})
    assert response.status_code == 415
    assert response.headers["connection"] == "close"


def test_a_large_photo_read_to_the_end_keeps_the_connection(client: TestClient, large_jpeg: bytes):
    response = client.post("/v1/classify", files=photo_form(large_jpeg))
    assert response.status_code == 200
    assert "connection" not in response.headers


def test_a_small_refused_body_keeps_the_connection(client: TestClient):
    response = client.post("/v1/classify", content=b"hello", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert "connection" not in response.headers
