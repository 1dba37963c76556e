"""The guard itself: it must stop non-loopback traffic, judged without sending any.

These tests call the guard's check directly instead of a real ``connect``, so even a broken
guard could not make them send a packet.
"""

from __future__ import annotations

import socket

import pytest

from tests.intake.conftest import Network


def test_guard_is_installed(network: Network) -> None:
    assert getattr(socket.socket.connect, "__name__", "") == "connect"
    assert socket.socket.connect.__module__ == "tests.intake.conftest"
    assert socket.getaddrinfo.__module__ == "tests.intake.conftest"


@pytest.mark.parametrize(
    "address",
    [("192.0.2.1", 80), ("169.254.169.254", 80), ("::ffff:10.0.0.1", 443, 0, 0), ("example", 80)],
)
def test_guard_refuses_non_loopback(address: tuple) -> None:
    spare = Network()
    with socket.socket() as sock, pytest.raises(pytest.fail.Exception):
        spare.check_destination(sock, address, "connect")
    assert spare.violations and spare.connects == []


@pytest.mark.parametrize("address", [("127.0.0.1", 80), ("127.9.9.9", 80), ("::1", 80, 0, 0)])
def test_guard_allows_loopback(address: tuple) -> None:
    spare = Network()
    with socket.socket() as sock:
        spare.check_destination(sock, address, "connect")
    assert spare.violations == []


def test_unknown_names_are_never_looked_up(network: Network) -> None:
    with pytest.raises(pytest.fail.Exception):
        socket.getaddrinfo("dishlens-guard-check.invalid", 80)
    assert network.violations == ["DNS lookup of 'dishlens-guard-check.invalid'"]
    network.violations.clear()


def test_literals_resolve_without_dns(network: Network) -> None:
    assert socket.getaddrinfo("127.0.0.1", 80)[0][4][0] == "127.0.0.1"
    assert network.violations == []
