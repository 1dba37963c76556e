"""Every error class maps to its HTTP status in one table; bad input is never a 500."""

from __future__ import annotations

import pytest

import intake.errors as intake_errors
from api import errors
from api.problems import PROBLEMS, problem_kind
from dishlens.errors import DishLensError


def subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *subclasses(sub)]
    return found


EXPECTED = {
    intake_errors.InvalidURLError: 400,
    intake_errors.BlockedAddressError: 400,
    intake_errors.ImageTooLargeError: 413,
    intake_errors.TooManyPixelsError: 413,
    intake_errors.UnsupportedFormatError: 415,
    intake_errors.CorruptImageError: 422,
    intake_errors.HostNotFoundError: 502,
    intake_errors.DownloadError: 502,
    intake_errors.InsecureConnectionError: 502,
    intake_errors.HTTPStatusError: 502,
    intake_errors.TooManyRedirectsError: 502,
    intake_errors.UnsupportedEncodingError: 502,
    intake_errors.DownloadTimeoutError: 504,
    errors.RequestTooLargeError: 413,
    errors.UnsupportedMediaTypeError: 415,
    errors.InvalidRequestError: 422,
    errors.ModelNotReadyError: 503,
    errors.ServiceBusyError: 503,
}


@pytest.mark.parametrize("cls", list(EXPECTED), ids=lambda cls: cls.__name__)
def test_each_error_class_has_its_status(cls: type) -> None:
    assert cls in PROBLEMS, f"{cls.__name__} is not mapped explicitly"
    assert PROBLEMS[cls].status == EXPECTED[cls]


@pytest.mark.parametrize("cls", subclasses(intake_errors.IntakeError), ids=lambda cls: cls.__name__)
def test_no_intake_error_is_a_server_error(cls: type) -> None:
    error = cls.__new__(cls)
    assert problem_kind(error).status in {400, 413, 415, 422, 502, 504}


def test_unmapped_subclass_uses_nearest_base() -> None:
    class OddDownload(intake_errors.DownloadError):
        pass

    assert problem_kind(OddDownload("http://x")).status == 502


def test_problem_types_are_unique_per_kind() -> None:
    kinds = list(PROBLEMS.values())
    assert len({kind.type for kind in kinds}) == len(kinds)
    assert all(kind.type.startswith("urn:dishlens:problem:") for kind in kinds)


def test_plain_dishlens_error_is_a_500() -> None:
    assert problem_kind(DishLensError("x")).status == 500
