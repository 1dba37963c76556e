"""``POST /v1/classify``: name the dish in an uploaded photo or a linked one."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request

from api.deps import RunnerDep, SettingsDep
from api.photos import UrlFetcherDep, openapi_request_body, photo_from_request
from api.routes.responses import CLASSIFY
from api.schemas import ClassificationPublic
from llm_client.facts import MAX_PORTION_G

router = APIRouter(prefix="/v1", tags=["classify"])

TopK = Annotated[int, Query(ge=1, le=10, description="How many dishes to return.")]
PortionG = Annotated[
    float | None,
    Query(
        ge=1,
        le=MAX_PORTION_G,
        description="Grams of the portion the facts' calories and macros are for "
        "(default: the dish's typical serving).",
    ),
]


@router.post("/classify", responses=CLASSIFY, openapi_extra=openapi_request_body())
async def classify(
    request: Request,
    runner: RunnerDep,
    settings: SettingsDep,
    fetch_url: UrlFetcherDep,
    top_k: TopK = 3,
    portion_g: PortionG = None,
) -> ClassificationPublic:
    """Classify a photo sent as multipart field `photo`, or linked as JSON `{"url": ...}`.

    The answer carries the top dish's typical facts (nutrition for `portion_g`, allergens,
    diet), as other food-recognition APIs do; `facts` is null for a `not_food` photo."""
    started = time.perf_counter()
    classifier = runner.classifier
    # The model's place is taken only once the photo is here: slow uploads hold none.
    load_photo = await photo_from_request(
        request, settings, fetch_url, runner, body_timeout=request.app.state.body_timeout
    )
    with runner.slot():
        prediction = await runner.predict_from(load_photo, top_k=top_k)
    server_ms = (time.perf_counter() - started) * 1000
    return ClassificationPublic.from_prediction(
        prediction, classifier, server_ms=server_ms, portion_g=portion_g
    )
