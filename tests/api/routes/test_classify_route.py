"""``POST /v1/classify``: uploads, links, and every way a request can be refused."""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

import intake
from classifier import Classifier
from tests.support.servers import free_port

PROBLEM = "application/problem+json"


def upload(data: bytes, name: str = "dish.jpg", mime: str = "image/jpeg") -> dict[str, Any]:
    return {"files": {"photo": (name, data, mime)}}


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (180, 120, 60)).save(buffer, "PNG")
    return buffer.getvalue()


def assert_problem(response: Any, status: int, type_suffix: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    assert body["instance"] == "/v1/classify"
    if type_suffix:
        assert body["type"] == f"urn:dishlens:problem:{type_suffix}"
    return body


# ---------------------------------------------------------------------------------------------
# ANSWERS


def test_classify_upload_returns_top_three(
    client: TestClient, classifier: Classifier, jpeg_bytes: bytes
) -> None:
    response = client.post("/v1/classify", **upload(jpeg_bytes))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] in {"confident", "unsure", "not_food"}
    assert len(body["top"]) == 3
    probabilities = [dish["probability"] for dish in body["top"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    assert {d["label"] for d in body["top"]} <= set(classifier.labels)
    assert body["model_name"] == classifier.card["name"]
    assert body["model_version"] == classifier.card["version"]
    assert body["server_ms"] > 0


def test_classify_matches_in_process_classifier(
    client: TestClient, classifier: Classifier, jpeg_bytes: bytes
) -> None:
    expected = classifier.predict(intake.image_from_bytes(jpeg_bytes), top_k=5)

    body = client.post("/v1/classify?top_k=5", **upload(jpeg_bytes)).json()

    assert [d["label"] for d in body["top"]] == [d.label for d in expected.top]
    assert body["status"] == expected.status
    assert body["top"][0]["probability"] == pytest.approx(expected.best.probability, abs=1e-5)


@pytest.mark.parametrize("top_k", [1, 10])
def test_classify_top_k(client: TestClient, jpeg_bytes: bytes, top_k: int) -> None:
    body = client.post("/v1/classify", params={"top_k": top_k}, **upload(jpeg_bytes)).json()
    assert len(body["top"]) == top_k


def test_classify_png_upload(client: TestClient) -> None:
    response = client.post("/v1/classify", **upload(png(200, 150), "dish.png", "image/png"))
    assert response.status_code == 200


def test_classify_url_from_loopback_server(client_for, photo_server) -> None:
    client = client_for(allow_private_urls=True)

    response = client.post("/v1/classify", json={"url": photo_server.url("/food.jpg")})

    assert response.status_code == 200, response.text
    assert photo_server.hits == 1


# ---------------------------------------------------------------------------------------------
# REFUSALS: WHAT THE CALLER SENT


def test_classify_private_url_refused_without_fetching(client: TestClient, photo_server) -> None:
    response = client.post("/v1/classify", json={"url": photo_server.url("/food.jpg")})

    body = assert_problem(response, 400, "blocked-address")
    assert "private network address" in body["detail"]
    assert photo_server.hits == 0


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/food.jpg", "file:///etc/passwd", "http://user:pw@127.0.0.1/x.jpg"]
)
def test_classify_invalid_url(client: TestClient, url: str) -> None:
    assert_problem(client.post("/v1/classify", json={"url": url}), 400, "invalid-url")


def test_classify_metadata_address_refused(client: TestClient) -> None:
    response = client.post("/v1/classify", json={"url": "http://169.254.169.254/latest/"})
    assert_problem(response, 400, "blocked-address")


@pytest.mark.parametrize(
    ("data", "name", "mime"),
    [
        (b"these are not the pixels you are looking for\n" * 20, "notes.jpg", "image/jpeg"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>',
            "a.svg",
            "image/svg+xml",
        ),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "menu.pdf", "application/pdf"),
    ],
    ids=["text", "svg", "pdf"],
)
def test_classify_not_a_photo_is_415(client: TestClient, data: bytes, name: str, mime: str) -> None:
    body = assert_problem(client.post("/v1/classify", **upload(data, name, mime)), 415)
    assert body["type"] == "urn:dishlens:problem:unsupported-format"
    assert "not a supported photo format" in body["detail"]


