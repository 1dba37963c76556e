"""The network guard: no test sends a packet beyond loopback or asks DNS anything.

:func:`guard` patches ``socket`` for one test. Any connect or datagram to a non-loopback
address, and any lookup of a name that is not in :attr:`Network.dns`, fails the test on the
spot (``pytest.fail`` raises a ``BaseException``, so no ``except Exception`` in the code under
test can swallow it) and again at teardown. A test that needs names extends the table:
``network.dns["intranet.test"] = ["10.20.30.40"]``, a callable answering anew on each lookup,
or an exception to raise.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

DnsAnswer = list[str] | Callable[[], list[str]] | BaseException


@dataclass
class Network:
    """What the code under test tried to do; ``dns`` is the only name table it can use."""

    dns: dict[str, DnsAnswer] = field(default_factory=lambda: {"localhost": ["127.0.0.1"]})
    connects: list[tuple[str, int]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def refuse(self, what: str) -> None:
        self.violations.append(what)
        pytest.fail(f"network guard: {what}", pytrace=False)

    def check_destination(self, sock: socket.socket, address: Any, action: str) -> None:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return  # Unix sockets: pipes to model workers, event-loop wake-ups
        host = address[0] if isinstance(address, tuple) else address
        try:
            ip = ipaddress.ip_address(str(host).split("%", 1)[0])
        except ValueError:
            self.refuse(f"{action} to a name ({host!r}) instead of a checked address")
            return
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if not ip.is_loopback:
            self.refuse(f"{action} to non-loopback address {host!r}")
        if action == "connect":
            self.connects.append((str(ip), address[1]))

    def answer(self, host: str, port: object, family: int) -> list[Any]:
        entry = self.dns[host]
        if isinstance(entry, BaseException):
            raise entry
        answers = entry() if callable(entry) else entry
        result = []
        for text in answers:
            v6 = ":" in text
            kind = socket.AF_INET6 if v6 else socket.AF_INET
            if family not in (0, socket.AF_UNSPEC, kind):
                continue
            port_number = int(port or 0)  # type: ignore[call-overload]
            sockaddr = (text, port_number, 0, 0) if v6 else (text, port_number)
            result.append((kind, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return result


@contextmanager
def guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[Network]:
    """Install the guard on ``socket`` for as long as ``monkeypatch`` lasts; yield its record."""
    net = Network()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto
    real_getaddrinfo = socket.getaddrinfo

    def connect(sock: socket.socket, address: Any) -> None:
        net.check_destination(sock, address, "connect")
        return real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        net.check_destination(sock, address, "connect")
        return real_connect_ex(sock, address)

    def sendto(sock: socket.socket, data: bytes, *args: Any) -> int:
        net.check_destination(sock, args[-1], "sendto")
        return real_sendto(sock, data, *args)

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):  # type: ignore[no-untyped-def]
        name = host.decode() if isinstance(host, bytes) else host
        net.lookups.append(name)
        if name in net.dns:
            return net.answer(name, port, family)
        try:  # IP literals only: AI_NUMERICHOST never asks DNS
            return real_getaddrinfo(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        except socket.gaierror:
            net.refuse(f"DNS lookup of {name!r}")

    def no_lookup(name: str, *args: object) -> None:
        net.refuse(f"DNS lookup of {name!r}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for name in ("gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        monkeypatch.setattr(socket, name, no_lookup)
    yield net
    assert not net.violations, f"network guard: {net.violations}"
