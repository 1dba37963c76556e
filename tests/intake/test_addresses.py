"""The address check: hostile spellings refused before any packet, public addresses allowed.

Hostile links go through the public ``image_from_url`` with the production default (private
addresses refused); the network guard would fail any test that connected or looked a name up,
and each case also asserts that nothing was attempted. Public examples are judged by the
address logic alone, with an injected resolver, so no DNS lookup or connection happens.
"""

from __future__ import annotations

import ipaddress

import pytest

import intake
from dishlens.settings import Settings
from intake.addresses import parse_ip_literal, refusal_reason, resolve_checked
from intake.errors import BlockedAddressError, HostNotFoundError, InvalidURLError
from tests.support.network import Network

B, I = BlockedAddressError, InvalidURLError  # noqa: E741

HOSTILE = [
    # IPv4 loopback in every spelling a resolver or browser accepts
    ("http://127.0.0.1/", B),
    ("http://127.0.0.1:8080/photo.jpg", B),
    ("http://127.1/", B),
    ("http://127.0.1/", B),
    ("http://2130706433/", B),
    ("http://0177.0.0.1/", B),
    ("http://0x7f.1/", B),
    ("http://0x7f000001/", B),
    ("http://017700000001/", B),
    ("http://0x7F.0.0.1/", B),
    ("http://127.0.0.1./", B),
    ("http://127.255.255.254/", B),
    ("http://127。0。0。1/", B),  # ideographic full stops
    ("http://１２７.０.０.１/", B),  # full-width digits
    # unspecified, private, CGNAT, link-local and the cloud metadata service
    ("http://0/", B),
    ("http://0.0.0.0/", B),
    ("http://10.0.0.1/", B),
    ("http://012.1/", B),
    ("http://172.16.0.1/", B),
    ("http://172.31.255.255/", B),
    ("http://192.168.1.1/", B),
    ("http://3232235777/", B),
    ("http://100.64.0.1/", B),
    ("http://100.127.255.254/", B),
    ("http://169.254.169.254/latest/meta-data/", B),
    ("http://2852039166/", B),
    ("http://0xa9.0xfe.0xa9.0xfe/", B),
    ("http://0251.0376.0251.0376/", B),
    ("http://169.254.170.2/v2/credentials", B),
    # multicast, reserved, broadcast, special-purpose
    ("http://224.0.0.1/", B),
    ("http://239.255.255.250:1900/", B),
    ("http://240.0.0.1/", B),
    ("http://255.255.255.255/", B),
    ("http://192.0.0.8/", B),
    ("http://192.0.2.1/", B),
    ("http://198.18.0.1/", B),
    # IPv6
    ("http://[::1]/", B),
    ("http://[0:0:0:0:0:0:0:1]/", B),
    ("http://[::]/", B),
    ("http://[::ffff:127.0.0.1]/", B),
    ("http://[::ffff:7f00:1]/", B),
    ("http://[::ffff:169.254.169.254]/", B),
    ("http://[::ffff:10.0.0.1]/", B),
    ("http://[::127.0.0.1]/", B),
    ("http://[fd00:ec2::254]/latest/meta-data/", B),
    ("http://[fc00::1]/", B),
    ("http://[fe80::1]/", B),
    ("http://[fec0::1]/", B),
    ("http://[ff02::1]/", B),
    ("http://[64:ff9b::a9fe:a9fe]/", B),  # NAT64 of 169.254.169.254
    ("http://[64:ff9b::7f00:1]/", B),  # NAT64 of 127.0.0.1
    ("http://[64:ff9b:1::a00:1]/", B),  # local-use NAT64
    ("http://[2002:7f00:1::]/", B),  # 6to4 of 127.0.0.1
    ("http://[2002:a9fe:a9fe::1]/", B),  # 6to4 of 169.254.169.254
    ("http://[2001::1]/", B),  # Teredo
    ("http://[2001:db8::1]/", B),
    ("http://[100::1]/", B),
    ("http://[::2]/", B),
    # names that mean this machine or this network, refused without a lookup
    ("http://localhost/", B),
    ("http://localhost./", B),
    ("http://LOCALHOST/", B),
    ("http://LocalHost:3000/", B),
    ("http://app.localhost/", B),
    ("http://metadata.google.internal/computeMetadata/v1/", B),
    ("http://printer.local/", B),
    ("http://router.home.arpa/", B),
    # malformed or sneaky links
    ("http://[fe80::1%25eth0]/", I),
    ("http://%31%32%37.0.0.1/", I),
    ("http://1.2.3.4.5/", I),
    ("http://256.0.0.1/", I),
    ("http://0x7g.0.0.1/", I),
    ("http://08.0.0.1/", I),
    ("http://127.0.0.1:0/", I),
    ("http://127.0.0.1:99999/", I),
    ("http://user:secret@example.com/", I),
    ("http://example.com@127.0.0.1/", I),
    ("http://evil.example\\@127.0.0.1/", I),
    ("http:///photo.jpg", I),
    ("http://exa mple.com/", I),
    ("http://example.com/\r\nHost: 127.0.0.1", I),
    ("file:///etc/passwd", I),
    ("gopher://127.0.0.1:6379/_INFO", I),
    ("dict://127.0.0.1:11211/stat", I),
    ("ftp://127.0.0.1/", I),
    ("data:image/png;base64,iVBORw0KGgo=", I),
    ("javascript:alert(1)", I),
    ("//127.0.0.1/photo.jpg", I),
    ("127.0.0.1/photo.jpg", I),
]


