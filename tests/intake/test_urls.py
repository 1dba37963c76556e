"""parse_url: what the fetcher sends, and the links it refuses before anything else."""

from __future__ import annotations

import pytest

from intake.errors import InvalidURLError
from intake.urls import parse_url


@pytest.mark.parametrize(
    ("url", "host", "port", "host_header", "request_target"),
    [
        (
            "https://Photos.Example.com/a.jpg",
            "photos.example.com",
            443,
            "photos.example.com",
            "/a.jpg",
        ),
        ("http://example.com", "example.com", 80, "example.com", "/"),
        ("http://example.com.:8080/x?y=1#frag", "example.com", 8080, "example.com:8080", "/x?y=1"),
        (
            "https://bücher.example/ä.jpg?q=ü",
            "xn--bcher-kva.example",
            443,
            "xn--bcher-kva.example",
            "/%C3%A4.jpg?q=%C3%BC",
        ),
        ("http://[2001:db8::1]:8443/p", "2001:db8::1", 8443, "[2001:db8::1]:8443", "/p"),
        ("HTTPS://EXAMPLE.COM/Path", "example.com", 443, "example.com", "/Path"),
        ("https://example.com:443/p%20q.jpg", "example.com", 443, "example.com", "/p%20q.jpg"),
    ],
)
def test_parsed_parts(url: str, host: str, port: int, host_header: str, request_target: str):
    target = parse_url(url)
    assert (target.host, target.port, target.host_header) == (host, port, host_header)
    assert target.request_target == request_target


def test_surrounding_whitespace_is_forgiven() -> None:
    assert parse_url("  https://example.com/a.jpg\n").host == "example.com"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/a.jpg", "scheme"),
        ("example.com/a.jpg", "scheme"),
        ("https://user@example.com/", "credentials"),
        ("https://:pw@example.com/", "credentials"),
        ("https://example.com:0/", "port 0"),
        ("https://example.com:http/", "unparsable"),
        ("https://exa_mple..com/", "not a valid name"),
        ("https://" + "a" * 64 + ".com/", "not a valid name"),
        ("https://example.com/" + "a" * 5000, "too long"),
        ("https://example.com/\x00.jpg", "control character"),
        ("https://[::1/", "unparsable"),
        ("https://exam!ple.com/", "not a valid name"),
    ],
)
def test_refused_links(url: str, reason: str) -> None:
    with pytest.raises(InvalidURLError) as caught:
        parse_url(url)
    assert reason in caught.value.reason
    assert caught.value.url


def test_messages_guide_the_user() -> None:
    with pytest.raises(InvalidURLError) as caught:
        parse_url("file:///etc/passwd")
    assert "http:// or https://" in str(caught.value)
    with pytest.raises(InvalidURLError) as caught:
        parse_url("https://me:secret@example.com/")
    assert "secret" not in str(caught.value)
