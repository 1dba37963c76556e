"""The error classes: one base, a builtin each, user-safe messages, details in attributes."""

from __future__ import annotations

import inspect

import pytest

import intake
from dishlens.errors import DishLensError
from intake import errors
from intake.errors import (
    BlockedAddressError,
    CorruptImageError,
    DownloadError,
    DownloadTimeoutError,
    HostNotFoundError,
    HTTPStatusError,
    ImageShapeError,
    ImageTooComplexError,
    ImageTooLargeError,
    InsecureConnectionError,
    IntakeError,
    InvalidURLError,
    TooManyPixelsError,
    TooManyRedirectsError,
    UnsupportedEncodingError,
    UnsupportedFormatError,
)

SECRET_URL = "http://user:hunter2@10.0.0.5:8080/private/path.jpg"

EXAMPLES = [
    (InvalidURLError(SECRET_URL, "credentials"), ValueError),
    (BlockedAddressError("internal.corp", "10.0.0.5", "private"), ValueError),
    (HostNotFoundError("internal.corp"), ConnectionError),
    (DownloadError(SECRET_URL), ConnectionError),
    (InsecureConnectionError(SECRET_URL), ConnectionError),
    (DownloadTimeoutError(SECRET_URL, 20.0), TimeoutError),
    (HTTPStatusError(SECRET_URL, 404), ConnectionError),
    (HTTPStatusError(SECRET_URL, 403), ConnectionError),
    (HTTPStatusError(SECRET_URL, 503), ConnectionError),
    (HTTPStatusError(SECRET_URL, 418), ConnectionError),
    (TooManyRedirectsError(SECRET_URL, 3), ConnectionError),
    (UnsupportedEncodingError(SECRET_URL, "gzip"), ValueError),
    (ImageTooLargeError(10 * 1024 * 1024, 50 * 1024 * 1024), ValueError),
    (TooManyPixelsError(50_000_000, 900_000_000), ValueError),
    (ImageShapeError(1, 100_000, 20, 32_000), ValueError),
    (ImageTooComplexError(5_000, 100), ValueError),
    (UnsupportedFormatError("svg", "secret-name.svg"), ValueError),
    (CorruptImageError("secret-name.jpg"), ValueError),
    (CorruptImageError(None, empty=True), ValueError),
]


@pytest.mark.parametrize(("error", "builtin"), EXAMPLES, ids=lambda e: type(e).__name__)
def test_each_error_is_an_intake_error_and_a_builtin(error: Exception, builtin: type) -> None:
    assert isinstance(error, IntakeError)
    assert isinstance(error, DishLensError)
    assert isinstance(error, builtin)


@pytest.mark.parametrize(("error", "builtin"), EXAMPLES, ids=lambda e: type(e).__name__)
def test_messages_are_sentences_without_technical_detail(error: Exception, builtin: type) -> None:
    message = str(error)
    assert message[0].isupper() and message.endswith(".")
    for detail in ("hunter2", "10.0.0.5", "internal.corp", "secret-name", "gzip", "Errno"):
        assert detail not in message


def test_every_class_is_covered() -> None:
    classes = {
        obj
        for obj in vars(errors).values()
        if inspect.isclass(obj) and issubclass(obj, IntakeError) and obj is not IntakeError
    }
    assert classes == {type(error) for error, _ in EXAMPLES}


def test_details_are_attributes() -> None:
    blocked = BlockedAddressError("internal.corp", "10.0.0.5", "private")
    assert (blocked.host, blocked.address, blocked.reason) == (
        "internal.corp",
        "10.0.0.5",
        "private",
    )
    assert HTTPStatusError("u", 404).status == 404
    assert "50 megapixels" in str(TooManyPixelsError(50_000_000))
    assert "10 MB" in str(ImageTooLargeError(10 * 1024 * 1024))


def test_public_api() -> None:
    assert intake.IntakeError is IntakeError
    assert set(intake.__all__) == {
        "IntakeError",
        "check_photo_size",
        "image_from_bytes",
        "image_from_url",
    }
    assert list(inspect.signature(intake.image_from_url).parameters) == ["url", "settings"]
    assert list(inspect.signature(intake.image_from_bytes).parameters) == [
        "data",
        "filename",
        "settings",
    ]
