"""RFC 9457 problem details: every error the API answers is ``application/problem+json``.

:func:`dishlens_error_handler` is the one place where a :class:`DishLensError` becomes an HTTP
status: :data:`PROBLEMS` maps each error class to its status, and the most specific class in an
error's MRO wins. Framework errors (unknown route, bad query parameter, crash) get the same shape.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import errors
from classifier import ClassifierError
from dishlens.errors import DishLensError
from intake import errors as intake_errors

PROBLEM_MEDIA_TYPE = "application/problem+json"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProblemKind:
    status: int
    slug: str
    title: str

    @property
    def type(self) -> str:
        return f"urn:dishlens:problem:{self.slug}"


PROBLEMS: dict[type[BaseException], ProblemKind] = {
    # What the caller sent
    intake_errors.InvalidURLError: ProblemKind(400, "invalid-url", "Invalid link"),
    intake_errors.BlockedAddressError: ProblemKind(400, "blocked-address", "Link not allowed"),
    intake_errors.ImageTooLargeError: ProblemKind(413, "image-too-large", "Photo too large"),
    intake_errors.TooManyPixelsError: ProblemKind(413, "too-many-pixels", "Photo too large"),
    errors.RequestTooLargeError: ProblemKind(413, "request-too-large", "Request too large"),
    errors.RequestTimeoutError: ProblemKind(408, "request-timeout", "Request body too slow"),
    errors.ClientDisconnectedError: ProblemKind(400, "client-disconnected", "Request cut off"),
    intake_errors.UnsupportedFormatError: ProblemKind(
        415, "unsupported-format", "Not a supported photo"
    ),
    errors.UnsupportedMediaTypeError: ProblemKind(
        415, "unsupported-media-type", "Unsupported request body"
    ),
    intake_errors.CorruptImageError: ProblemKind(422, "corrupt-image", "Damaged photo"),
    intake_errors.ImageShapeError: ProblemKind(422, "photo-shape", "Photo too long and thin"),
    intake_errors.ImageTooComplexError: ProblemKind(
        422, "photo-too-complex", "Photo too costly to open"
    ),
    errors.InvalidRequestError: ProblemKind(422, "invalid-request", "Invalid request"),
    intake_errors.IntakeError: ProblemKind(400, "unusable-photo", "Unusable photo or link"),
    # What the linked server did (the caller's link is fine; the fetch failed)
    intake_errors.HostNotFoundError: ProblemKind(502, "host-not-found", "Link's website not found"),
    intake_errors.DownloadError: ProblemKind(502, "download-failed", "Download failed"),
    intake_errors.InsecureConnectionError: ProblemKind(
        502, "insecure-connection", "Linked website not verified"
    ),
    intake_errors.HTTPStatusError: ProblemKind(502, "upstream-status", "Linked server refused"),
    intake_errors.TooManyRedirectsError: ProblemKind(
        502, "too-many-redirects", "Too many redirects"
    ),
    intake_errors.UnsupportedEncodingError: ProblemKind(
        502, "upstream-encoding", "Compressed download"
    ),
    intake_errors.DownloadTimeoutError: ProblemKind(504, "download-timeout", "Download timed out"),
    # The service's own state
    errors.ModelNotReadyError: ProblemKind(503, "model-not-ready", "Model not ready"),
    errors.ServiceBusyError: ProblemKind(503, "busy", "Service busy"),
    ClassifierError: ProblemKind(500, "classifier-error", "Classifier error"),
    DishLensError: ProblemKind(500, "internal-error", "Internal error"),
}


def problem_kind(error: BaseException) -> ProblemKind:
    """The problem for ``error``: its own class's entry, else its nearest mapped base's."""
    for cls in type(error).__mro__:
        if cls in PROBLEMS:
            return PROBLEMS[cls]
    return PROBLEMS[DishLensError]


def problem_response(
    request: Request,
    *,
    status: int,
    title: str,
    detail: str,
    type_: str = "about:blank",
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body = {"type": type_, "title": title, "status": status, "detail": detail}
    body["instance"] = request.url.path
    body.update(jsonable_encoder(extensions))
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


async def dishlens_error_handler(request: Request, error: Exception) -> JSONResponse:
    kind = problem_kind(error)
    if kind.status == 500:
        logger.error("request failed path=%s error=%r", request.url.path, error, exc_info=error)
    retry_after = getattr(error, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if isinstance(error, errors.RequestTimeoutError):
        headers["Connection"] = "close"  # the rest of the body is never read
    extensions = {"errors": error.errors} if isinstance(error, errors.InvalidRequestError) else {}
    return problem_response(
        request,
        status=kind.status,
        title=kind.title,
        detail=str(error),
        type_=kind.type,
        headers=headers,
        **extensions,
    )


async def http_error_handler(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    title = HTTPStatus(error.status_code).phrase
    detail = error.detail if isinstance(error.detail, str) else title
    return problem_response(
        request, status=error.status_code, title=title, detail=detail, headers=error.headers
    )


async def validation_error_handler(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    found = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in error.errors()
    ]
    return problem_response(
        request,
        status=422,
        title="Invalid request",
        type_=PROBLEMS[errors.InvalidRequestError].type,
        detail="The request's parameters are not valid; see 'errors'.",
        errors=found,
    )


async def unexpected_error_handler(request: Request, error: Exception) -> JSONResponse:
    logger.exception("unexpected error path=%s", request.url.path, exc_info=error)
    return problem_response(
        request,
        status=500,
        title="Internal error",
        type_=PROBLEMS[DishLensError].type,
        detail="Something went wrong on our side; the error has been logged.",
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as ``application/problem+json``."""
    app.add_exception_handler(DishLensError, dishlens_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
