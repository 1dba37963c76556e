"""Turn a ``POST /v1/classify`` request into a decoded photo, or a typed refusal.

The body is read with a byte cap (``MAX_IMAGE_MB`` plus room for multipart framing; 16 KiB for
JSON) and a deadline (:data:`BODY_TIMEOUT_S`, then 408) before anything parses it, so an oversize
upload costs no more than the cap and a slow one no longer than the deadline. Decoding and link
fetching are ``intake``'s job; both run off the event loop (links on a worker thread, uploads
on the model thread just before classification).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Request
from PIL import Image
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

import intake
from api.errors import (
    ClientDisconnectedError,
    InvalidRequestError,
    RequestTimeoutError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
)
from api.multipart import read_file_field
from api.runner import ModelRunner
from api.schemas import ClassifyUrlCreate
from dishlens.settings import Settings

PHOTO_FIELD = "photo"
MULTIPART = "multipart/form-data"
JSON = "application/json"
FRAMING_BYTES = 64 * 1024
JSON_BODY_BYTES = 16 * 1024
# Seconds a client may take to send the body: a 10 MB photo at 4 Mbit/s takes 21 s.
BODY_TIMEOUT_S = 30.0

UrlFetcher = Callable[..., Image.Image]


async def get_url_fetcher() -> UrlFetcher:
    """How links are fetched; tests override this dependency so they never leave loopback."""
    return intake.image_from_url


UrlFetcherDep = Annotated[UrlFetcher, Depends(get_url_fetcher)]


def body_limit(media_type: str, settings: Settings) -> int:
    """Largest body accepted: a photo plus multipart framing, or a small JSON object."""
    return JSON_BODY_BYTES if media_type == JSON else settings.max_image_bytes + FRAMING_BYTES


async def photo_from_request(
    request: Request,
    settings: Settings,
    fetch_url: UrlFetcher,
    runner: ModelRunner,
    *,
    body_timeout: float = BODY_TIMEOUT_S,
) -> Callable[[], Image.Image]:
    """The photo a request carries (multipart ``photo`` field or JSON ``{"url": ...}``), as a
    function that returns it decoded and checked.

    A link is downloaded here, on a worker thread, holding one of ``runner``'s places for
    downloads; an upload is decoded only when the function is called, so the model thread can
    decode and classify it in one go.

    Raises:
        UnsupportedMediaTypeError: the body is neither multipart nor JSON.
        RequestTooLargeError: the body is over the cap.
        RequestTimeoutError: the body did not arrive within ``body_timeout`` seconds.
        ServiceBusyError: every place for link downloads is taken.
        InvalidRequestError: the form or JSON does not validate.
        intake.IntakeError: the link cannot be used (the returned function raises it for an
            upload that cannot be).
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in (MULTIPART, JSON):
        raise UnsupportedMediaTypeError(media_type or None)
    body = await read_body(request, body_limit(media_type, settings), body_timeout)
    if media_type == JSON:
        url = parse_url_body(body)
        with runner.fetch_slot():
            image = await run_in_threadpool(fetch_url, url, settings=settings)
        return partial(_given, image)
    data, filename = read_file_field(request.headers["content-type"], body, PHOTO_FIELD)
    # Refused here too, so an oversize upload never travels to a model worker process.
    intake.check_photo_size(data, settings=settings)
    return partial(decode_upload, data, filename, settings)


def decode_upload(data: bytes, filename: str | None, settings: Settings) -> Image.Image:
    return intake.image_from_bytes(data, filename=filename, settings=settings)


def _given(image: Image.Image) -> Image.Image:
    return image


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The whole body, refusing it as soon as it is known to exceed ``limit`` bytes, or once
    ``timeout`` seconds have passed without all of it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestTooLargeError(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise RequestTooLargeError(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeoutError(timeout) from None
    except ClientDisconnect:
        raise ClientDisconnectedError() from None
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
