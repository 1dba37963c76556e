"""Errors the JSON API raises itself; ``str()`` of each is a user-safe sentence.

Intake and classifier errors keep their own classes; :mod:`api.problems` turns every
:class:`~dishlens.errors.DishLensError` into an RFC 9457 problem response.
"""

from __future__ import annotations

from typing import Any

from dishlens.errors import DishLensError


class ApiError(DishLensError):
    """Base class for errors of the JSON API."""


# ---------------------------------------------------------------------------------------------
# SERVICE STATE ERRORS (503)


class ModelNotReadyError(ApiError):
    """The model has not finished loading (or failed to load)."""

    retry_after = 5

    def __init__(
        self, message: str = "The model is still loading; try again in a few seconds."
    ) -> None:
        super().__init__(message)


class ModelWorkerLostError(ModelNotReadyError):
    """A model worker process stopped mid-request (killed, out of memory); it is restarting."""

    def __init__(self) -> None:
        super().__init__(
            "The model stopped unexpectedly and is restarting; try again in a few seconds."
        )


class ServiceBusyError(ApiError):
    """Every worker is busy and the waiting line is full."""

    retry_after = 1

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        super().__init__("DishLens is busy with other photos; try again in a second.")


# ---------------------------------------------------------------------------------------------
# REQUEST ERRORS (4xx)


class RequestTooLargeError(ApiError, ValueError):
    """The request body is larger than the API accepts."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        super().__init__(
            f"The request is larger than {_size_in_words(limit_bytes)}, the most DishLens accepts."
        )


class RequestTimeoutError(ApiError, TimeoutError):
    """The client did not send the whole request body within ``timeout`` seconds."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(
            f"The photo did not arrive within {timeout:g} seconds; check the connection and "
            "send it again."
        )


class ClientDisconnectedError(ApiError, ConnectionError):
    """The client hung up before it had sent the whole request body; nobody reads the answer."""

    def __init__(self) -> None:
        super().__init__("The connection closed before the whole photo arrived; send it again.")


class UnsupportedMediaTypeError(ApiError, ValueError):
    """The request body is neither multipart/form-data nor JSON."""

    def __init__(self, content_type: str | None) -> None:
        self.content_type = content_type
        super().__init__(
            "Send the photo as multipart/form-data (field 'photo') or a link as "
            'application/json ({"url": "https://..."}).'
        )


class InvalidRequestError(ApiError, ValueError):
    """The request is well formed HTTP but its content does not validate."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        self.errors = errors or []
        super().__init__(message)


def _size_in_words(size: int) -> str:
    """``16384`` -> ``"16 KB"``, ``10551296`` -> ``"10.1 MB"``."""
    if size < 1024 * 1024:
        return f"{size / 1024:.3g} KB"
    return f"{size / (1024 * 1024):.1f} MB"
