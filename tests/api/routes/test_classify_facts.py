"""``POST /v1/classify`` answers with the top dish's typical facts, scaled to ``portion_g``;
``/docs`` loads Swagger UI from the API itself."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from classifier import Classifier, load_classifier
from classifier.artifact import seal_card
from classifier.predictor import DEFAULT_MODEL_DIR
from dishlens.settings import Settings
from llm_client import dish_card
from tests.api.conftest import wait_ready

# Card thresholds that force a verdict whatever the photo (the real weights rank the dishes).
FORCED = {
    "confident": {"unsure_probability": 0.0, "min_food_score": -1e30},
    "not_food": {"unsure_probability": 0.0, "min_food_score": 1e30},
}


@pytest.fixture(scope="module")
def forced(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Classifier]:
    loaded: dict[str, Classifier] = {}

    def load(status: str) -> Classifier:
        if status not in loaded:
            folder = tmp_path_factory.mktemp(status) / "model"
            shutil.copytree(DEFAULT_MODEL_DIR, folder)
            card = json.loads((folder / "card.json").read_text())
            card["thresholds"].update(FORCED[status])
            (folder / "card.json").write_text(json.dumps(seal_card(card)))
            loaded[status] = load_classifier(str(folder), settings=Settings())
        return loaded[status]

    return load


def classify(client: TestClient, photo: bytes, **params: object):
    files = {"photo": ("dish.jpg", photo, "image/jpeg")}
    return client.post("/v1/classify", files=files, params=params)


@pytest.fixture
def confident_client(make_app, forced) -> TestClient:
    model = forced("confident")
    with TestClient(make_app(loader=lambda: model)) as client:
        wait_ready(client)
        yield client


def test_the_answer_carries_the_top_dishs_typical_facts(confident_client, jpeg_bytes) -> None:
    body = classify(confident_client, jpeg_bytes).json()
    facts = body["facts"]
    card = dish_card(body["top"][0]["label"])
    serving = card["serving"]
    assert facts["label"] == body["top"][0]["label"]
    assert facts["display_name"] == card["display_name"]
    assert facts["portion_g"] == facts["typical_portion_g"] == serving["grams"]
    assert facts["typical_portion"] == card["portion"]
    assert [facts[key] for key in ("kcal", "protein_g", "carbohydrate_g", "fat_g")] == [
        serving[key] for key in ("kcal", "protein_g", "carbohydrate_g", "fat_g")
    ]
    assert facts["allergens"] == card["allergens"]
    assert {key: facts[key] for key in card["diet"]} == card["diet"]


def test_portion_g_scales_the_nutrition(confident_client, jpeg_bytes) -> None:
    label = classify(confident_client, jpeg_bytes).json()["top"][0]["label"]
    serving = dish_card(label)["serving"]
    facts = classify(confident_client, jpeg_bytes, portion_g=2 * serving["grams"]).json()["facts"]
    assert facts["portion_g"] == 2 * serving["grams"]
    for key in ("kcal", "protein_g", "carbohydrate_g", "fat_g"):
        assert facts[key] == round(2 * serving[key])


@pytest.mark.parametrize("portion_g", [0, -5, 2001, "lots"])
def test_a_bad_portion_is_a_422_problem(confident_client, jpeg_bytes, portion_g) -> None:
    response = classify(confident_client, jpeg_bytes, portion_g=portion_g)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "portion_g" in json.dumps(response.json()["errors"])


def test_a_refused_photo_has_no_facts(make_app, forced, jpeg_bytes) -> None:
    model = forced("not_food")
    with TestClient(make_app(loader=lambda: model)) as client:
        wait_ready(client)
        body = classify(client, jpeg_bytes, portion_g=300).json()
    assert body["status"] == "not_food" and body["facts"] is None


def test_the_schema_documents_facts_and_portion(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    parameters = schema["paths"]["/v1/classify"]["post"]["parameters"]
    assert "portion_g" in {parameter["name"] for parameter in parameters}
    assert {"kcal", "allergens", "portion_g"} <= set(
        schema["components"]["schemas"]["DishFactsPublic"]["properties"]
    )


def test_docs_load_swagger_ui_from_the_api_itself(client: TestClient) -> None:
    page = client.get("/docs").text
    assets = [part.split('"')[0] for part in page.split('"/static-offline-docs/')[1:]]
    assert "swagger-ui-bundle.js" in assets and "swagger-ui.css" in assets
    assert "cdn.jsdelivr.net" not in page and "unpkg.com" not in page
    for asset in assets:
        response = client.get(f"/static-offline-docs/{asset}")
        assert response.status_code == 200 and len(response.content) > 1000
    assert "redoc.standalone.js" in client.get("/redoc").text
