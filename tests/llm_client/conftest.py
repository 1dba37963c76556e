"""Fixtures for the chat client: a scripted OpenAI-compatible SSE server on 127.0.0.1 and
Secrets Manager on the suite's moto server (the suite's network guard keeps it all on
loopback)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dishlens.settings import Settings, load_settings
from tests.support.chat_server import ChatServer


@pytest.fixture(autouse=True)
def hub_on_loopback(hub_sends_to_loopback: None) -> None:
    """huggingface_hub may send requests here (to the loopback chat server only)."""


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep exponential backoff real but short; Retry-After waits stay as the server asks."""
    monkeypatch.setattr("llm_client._common.BACKOFF_BASE_S", 0.05)


# ---------------------------------------------------------------------------------------------
# SCRIPTED OPENAI-COMPATIBLE SERVER


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    server = ChatServer().start()
    yield server
    server.stop()


@pytest.fixture
def settings_for() -> Callable[..., Settings]:
    """``settings_for(server, **fields)``: default settings pointed at ``server``."""

    def build(server: ChatServer | None = None, **fields: Any) -> Settings:
        if server is not None:
            fields.setdefault("llm_base_url", server.url)
        fields.setdefault("llm_timeout", 5.0)
        return dataclasses.replace(load_settings(), **fields)

    return build


# ---------------------------------------------------------------------------------------------
# AWS SECRETS MANAGER (moto)


@pytest.fixture
def secrets_manager(aws: str) -> Any:
    """A boto3 Secrets Manager client on the suite's moto server (``aws`` points DishLens there
    too, through AWS_ENDPOINT_URL)."""
    import boto3

    return boto3.client("secretsmanager")
