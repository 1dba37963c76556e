"""Which network addresses DishLens may fetch from (OWASP SSRF prevention).

A host is turned into addresses exactly once: an IP literal (in any spelling a resolver or a
browser would accept) is parsed here, a name goes through the resolver. Every address must be
public; the fetcher then connects to one of these checked addresses, never to the name, so a
DNS-rebinding answer cannot slip in between the check and the connect.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence

from intake.errors import BlockedAddressError, HostNotFoundError, InvalidURLError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

logger = logging.getLogger(__name__)

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
# IANA special-purpose registries; the first match names the reason.
_BLOCKED_V4 = [
    (_V4("0.0.0.0/8"), "unspecified ('this network')"),
    (_V4("10.0.0.0/8"), "private"),
    (_V4("100.64.0.0/10"), "shared address space (CGNAT)"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local (cloud metadata)"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.0.0.0/24"), "IETF protocol assignments"),
    (_V4("192.0.2.0/24"), "documentation"),
    (_V4("192.88.99.0/24"), "6to4 relay anycast"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("198.18.0.0/15"), "benchmarking"),
    (_V4("198.51.100.0/24"), "documentation"),
    (_V4("203.0.113.0/24"), "documentation"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved or broadcast"),
]
_BLOCKED_V6 = [
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("::ffff:0:0/96"), "IPv4-mapped"),
    (_V6("::/96"), "IPv4-compatible"),
    (_V6("64:ff9b:1::/48"), "local-use NAT64"),
    (_V6("100::/64"), "discard-only"),
    (_V6("2001::/23"), "IETF protocol assignments (incl. Teredo)"),
    (_V6("2001:db8::/32"), "documentation"),
    (_V6("2002::/16"), "6to4"),
    (_V6("3fff::/20"), "documentation"),
    (_V6("5f00::/16"), "SRv6 segment identifiers"),
    (_V6("fc00::/7"), "unique local (ULA)"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "site-local"),
    (_V6("ff00::/8"), "multicast"),
]
_GLOBAL_UNICAST_V6 = _V6("2000::/3")
_NAT64 = _V6("64:ff9b::/96")
# Names that only ever mean "this machine" or "this network"; refused without asking DNS.
_LOCAL_NAMES = ("localhost",)
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".localdomain")


def refusal_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not public, or ``None`` when DishLens may fetch from it."""
    if isinstance(address, ipaddress.IPv4Address):
        reason = _first_match(address, _BLOCKED_V4)
    else:
        reason = _v6_reason(address)
    if reason is None and not address.is_global:
        reason = "not globally routable"
    return reason


def never_a_destination(address: IPAddress) -> bool:
    """Unspecified, multicast and broadcast addresses are refused even for intranet use."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        address.is_unspecified
        or address.is_multicast
        or address == ipaddress.IPv4Address("255.255.255.255")
    )


def parse_ip_literal(host: str) -> IPAddress | None:
    """``host`` as an address when it is an IP literal in any spelling, else ``None``.

    IPv4 follows the WHATWG URL rules (which match ``inet_aton``): one to four parts, each
    decimal, octal (leading ``0``) or hex (``0x``), so ``2130706433``, ``0177.0.0.1`` and
    ``0x7f.1`` are all 127.0.0.1. A name whose last label is a number but which is not a valid
    address is refused, as browsers do.

    Raises:
        InvalidURLError: the host ends in a number but is not a valid IPv4 address.
    """
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as err:
            raise InvalidURLError(host, "bad IPv6 literal") from err
    labels = host.split(".")
    if not _is_number(labels[-1]):
        return None
    value = _legacy_ipv4(labels)
    if value is None:
        raise InvalidURLError(host, "host ends in a number but is not an IPv4 address")
    return ipaddress.IPv4Address(value)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the operating system's resolver gives for ``host``."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve_checked(
    host: str, port: int, *, allow_private: bool, resolver: Resolver | None = None
) -> list[IPAddress]:
    """The addresses to connect to for ``host``, every one of them checked.

    Args:
        host: An ASCII host name or IP literal, as :func:`intake.urls.parse_url` returns it.
        port: The port, passed to the resolver.
        allow_private: Accept loopback, private and link-local addresses (tests, intranets).
        resolver: ``(host, port) -> addresses``; defaults to the system resolver. IP literals
            and local names never reach it.

    Returns:
        The addresses, in the resolver's order, with duplicates removed.

    Raises:
        BlockedAddressError: any address (or the name itself) is not public.
        HostNotFoundError: the name does not resolve.
        InvalidURLError: the host is a malformed IP literal.
    """
    literal = parse_ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        if not allow_private and _is_local_name(host):
            raise _blocked(host, None, "local host name")
        addresses = _resolve(host, port, resolver or system_resolver)
    for address in addresses:
        _check(host, address, allow_private)
    return addresses


def _check(host: str, address: IPAddress, allow_private: bool) -> None:
    if never_a_destination(address):
        raise _blocked(host, address, "not a destination (unspecified, multicast, broadcast)")
    reason = None if allow_private else refusal_reason(address)
    if reason is not None:
        raise _blocked(host, address, reason)


def _resolve(host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    try:
        answers = list(resolver(host, port))
    except (OSError, UnicodeError) as err:
        raise HostNotFoundError(host) from err
    addresses = [_parse_answer(host, answer) for answer in answers]
    if not addresses:
        raise HostNotFoundError(host)
    return list(dict.fromkeys(addresses))


def _parse_answer(host: str, answer: str) -> IPAddress:
    try:
        return ipaddress.ip_address(answer.split("%", 1)[0])
    except ValueError as err:
        raise HostNotFoundError(host) from err


def _blocked(host: str, address: IPAddress | None, reason: str) -> BlockedAddressError:
    logger.warning("Refused link to %s (%s): %s", host, address or "not resolved", reason)
    return BlockedAddressError(host, None if address is None else str(address), reason)


def _is_local_name(host: str) -> bool:
    return host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES)


def _first_match(address: IPAddress, table: list) -> str | None:
    return next((reason for network, reason in table if address in network), None)


def _v6_reason(address: ipaddress.IPv6Address) -> str | None:
    if address in _NAT64:
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        inner = refusal_reason(embedded)
        return None if inner is None else f"NAT64 of a {inner} address"
    reason = _first_match(address, _BLOCKED_V6)
    if reason is None and address not in _GLOBAL_UNICAST_V6:
        reason = "reserved"
    return reason


def _is_number(label: str) -> bool:
    if label[:2].lower() == "0x":
        return all(ch in "0123456789abcdefABCDEF" for ch in label[2:])
    return label.isdigit()


def _legacy_ipv4(labels: list[str]) -> int | None:
    """inet_aton-style parse of the dotted parts, or ``None`` when it is not an address."""
    if not 1 <= len(labels) <= 4:
        return None
    try:
        numbers = [_parse_part(label) for label in labels]
    except ValueError:
        return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return value


def _parse_part(label: str) -> int:
    if label[:2].lower() == "0x":
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8)
    if not label.isdigit():
        raise ValueError(label)
    return int(label)
