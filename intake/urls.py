"""Parse a pasted link into the parts the fetcher needs, refusing anything odd up front.

The host comes back in its ASCII (IDNA) form, lower-case, without brackets or a trailing dot,
so the address check, the Host header and TLS all see the same name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from intake.errors import InvalidURLError

MAX_URL_LENGTH = 4096
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_NAME = re.compile(r"^[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$")
_PATH_SAFE = "/%!$&'()*+,;=:@-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


@dataclass(frozen=True)
class Target:
    """One parsed http(s) link."""

    url: str
    scheme: str
    host: str
    port: int
    request_target: str

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"


def parse_url(url: str) -> Target:
    """Split ``url`` into scheme, ASCII host, port and request target.

    Raises:
        InvalidURLError: not http(s), credentials present, a bad host or port, or stray
            whitespace and control characters.
    """
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise InvalidURLError(str(url)[:200], "not a string or too long")
    url = url.strip()
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InvalidURLError(url, "whitespace or control character")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise InvalidURLError(url, f"unparsable: {err}") from err
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidURLError(
            url,
            f"scheme {scheme!r}",
            "DishLens only opens web links; paste a link that starts with http:// or https://.",
        )
    _check_authority(url, parts.netloc)
    host = _ascii_host(url, parts.hostname or "")
    if port == 0:
        raise InvalidURLError(url, "port 0")
    return Target(
        url=url,
        scheme=scheme,
        host=host,
        port=port or _DEFAULT_PORTS[scheme],
        request_target=_request_target(parts.path, parts.query),
    )


def _check_authority(url: str, netloc: str) -> None:
    if "@" in netloc:
        raise InvalidURLError(
            url,
            "credentials in the link",
            "That link contains a user name or password; paste a link without them.",
        )
    if "\\" in netloc or "%" in netloc:
        raise InvalidURLError(url, "backslash or percent sign in the host")


def _ascii_host(url: str, host: str) -> str:
    """The IDNA (punycode) form; IDNA also folds full-width digits and dots to ASCII."""
    if ":" in host:  # an IPv6 literal; urlsplit has already checked the brackets
        return host.lower()
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as err:
        raise InvalidURLError(url, "host is not a valid name") from err
    if ascii_host.endswith("."):
        ascii_host = ascii_host[:-1]
    if len(ascii_host) > 253 or not _HOST_NAME.match(ascii_host):
        raise InvalidURLError(url, f"host {ascii_host!r} is not a valid name")
    return ascii_host


def _request_target(path: str, query: str) -> str:
    target = quote(path or "/", safe=_PATH_SAFE)
    if query:
        target += "?" + quote(query, safe=_QUERY_SAFE)
    return target
