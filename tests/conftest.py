"""Fixtures for the whole suite: a clean environment, the network guard, the shared photo
folders and a moto server."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from dishlens.settings import Settings, env_name, get_settings
from tests.support import network as network_guard
from tests.support.servers import free_port

DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
FOOD_MNIST = DATA_ROOT / "food-mnist"
FOOD101_64 = DATA_ROOT / "food101-64"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No setting leaks in from the developer's shell or from another test (the cached
    settings are cleared around each test); no real AWS or HF credentials are used."""
    for f in dataclasses.fields(Settings):
        monkeypatch.delenv(env_name(f), raising=False)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "HF_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config-absent"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials-absent"))
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "model-cache"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def network(monkeypatch: pytest.MonkeyPatch) -> Iterator[network_guard.Network]:
    """Every test: nothing beyond loopback, no DNS but the test's own table (``network.dns``)."""
    with network_guard.guard(monkeypatch) as net:
        yield net


@pytest.fixture
def hub_sends_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let huggingface_hub send requests (the network guard keeps them on loopback).

    The hub reads HF_HUB_OFFLINE once, at import, and then refuses every request, loopback
    included. With offline mode off, its first request would also fetch an "agent harness" list
    from huggingface.co for its User-Agent header; HF_HUB_DISABLE_TELEMETRY turns that off.
    Folders that talk to the loopback chat server use it (``tests/llm_client``, ``tests/app``).
    """
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)


def _require(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(
            f"{path} is absent: these tests need the shared Food-101 photos beside the repo"
        )
    return path


@pytest.fixture(scope="session")
def food_mnist() -> Path:
    return _require(FOOD_MNIST)


@pytest.fixture(scope="session")
def food101_64() -> Path:
    return _require(FOOD101_64)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server (all AWS services) on loopback; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 at the loopback moto server for this test; returns the endpoint."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return moto_server
