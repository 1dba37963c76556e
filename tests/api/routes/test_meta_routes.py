"""``GET /v1/model``, ``GET /v1/labels``, the docs, and the problem shape of framework errors."""

from __future__ import annotations

from fastapi.testclient import TestClient

from classifier import Classifier


def test_read_model_returns_the_card(client: TestClient, classifier: Classifier) -> None:
    response = client.get("/v1/model")

    assert response.status_code == 200
    card = response.json()
    assert card["name"] == classifier.card["name"]
    assert card["version"] == classifier.card["version"]
    assert card["num_classes"] == len(classifier.labels)
    assert card["weights_sha256"] == classifier.card["weights_sha256"]


def test_read_labels_in_model_order(client: TestClient, classifier: Classifier) -> None:
    body = client.get("/v1/labels").json()

    assert body["count"] == len(classifier.labels)
    assert [(x["label"], x["display_name"]) for x in body["labels"]] == list(
        classifier.labels.items()
    )


def test_docs_and_openapi_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/classify"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    assert set(schema["paths"]) >= {"/v1/classify", "/v1/model", "/v1/labels", "/healthz"}


def test_unknown_route_is_404_problem(client: TestClient) -> None:
    response = client.get("/v1/nothing-here")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Not Found"


def test_wrong_method_is_405_problem_with_allow(client: TestClient) -> None:
    response = client.get("/v1/classify")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"] == "application/problem+json"


def test_model_routes_are_503_until_loaded(make_app) -> None:
    with TestClient(make_app(loader=_never_loads)) as client:
        for path in ("/v1/model", "/v1/labels"):
            response = client.get(path)
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"


def _never_loads() -> Classifier:
    from classifier import ModelNotFoundError

    raise ModelNotFoundError("The model directory /nowhere does not exist.", "/nowhere")
