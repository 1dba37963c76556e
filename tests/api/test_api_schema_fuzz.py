"""Schemathesis against the OpenAPI schema: generated requests never get a server error.

Links in generated JSON bodies go to a fetcher that runs intake's real URL parsing and then
refuses the link as if its host were private: fuzzing never reaches the network. (Upstream
failures, which answer 502/504 by design, are covered with a real loopback server in
``routes/test_classify_route.py``.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from PIL import Image
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api.photos import get_url_fetcher
from intake.errors import BlockedAddressError
from intake.urls import parse_url

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def fetch_without_network(url: str, **_: object) -> Image.Image:
    target = parse_url(url)
    raise BlockedAddressError(target.host, None, "fuzzing never fetches")


@pytest.fixture
def fuzz_app(make_app) -> Iterator[FastAPI]:
    app = make_app()
    app.dependency_overrides[get_url_fetcher] = lambda: fetch_without_network
    yield app


@pytest.fixture
def api_schema(fuzz_app: FastAPI):
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)