@pytest.mark.parametrize(("url", "error"), HOSTILE)
def test_hostile_links_are_refused_before_any_packet(
    url: str, error: type[Exception], public_settings: Settings, network: Network
) -> None:
    with pytest.raises(error) as caught:
        intake.image_from_url(url, settings=public_settings)
    assert type(caught.value) is error
    assert network.connects == [] and network.lookups == []


def test_the_table_is_long_enough() -> None:
    assert sum(1 for _, error in HOSTILE if error is BlockedAddressError) >= 40


@pytest.mark.parametrize(
    ("name", "answers"),
    [
        ("intranet.test", ["10.20.30.40"]),
        ("metadata.test", ["169.254.169.254"]),
        ("mixed.test", ["93.184.215.14", "127.0.0.1"]),
        ("mapped.test", ["::ffff:127.0.0.1"]),
        ("ula.test", ["2606:4700::1111", "fd12:3456::1"]),
    ],
)
def test_names_resolving_to_private_addresses_are_refused_before_any_connect(
    name: str, answers: list[str], public_settings: Settings, network: Network
) -> None:
    network.dns[name] = answers
    with pytest.raises(BlockedAddressError):
        intake.image_from_url(f"https://{name}/photo.jpg", settings=public_settings)
    assert network.lookups == [name]
    assert network.connects == []


# ---------------------------------------------------------------------------------------------
# THE ADDRESS LOGIC ON ITS OWN (no network)

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "151.101.1.140",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above CGNAT
    "172.15.255.255",
    "172.32.0.0",
    "169.253.255.255",
    "223.255.255.254",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "2a00:1450:4001:80b::200e",
    "64:ff9b::808:808",  # NAT64 of a public address
]


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses_are_allowed(text: str) -> None:
    assert refusal_reason(ipaddress.ip_address(text)) is None


def _no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"the resolver was asked about {host!r}")


@pytest.mark.parametrize("text", PUBLIC)
def test_public_literals_need_no_resolver(text: str) -> None:
    host = text.lower()
    checked = resolve_checked(host, 443, allow_private=False, resolver=_no_dns)
    assert checked == [ipaddress.ip_address(text)]


def test_public_names_are_allowed_with_every_answer_checked() -> None:
    answers = ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "93.184.215.14"]
    asked = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return answers

    checked = resolve_checked("photos.example.com", 443, allow_private=False, resolver=resolver)
    assert [str(a) for a in checked] == answers[:2]
    assert asked == [("photos.example.com", 443)]


def test_public_link_passes_every_check_up_to_the_connect() -> None:
    from intake.urls import parse_url

    target = parse_url("https://Photos.Example.com./food/ramen%20bowl.jpg?size=large#top")
    checked = resolve_checked(
        target.host, target.port, allow_private=False, resolver=lambda h, p: ["151.101.1.140"]
    )
    assert (target.host, target.port, str(checked[0])) == (
        "photos.example.com",
        443,
        "151.101.1.140",
    )


@pytest.mark.parametrize("answers", [[], ["not-an-address"]], ids=["no-answer", "garbage-answer"])
def test_resolver_without_usable_answers(answers: list[str]) -> None:
    with pytest.raises(HostNotFoundError):
        resolve_checked("gone.example", 80, allow_private=False, resolver=lambda h, p: answers)


def test_resolver_failure_is_host_not_found() -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(HostNotFoundError) as caught:
        resolve_checked("gone.example", 80, allow_private=False, resolver=resolver)
    assert isinstance(caught.value.__cause__, OSError)


@pytest.mark.parametrize(
    "text", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "fd00:ec2::254", "::ffff:127.0.0.1"]
)
def test_private_addresses_are_allowed_when_the_setting_is_on(text: str) -> None:
    assert resolve_checked(text, 80, allow_private=True, resolver=_no_dns)


@pytest.mark.parametrize("text", ["0.0.0.0", "224.0.0.1", "255.255.255.255", "::", "ff02::1"])
def test_non_destinations_are_refused_even_when_private_is_allowed(text: str) -> None:
    with pytest.raises(BlockedAddressError):
        resolve_checked(text, 80, allow_private=True, resolver=_no_dns)


@pytest.mark.parametrize(
    "spelling", ["2130706433", "0177.0.0.1", "0x7f.1", "127.1", "0x7f000001", "0177.0.0x0.01"]
)
def test_legacy_ipv4_spellings_mean_what_resolvers_think(spelling: str) -> None:
    assert parse_ip_literal(spelling) == ipaddress.IPv4Address("127.0.0.1")


def test_names_are_not_literals() -> None:
    assert parse_ip_literal("photos.example.com") is None
    assert parse_ip_literal("1password.com") is None
    assert parse_ip_literal("0xdeadbeef.example") is None


def test_refusals_name_their_reason() -> None:
    with pytest.raises(BlockedAddressError) as caught:
        resolve_checked("169.254.169.254", 80, allow_private=False, resolver=_no_dns)
    assert caught.value.reason.startswith("link-local")
    assert str(caught.value) == (
        "That link points to a private network address, which DishLens does not fetch."
    )
