"""The API as deployed: ``uvicorn api.main:app`` in its own process on a loopback port."""

from __future__ import annotations

import httpx
import pytest

import intake
from classifier import Classifier
from tests.support.servers import spawn_api


@pytest.mark.slow
def test_real_uvicorn_serves_and_refuses(classifier: Classifier, jpeg_bytes: bytes):
    expected = classifier.predict(intake.image_from_bytes(jpeg_bytes)).best.label

    with (
        spawn_api(max_image_mb=1) as base_url,
        httpx.Client(base_url=base_url, trust_env=False, timeout=30) as client,
    ):
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


def test_python_m_api_serves_on_the_configured_address(monkeypatch: pytest.MonkeyPatch) -> None:
    import api.__main__ as entry

    calls = []
    monkeypatch.setattr(entry.uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setenv("API_HOST", "0.0.0.0")
    monkeypatch.setenv("API_PORT", "8123")

    entry.main()

    assert calls == [("api.main:app", {"host": "0.0.0.0", "port": 8123})]
