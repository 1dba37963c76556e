"""``/healthz`` (process up), ``/startupz`` (model loaded) and ``/readyz`` (loaded and not busy)."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from classifier import Classifier, ModelArtifactError


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_names_the_model(client: TestClient, classifier: Classifier) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "model": classifier.name}


@pytest.mark.parametrize("path", ["/readyz", "/startupz"])
def test_readiness_is_503_while_loading(make_app, classifier: Classifier, path: str) -> None:
    release = threading.Event()

    def loader() -> Classifier:
        assert release.wait(timeout=30)
        return classifier

    with TestClient(make_app(loader=loader)) as client:
        loading = client.get(path)
        healthy = client.get("/healthz")
        release.set()
    assert loading.status_code == 503
    assert loading.headers["retry-after"] == "5"
    assert loading.json()["type"] == "urn:dishlens:problem:model-not-ready"
    assert healthy.status_code == 200


def test_readyz_reports_a_model_that_failed_to_load(make_app) -> None:
    def broken() -> Classifier:
        raise ModelArtifactError("The weights file model.safetensors is truncated.", "x")

    with TestClient(make_app(loader=broken)) as client:
        deadline = time.monotonic() + 10
        response = client.get("/readyz")
        while "could not be loaded" not in response.json()["detail"]:
            assert time.monotonic() < deadline, response.text
            response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["detail"] == (
        "The model could not be loaded: The weights file model.safetensors is truncated."
    )


def test_a_bad_local_model_uri_stops_start_up_loudly(tmp_path, caplog) -> None:
    from api.main import create_app
    from classifier import ModelNotFoundError
    from dishlens.settings import Settings

    app = create_app(Settings(model_uri=str(tmp_path / "no-such-model")))
    with pytest.raises(ModelNotFoundError), TestClient(app):
        pass
    assert "cannot start" in caplog.text and "no-such-model" in caplog.text  # in the log only
