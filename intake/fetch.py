"""Download the bytes behind a link, following OWASP's SSRF prevention guidance.

Each hop: parse the link, resolve and check its host (:mod:`intake.addresses`), connect to a
checked IP (never to the name again), speak HTTP with the original Host header and, for
HTTPS, SNI and certificate verification for the original name. Redirects repeat all of it.
One deadline (``FETCH_TIMEOUT``) covers every hop from connect to last byte: a watchdog shuts
down the download's sockets when it passes, so a server that sends its status line, its headers
or endless ``100 Continue`` lines a byte at a time cannot stretch it (socket timeouts alone
bound each read, not the exchange). The byte cap is enforced while streaming and the body is
never decompressed.

This is also the one place that turns ``urllib3``, ``http.client``, ``ssl`` and socket
exceptions into :class:`intake.errors.IntakeError` subclasses.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from urllib.parse import urljoin

import certifi
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError

from dishlens.settings import Settings
from intake._common import USER_AGENT, Deadline
from intake.addresses import IPAddress, Resolver, resolve_checked
from intake.errors import (
    DownloadError,
    DownloadTimeoutError,
    HTTPStatusError,
    ImageTooLargeError,
    InsecureConnectionError,
    IntakeError,
    TooManyRedirectsError,
    UnsupportedEncodingError,
    UnsupportedFormatError,
)
from intake.sniff import sniff_format, unsupported_format_name
from intake.urls import Target, parse_url

MAX_REDIRECTS = 3
SNIFF_BYTES = 64
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024
_ACCEPT = "image/jpeg,image/png,image/webp,image/heic,image/heif,image/gif,image/bmp;q=0.9"
_Response = urllib3.BaseHTTPResponse


def download(url: str, settings: Settings, *, resolver: Resolver | None = None) -> bytes:
    """The body behind ``url``: checked, capped, and only if it starts like a photo.

    Raises:
        IntakeError: a subclass per cause; nothing else escapes.
    """
    deadline = Deadline(settings.fetch_timeout)
    watchdog = Watchdog(settings.fetch_timeout)
    try:
        body = _follow(url, settings, deadline, resolver, watchdog)
    except IntakeError as err:
        if watchdog.fired:
            raise DownloadTimeoutError(url, settings.fetch_timeout) from err
        raise
    except (Urllib3Error, http.client.HTTPException, OSError) as err:
        if watchdog.fired:
            raise DownloadTimeoutError(url, settings.fetch_timeout) from err
        raise _translate(err, url, settings) from err
    finally:
        watchdog.close()
    if watchdog.fired:  # a body without a length, cut off by the watchdog, reads as complete
        raise DownloadTimeoutError(url, settings.fetch_timeout)
    return body


class Watchdog:
    """Shuts down every socket handed to :meth:`watch` once ``seconds`` have passed.

    It keeps a duplicate of each socket's descriptor: ``shutdown`` acts on the connection, not
    the descriptor, so a read blocked on the original (plain or TLS-wrapped) returns at once.
    """

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        duplicate = sock.dup()
        with self._lock:
            self._sockets.append(duplicate)
            if self.fired:
                _shut(duplicate)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Watched:
    """A urllib3 connection whose new sockets the download's watchdog watches."""

    def __init__(self, *args, watchdog: Watchdog, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._watchdog = watchdog

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        self._watchdog.watch(sock)
        return sock


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def _follow(
    url: str,
    settings: Settings,
    deadline: Deadline,
    resolver: Resolver | None,
    watchdog: Watchdog,
) -> bytes:
    target = parse_url(url)
    for _ in range(MAX_REDIRECTS + 1):
        result = _fetch_once(target, settings, deadline, resolver, watchdog)
        if isinstance(result, bytes):
            return result
        target = result
    raise TooManyRedirectsError(url, MAX_REDIRECTS)


def _fetch_once(
    target: Target,
    settings: Settings,
    deadline: Deadline,
    resolver: Resolver | None,
    watchdog: Watchdog,
) -> bytes | Target:
    """The body, or the next hop's target when the server redirects."""
    addresses = resolve_checked(
        target.host, target.port, allow_private=settings.allow_private_urls, resolver=resolver
    )
    pool, response = _open(target, addresses, settings, deadline, watchdog)
    with pool, contextlib.closing(response):
        if response.status in _REDIRECTS:
            return parse_url(_location(response, target))
        _check_headers(response, target, settings)
        return _read_body(response, target, settings, deadline)


def _open(
    target: Target,
    addresses: list[IPAddress],
    settings: Settings,
    deadline: Deadline,
    watchdog: Watchdog,
) -> tuple[urllib3.HTTPConnectionPool, _Response]:
    """Send the request to the first checked address that accepts a connection."""
    failure: Exception | None = None
    for address in addresses:
        pool = _pool(target, address, settings, deadline, watchdog)
        try:
            return pool, pool.urlopen(
                "GET",
                target.request_target,
                headers=_headers(target),
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
            )
        except ConnectTimeoutError as err:  # includes refused connections; try the next one
            pool.close()
            failure = err
        except BaseException:
            pool.close()
            raise
    assert failure is not None
    raise failure


def _pool(
    target: Target, address: IPAddress, settings: Settings, deadline: Deadline, watchdog: Watchdog
) -> urllib3.HTTPConnectionPool:
    remaining = deadline.remaining()
    if remaining <= 0:
        raise DownloadTimeoutError(target.url, settings.fetch_timeout)
    timeout = urllib3.Timeout(
        connect=min(settings.fetch_connect_timeout, remaining), read=remaining
    )
    if target.scheme == "http":
        return _WatchedHTTPPool(
            str(address), target.port, timeout=timeout, retries=False, maxsize=1, watchdog=watchdog
        )
    # Connect to the checked IP; SNI and certificate verification use the link's host name.
    return _WatchedHTTPSPool(
        str(address),
        target.port,
        timeout=timeout,
        retries=False,
        maxsize=1,
        cert_reqs="CERT_REQUIRED",
        ca_certs=_ca_certs(),
        server_hostname=target.host,
        watchdog=watchdog,
    )


def _ca_certs() -> str:
    return certifi.where()


def _headers(target: Target) -> dict[str, str]:
    return {
        "Host": target.host_header,
        "User-Agent": USER_AGENT,
        "Accept": _ACCEPT,
        "Accept-Encoding": "identity",
        "Connection": "close",
    }


def _location(response: _Response, target: Target) -> str:
    location = response.headers.get("Location")
    if not location:
        raise HTTPStatusError(target.url, response.status)
    return urljoin(target.url, location)


def _check_headers(response: _Response, target: Target, settings: Settings) -> None:
    if response.status != 200:
        raise HTTPStatusError(target.url, response.status)
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedEncodingError(target.url, encoding)
    length = response.headers.get("Content-Length", "").strip()
    if length.isdigit() and int(length) > settings.max_image_bytes:
        raise ImageTooLargeError(settings.max_image_bytes, int(length))


def _read_body(
    response: _Response, target: Target, settings: Settings, deadline: Deadline
) -> bytes:
    limit = settings.max_image_bytes
    body = bytearray()
    checked = False
    while chunk := _read_chunk(response, target, settings, deadline):
        if len(body) + len(chunk) > limit:
            raise ImageTooLargeError(limit)
        body += chunk
        if not checked and len(body) >= SNIFF_BYTES:
            _require_photo(bytes(body[:SNIFF_BYTES]))
            checked = True
    return bytes(body)


def _read_chunk(
    response: _Response, target: Target, settings: Settings, deadline: Deadline
) -> bytes:
    """One socket read at most, bounded by what is left of the deadline (a slow drip stops)."""
    remaining = deadline.remaining()
    if remaining <= 0:
        raise DownloadTimeoutError(target.url, settings.fetch_timeout)
    sock = getattr(response.connection, "sock", None)
    if sock is not None:
        sock.settimeout(remaining)
    return response.read1(_CHUNK)


def _require_photo(prefix: bytes) -> None:
    """Stop early when the body is not a photo, whatever its Content-Type claims."""
    if sniff_format(prefix) is None:
        raise UnsupportedFormatError(detected=unsupported_format_name(prefix))


def _translate(err: BaseException, url: str, settings: Settings) -> IntakeError:
    if isinstance(err, (Urllib3SSLError, ssl.SSLError)):
        return InsecureConnectionError(url)
    if isinstance(err, NewConnectionError):
        return DownloadError(url)
    if isinstance(err, (Urllib3TimeoutError, TimeoutError)):
        return DownloadTimeoutError(url, settings.fetch_timeout)
    return DownloadError(url)
