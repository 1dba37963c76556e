"""OpenAPI descriptions of the problem responses the routes can give."""

from __future__ import annotations

from typing import Any

from api.problems import PROBLEM_MEDIA_TYPE
from api.schemas import ProblemPublic


def problem(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": ProblemPublic.model_json_schema()}},
    }
    if retry_after:
        response["headers"] = {
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
        }
    return response


NOT_READY: dict[int | str, dict[str, Any]] = {
    503: problem("The model is not loaded yet.", retry_after=True)
}
NOT_READY_OR_BUSY: dict[int | str, dict[str, Any]] = {
    503: problem(
        "The model is not loaded yet, or every place for photos is taken.", retry_after=True
    )
}
CLASSIFY: dict[int | str, dict[str, Any]] = {
    400: problem("The link is malformed or not allowed, or the multipart framing is broken."),
    408: problem("The request body did not arrive in time (30 s)."),
    413: problem("The photo or request body is too large."),
    415: problem("The body is not multipart/JSON, or the (linked) file is not a supported photo."),
    422: problem("The form, JSON or a query parameter is invalid, or the photo is damaged."),
    502: problem("The linked website could not be reached, refused, or redirected too often."),
    503: problem(
        "The model is still loading, or too many requests (or link downloads) are waiting.",
        retry_after=True,
    ),
    504: problem("The linked server took too long."),
}
