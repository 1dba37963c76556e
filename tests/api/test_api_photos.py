"""Reading a classify request: what is refused before any decoding or model work."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.requests import Request

from api.photos import photo_from_request
from api.runner import ModelRunner
from dishlens.settings import Settings
from intake.errors import ImageTooLargeError


def request_with(content: bytes, content_type: str) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/classify",
        "headers": [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(content)).encode()),
        ],
        "query_string": b"",
    }
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": content, "more_body": False}

    return Request(scope, receive)


def never_fetch(*args, **kwargs):
    raise AssertionError("no link in this request")


def test_an_oversize_upload_is_refused_before_it_is_handed_on() -> None:
    settings = Settings(max_image_mb=1)
    photo = b"\xff\xd8\xff" + b"\0" * settings.max_image_bytes  # one cap and 3 bytes
    encoded = httpx.Request("POST", "http://x/", files={"photo": ("big.jpg", photo)})

    request = request_with(encoded.read(), encoded.headers["content-type"])

    with pytest.raises(ImageTooLargeError):
        asyncio.run(photo_from_request(request, settings, never_fetch, ModelRunner()))


def test_an_upload_within_the_cap_is_handed_on_undecoded() -> None:
    settings = Settings(max_image_mb=1)
    encoded = httpx.Request("POST", "http://x/", files={"photo": ("cut.jpg", b"\xff\xd8\xff")})

    request = request_with(encoded.read(), encoded.headers["content-type"])

    load = asyncio.run(photo_from_request(request, settings, never_fetch, ModelRunner()))
    assert callable(load)  # decoding (and its refusal of these 3 bytes) happens later