def test_classify_truncated_jpeg_is_422(client: TestClient, jpeg_bytes: bytes) -> None:
    response = client.post("/v1/classify", **upload(jpeg_bytes[: len(jpeg_bytes) // 3]))
    assert_problem(response, 422, "corrupt-image")


def test_classify_empty_file_is_422(client: TestClient) -> None:
    body = assert_problem(client.post("/v1/classify", **upload(b"")), 422, "corrupt-image")
    assert "empty" in body["detail"]


def test_classify_photo_over_size_cap_is_413(client_for, jpeg_bytes: bytes) -> None:
    client = client_for(max_image_mb=1)
    oversize = jpeg_bytes + b"\0" * (1024 * 1024)

    body = assert_problem(client.post("/v1/classify", **upload(oversize)), 413, "image-too-large")
    assert "1 MB" in body["detail"]


def test_classify_photo_over_pixel_cap_is_413(client_for) -> None:
    client = client_for(max_image_pixels=10_000)
    response = client.post("/v1/classify", **upload(png(200, 200), "big.png", "image/png"))
    assert_problem(response, 413, "too-many-pixels")


def test_classify_body_over_cap_is_refused_from_content_length(client_for) -> None:
    client = client_for(max_image_mb=1)
    body = b"x" * (2 * 1024 * 1024)

    response = client.post(
        "/v1/classify", content=body, headers={"content-type": "multipart/form-data; boundary=x"}
    )

    assert_problem(response, 413, "request-too-large")


def test_classify_streamed_body_over_cap_is_refused(client_for) -> None:
    client = client_for(max_image_mb=1)

    def chunks():
        for _ in range(40):
            yield b"y" * (64 * 1024)

    response = client.post(
        "/v1/classify", content=chunks(), headers={"content-type": "application/json"}
    )

    body = assert_problem(response, 413, "request-too-large")
    assert "larger than 16 KB" in body["detail"]  # not "0.0 MB"


def test_classify_extreme_aspect_ratio_is_422(client: TestClient) -> None:
    response = client.post("/v1/classify", **upload(png(3000, 10), "strip.png", "image/png"))
    body = assert_problem(response, 422, "photo-shape")
    assert "3000×10" in body["detail"]


def test_classify_scan_bomb_is_422_and_costs_no_decode(client: TestClient) -> None:
    from tests.intake.photos import scan_bomb

    response = client.post("/v1/classify", **upload(scan_bomb()))
    assert_problem(response, 422, "photo-too-complex")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_classify_unsupported_media_type_is_415(
    client: TestClient, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/v1/classify", content=b"url=x", headers=headers)
    assert_problem(response, 415, "unsupported-media-type")


def test_classify_form_without_photo_field_is_422(client: TestClient, jpeg_bytes: bytes) -> None:
    response = client.post("/v1/classify", files={"image": ("a.jpg", jpeg_bytes, "image/jpeg")})
    body = assert_problem(response, 422, "invalid-request")
    assert body["errors"][0]["loc"] == ["body", "photo"]


def test_classify_form_with_text_photo_field_is_422(client: TestClient) -> None:
    response = client.post("/v1/classify", data={"photo": "not a file"}, files={"x": ("", b"")})
    assert_problem(response, 422, "invalid-request")


def test_classify_multipart_without_boundary_is_422(client: TestClient) -> None:
    response = client.post(
        "/v1/classify", content=b"--x\r\n", headers={"content-type": "multipart/form-data"}
    )
    body = assert_problem(response, 422, "invalid-request")
    assert "boundary" in body["detail"]


@pytest.mark.parametrize(
    "body",
    [b'{"url": ', b"[]", b'{"link": "http://127.0.0.1/"}', b'{"url": 5}', b'{"url": ""}'],
    ids=["truncated", "array", "wrong-field", "not-a-string", "empty"],
)
def test_classify_bad_json_is_422(client: TestClient, body: bytes) -> None:
    response = client.post(
        "/v1/classify", content=body, headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 422, "invalid-request")
    assert problem["errors"]


def test_classify_url_too_long_is_422(client: TestClient) -> None:
    response = client.post("/v1/classify", json={"url": "http://127.0.0.1/" + "a" * 5000})
    assert_problem(response, 422, "invalid-request")


@pytest.mark.parametrize("top_k", ["0", "11", "three"])
def test_classify_bad_top_k_is_422(client: TestClient, jpeg_bytes: bytes, top_k: str) -> None:
    response = client.post("/v1/classify", params={"top_k": top_k}, **upload(jpeg_bytes))
    body = assert_problem(response, 422, "invalid-request")
    assert body["errors"][0]["loc"] == ["query", "top_k"]


# ---------------------------------------------------------------------------------------------
# REFUSALS: WHAT THE LINKED SERVER DID (502/504)


def test_classify_url_upstream_404_is_502(client_for, photo_server) -> None:
    client = client_for(allow_private_urls=True)
    response = client.post("/v1/classify", json={"url": photo_server.url("/missing.jpg")})
    assert_problem(response, 502, "upstream-status")


def test_classify_url_not_a_photo_is_415(client_for, photo_server) -> None:
    client = client_for(allow_private_urls=True)
    response = client.post("/v1/classify", json={"url": photo_server.url("/page.jpg")})
    assert_problem(response, 415, "unsupported-format")


def test_classify_url_connection_refused_is_502(client_for) -> None:
    client = client_for(allow_private_urls=True)
    url = f"http://127.0.0.1:{free_port()}/food.jpg"
    assert_problem(client.post("/v1/classify", json={"url": url}), 502, "download-failed")


def test_classify_url_timeout_is_504(client_for, photo_server) -> None:
    client = client_for(allow_private_urls=True, fetch_timeout=0.5)
    response = client.post("/v1/classify", json={"url": photo_server.url("/slow.jpg")})
    assert_problem(response, 504, "download-timeout")


# ---------------------------------------------------------------------------------------------
# SERVICE STATE (503, 500)


class GatedClassifier:
    """Wraps the real model; ``predict_batch`` waits until the test opens the gate."""

    def __init__(self, inner: Classifier) -> None:
        self.inner, self.gate = inner, threading.Event()
        self.card, self.name, self.labels = inner.card, inner.name, inner.labels

    def predict_batch(self, images: list[Image.Image], top_k: int = 3):
        assert self.gate.wait(timeout=30)
        return self.inner.predict_batch(images, top_k)


def test_classify_full_queue_is_503_with_retry_after(
    make_app, classifier: Classifier, jpeg_bytes: bytes
) -> None:
    gated = GatedClassifier(classifier)
    app = make_app(api_queue_size=1, loader=lambda: gated)
    with TestClient(app) as client:
        wait_until(lambda: client.get("/readyz").status_code == 200)
        capacity = app.state.runner.capacity
        results: list[int] = []

        def post() -> None:
            results.append(client.post("/v1/classify", **upload(jpeg_bytes)).status_code)

        waiting = [threading.Thread(target=post) for _ in range(capacity)]
        for thread in waiting:
            thread.start()
        wait_until(lambda: app.state.runner.in_flight == capacity)

        refused = client.post("/v1/classify", **upload(jpeg_bytes))
        saturated = client.get("/readyz")
        started = client.get("/startupz")

        gated.gate.set()
        for thread in waiting:
            thread.join(timeout=30)
        ready_again = client.get("/readyz")
    assert capacity == app.state.runner.workers + 1
    assert saturated.status_code == 503 and saturated.json()["type"].endswith(":busy")
    assert started.status_code == 200  # ECS's target check: a busy task is not replaced
    assert ready_again.status_code == 200
    assert_problem(refused, 503, "busy")
    assert refused.headers["retry-after"] == "1"
    assert results == [200] * capacity


def test_classify_before_model_loads_is_503(make_app, classifier, jpeg_bytes: bytes) -> None:
    loaded = threading.Event()

    def slow_loader() -> Classifier:
        assert loaded.wait(timeout=30)
        return classifier

    with TestClient(make_app(loader=slow_loader)) as client:
        refused = client.post("/v1/classify", **upload(jpeg_bytes))
        health = client.get("/healthz")
        loaded.set()
        wait_until(lambda: client.get("/readyz").status_code == 200)
        accepted = client.post("/v1/classify", **upload(jpeg_bytes))
    assert_problem(refused, 503, "model-not-ready")
    assert refused.headers["retry-after"] == "5"
    assert health.status_code == 200
    assert accepted.status_code == 200


class BrokenClassifier(GatedClassifier):
    def predict_batch(self, images: list[Image.Image], top_k: int = 3):
        raise RuntimeError("secret internal detail")


def test_classify_unexpected_failure_is_500_problem_without_detail(
    make_app, classifier, jpeg_bytes: bytes
) -> None:
    app = make_app(loader=lambda: BrokenClassifier(classifier))
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_until(lambda: client.get("/readyz").status_code == 200)
        response = client.post("/v1/classify", **upload(jpeg_bytes))
    body = assert_problem(response, 500, "internal-error")
    assert "secret" not in response.text
    assert "logged" in body["detail"]
    assert app.state.runner.in_flight == 0


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_classify_overlong_multipart_boundary_is_422_not_500(client: TestClient) -> None:
    boundary = "b" * 300
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="photo"; filename="a.jpg"\r\n\r\n'
        f"x\r\n--{boundary}--\r\n"
    ).encode()
    content_type = f"multipart/form-data; boundary={boundary}"
    response = client.post("/v1/classify", content=body, headers={"content-type": content_type})
    body = assert_problem(response, 422, "invalid-request")
    assert "boundary is longer than 70" in body["detail"]
