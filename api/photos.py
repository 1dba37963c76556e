"""Turn a ``POST /v1/classify`` request into a decoded photo, or a typed refusal.

The body is read with a byte cap (``MAX_IMAGE_MB`` plus room for multipart framing; 16 KiB for
JSON) before anything parses it, so an oversize upload costs no more than the cap. Decoding and link
fetching are ``intake``'s job; both run off the event loop (links on a worker thread, uploads
on the model thread just before classification).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Request
from PIL import Image
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

import intake
from api.errors import InvalidRequestError, RequestTooLargeError, UnsupportedMediaTypeError
from api.multipart import read_file_field
from api.schemas import ClassifyUrlCreate
from dishlens.settings import Settings
from intake.decode import check_size

PHOTO_FIELD = "photo"
MULTIPART = "multipart/form-data"
JSON = "application/json"
FRAMING_BYTES = 64 * 1024
JSON_BODY_BYTES = 16 * 1024

UrlFetcher = Callable[..., Image.Image]


async def get_url_fetcher() -> UrlFetcher:
    """How links are fetched; tests override this dependency so they never leave loopback."""
    return intake.image_from_url


UrlFetcherDep = Annotated[UrlFetcher, Depends(get_url_fetcher)]


def body_limit(media_type: str, settings: Settings) -> int:
    """Largest body accepted: a photo plus multipart framing, or a small JSON object."""
    return JSON_BODY_BYTES if media_type == JSON else settings.max_image_bytes + FRAMING_BYTES


async def photo_from_request(
    request: Request, settings: Settings, fetch_url: UrlFetcher
) -> Callable[[], Image.Image]:
    """The photo a request carries (multipart ``photo`` field or JSON ``{"url": ...}``), as a
    function that returns it decoded and checked.

    A link is downloaded here, on a worker thread; an upload is decoded only when the function
    is called, so the model thread can decode and classify it in one go.

    Raises:
        UnsupportedMediaTypeError: the body is neither multipart nor JSON.
        RequestTooLargeError: the body is over the cap.
        InvalidRequestError: the form or JSON does not validate.
        intake.IntakeError: the link cannot be used (the returned function raises it for an
            upload that cannot be).
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in (MULTIPART, JSON):
        raise UnsupportedMediaTypeError(media_type or None)
    body = await read_body(request, body_limit(media_type, settings))
    if media_type == JSON:
        image = await run_in_threadpool(fetch_url, parse_url_body(body), settings=settings)
        return partial(_given, image)
    data, filename = read_file_field(request.headers["content-type"], body, PHOTO_FIELD)
    # Refused here too, so an oversize upload never travels to a model worker process.
    check_size(data, settings.max_image_bytes)
    return partial(decode_upload, data, filename, settings)


def decode_upload(data: bytes, filename: str | None, settings: Settings) -> Image.Image:
    return intake.image_from_bytes(data, filename=filename, settings=settings)


def _given(image: Image.Image) -> Image.Image:
    return image


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing it as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestTooLargeError(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLargeError(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_url_body(body: bytes) -> str:
    try:
        return ClassifyUrlCreate.model_validate_json(body).url
    except ValidationError as error:
        found = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in error.errors(include_url=False, include_input=False)
        ]
        raise InvalidRequestError(
            'The JSON body must be an object with one field, "url", holding a link to a photo.',
            found,
        ) from error


def openapi_request_body() -> dict[str, Any]:
    """The two body shapes ``POST /v1/classify`` accepts, for the OpenAPI document."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                MULTIPART: {
                    "schema": {
                        "type": "object",
                        "properties": {
                            PHOTO_FIELD: {
                                "type": "string",
                                "format": "binary",
                                "description": "The photo (JPEG, PNG, WebP, HEIC…).",
                            }
                        },
                        "required": [PHOTO_FIELD],
                    },
                },
                JSON: {"schema": ClassifyUrlCreate.model_json_schema()},
            },
        }
    }
