"""Fixtures for the chat client: a scripted OpenAI-compatible SSE server on 127.0.0.1, Secrets
Manager on the suite's moto server, and a guard that fails any test connecting anywhere else."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dishlens.settings import Settings, load_settings
from tests.llm_client.fake_llm_server import ChatServer

# ---------------------------------------------------------------------------------------------
# LOOPBACK-ONLY GUARD


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse (and fail the test on) any connection or name lookup that is not loopback."""
    blocked: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and not _is_loopback(host):
            blocked.append(str(host))
            raise ConnectionRefusedError(f"test guard: no connections to {host}")

    def connect(sock: socket.socket, address: Any) -> None:
        check(address)
        return real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None:
            check((host.decode() if isinstance(host, bytes) else host,))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield blocked
    assert not blocked, f"the test tried to reach non-loopback hosts: {blocked}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def hub_sends_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let huggingface_hub send requests to the loopback servers, and only there.

    The hub reads HF_HUB_OFFLINE once, at import, and then refuses every request, loopback
    included; the guard above keeps these tests off the network instead. With offline mode off,
    the hub's first request would also fetch an "agent harness" list from huggingface.co for
    its User-Agent header; HF_HUB_DISABLE_TELEMETRY turns that off.
    """
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)


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
