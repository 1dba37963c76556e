"""image_from_url against a real threaded HTTP server on 127.0.0.1.

Every case asserts the exact error class. Private addresses are allowed here (the server is on
loopback) except where a test says otherwise; the redirect tests make the server look like a
public site for its first hop only, so the real address check judges every redirect.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from urllib.parse import quote

import pytest

import intake
from dishlens.settings import Settings
from intake import addresses, fetch
from intake.errors import (
    BlockedAddressError,
    CorruptImageError,
    DownloadError,
    DownloadTimeoutError,
    HostNotFoundError,
    HTTPStatusError,
    ImageTooLargeError,
    InvalidURLError,
    TooManyPixelsError,
    TooManyRedirectsError,
    UnsupportedEncodingError,
    UnsupportedFormatError,
)
from tests.intake.conftest import ImageServer
from tests.support.network import Network

GOOD_PATHS = ["/photo.jpg", "/photo.png", "/photo.webp", "/photo.heic"]


def _raises(error: type[Exception], url: str, settings: Settings) -> Exception:
    with pytest.raises(error) as caught:
        intake.image_from_url(url, settings=settings)
    assert type(caught.value) is error
    return caught.value


# ---------------------------------------------------------------------------------------------
# GOOD PHOTOS


@pytest.mark.parametrize("path", GOOD_PATHS)
def test_good_photos_decode(image_server: ImageServer, settings: Settings, path: str) -> None:
    image = intake.image_from_url(image_server.url(path), settings=settings)
    assert image.mode == "RGB"
    assert image.size == (64, 48)
    red = image.getpixel((5, 24))
    assert red[0] > 150 and red[2] < 90


def test_request_is_identified_and_uncompressed(
    image_server: ImageServer, settings: Settings
) -> None:
    intake.image_from_url(image_server.url("/photo.jpg"), settings=settings)
    headers = image_server.seen[-1]["headers"]
    assert headers["User-Agent"] == "DishLens/0.1 (+https://github.com/dishlens)"
    assert headers["Host"] == f"127.0.0.1:{image_server.port}"
    assert headers["Accept-Encoding"] == "identity"


def test_identity_content_encoding_is_accepted(
    image_server: ImageServer, settings: Settings
) -> None:
    assert intake.image_from_url(image_server.url("/identity.jpg"), settings=settings).size


@pytest.mark.parametrize("path", GOOD_PATHS)
def test_loopback_is_refused_by_default_before_any_connect(
    image_server: ImageServer, public_settings: Settings, network: Network, path: str
) -> None:
    error = _raises(BlockedAddressError, image_server.url(path), public_settings)
    assert error.address == "127.0.0.1"
    assert error.reason == "loopback"
    assert network.connects == [] and network.lookups == []
    assert image_server.seen == []


def test_loopback_name_is_refused_by_default_without_a_lookup(
    image_server: ImageServer, public_settings: Settings, network: Network
) -> None:
    _raises(BlockedAddressError, image_server.url("/photo.jpg", "localhost"), public_settings)
    assert network.lookups == [] and network.connects == []


# ---------------------------------------------------------------------------------------------
# SIZE, TIME AND ENCODING LIMITS


def test_announced_50_mb_body_is_refused_from_its_header(
    image_server: ImageServer, settings: Settings
) -> None:
    error = _raises(ImageTooLargeError, image_server.url("/big"), settings)
    assert error.size == 50 * 1024 * 1024  # from the header: refused before reading the body
    assert error.limit_bytes == settings.max_image_bytes


def test_unannounced_50_mb_body_is_cut_off_at_the_cap(
    image_server: ImageServer, settings: Settings
) -> None:
    small = dataclasses.replace(settings, max_image_mb=1)
    error = _raises(ImageTooLargeError, image_server.url("/big-unannounced"), small)
    assert error.size is None and error.limit_bytes == 1024 * 1024


def test_slow_drip_hits_the_total_timeout(image_server: ImageServer, settings: Settings) -> None:
    quick = dataclasses.replace(settings, fetch_timeout=0.6)
    # The drip lasts 4 s and then stops short of its Content-Length (a DownloadError): a
    # timeout error shows the deadline ended it first.
    error = _raises(DownloadTimeoutError, image_server.url("/drip"), quick)
    assert error.timeout == 0.6
    assert isinstance(error, TimeoutError)


def test_server_that_never_answers_times_out(image_server: ImageServer, settings: Settings) -> None:
    quick = dataclasses.replace(settings, fetch_timeout=0.5)
    # The server hangs up after 3 s (a DownloadError): a timeout shows the deadline came first.
    _raises(DownloadTimeoutError, image_server.url("/silent"), quick)


def test_body_shorter_than_announced_is_a_download_error(
    image_server: ImageServer, settings: Settings
) -> None:
    _raises(DownloadError, image_server.url("/short-body"), settings)


def test_gzip_bomb_is_refused_without_decompressing(
    image_server: ImageServer, settings: Settings
) -> None:
    error = _raises(UnsupportedEncodingError, image_server.url("/gzip-bomb"), settings)
    assert error.encoding == "gzip"


# ---------------------------------------------------------------------------------------------
# WHAT THE BODY IS


def test_html_served_as_an_image_is_refused(image_server: ImageServer, settings: Settings) -> None:
    error = _raises(UnsupportedFormatError, image_server.url("/html-as-image"), settings)
    assert error.detected == "html"


def test_svg_is_refused(image_server: ImageServer, settings: Settings) -> None:
    error = _raises(UnsupportedFormatError, image_server.url("/image.svg"), settings)
    assert error.detected == "svg"


def test_pixel_bomb_is_refused(image_server: ImageServer, settings: Settings) -> None:
    _raises(TooManyPixelsError, image_server.url("/pixel-bomb.png"), settings)


def test_truncated_jpeg_is_corrupt(image_server: ImageServer, settings: Settings) -> None:
    error = _raises(CorruptImageError, image_server.url("/truncated.jpg"), settings)
    assert error.__cause__ is not None


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/error", 500)])
def test_http_errors(image_server: ImageServer, settings: Settings, path: str, status: int) -> None:
    error = _raises(HTTPStatusError, image_server.url(path), settings)
    assert error.status == status
    assert f"HTTP {status}" in str(error)


# ---------------------------------------------------------------------------------------------
# REDIRECTS


def test_three_redirects_are_followed(image_server: ImageServer, settings: Settings) -> None:
    image = intake.image_from_url(image_server.url("/chain?n=2"), settings=settings)
    assert image.size == (64, 48)
    assert [hit["path"] for hit in image_server.seen] == ["/chain"] * 3 + ["/photo.jpg"]


def test_a_fourth_redirect_is_refused(image_server: ImageServer, settings: Settings) -> None:
    error = _raises(TooManyRedirectsError, image_server.url("/chain?n=3"), settings)
    assert error.limit == 3
    assert len(image_server.seen) == 4


def test_relative_redirect(image_server: ImageServer, settings: Settings) -> None:
    assert intake.image_from_url(image_server.url("/relative"), settings=settings).size


def test_redirect_without_location(image_server: ImageServer, settings: Settings) -> None:
    assert _raises(HTTPStatusError, image_server.url("/no-location"), settings).status == 302


@pytest.fixture
def public_site(
    image_server: ImageServer, monkeypatch: pytest.MonkeyPatch
) -> tuple[ImageServer, str]:
    """``photos.test`` is the loopback server posing as a public website; nothing else is."""
    real = addresses.resolve_checked

    def resolve(host: str, port: int, **options: object) -> list:
        if host == "photos.test":
            return [ipaddress.ip_address("127.0.0.1")]
        return real(host, port, **options)

    monkeypatch.setattr(fetch, "resolve_checked", resolve)
    return image_server, f"http://photos.test:{image_server.port}"


@pytest.mark.parametrize(
    ("location", "error"),
    [
        ("http://127.0.0.1:{port}/photo.jpg", BlockedAddressError),
        ("http://169.254.169.254/latest/meta-data/iam/", BlockedAddressError),
        ("http://[fd00:ec2::254]/latest/meta-data/", BlockedAddressError),
        ("http://intranet.test:{port}/photo.jpg", BlockedAddressError),
        ("http://localhost:{port}/photo.jpg", BlockedAddressError),
        ("http://2130706433:{port}/photo.jpg", BlockedAddressError),
        ("file:///etc/passwd", InvalidURLError),
        ("gopher://127.0.0.1:{port}/", InvalidURLError),
    ],
)
def test_redirects_to_private_places_are_refused(
    public_site: tuple[ImageServer, str],
    public_settings: Settings,
    network: Network,
    location: str,
    error: type[Exception],
) -> None:
    server, base = public_site
    network.dns["intranet.test"] = ["10.20.30.40"]
    target = quote(location.format(port=server.port), safe="")
    _raises(error, f"{base}/redirect-to?location={target}", public_settings)
    assert network.connects == [("127.0.0.1", server.port)]  # the first hop only
    assert [hit["path"] for hit in server.seen] == ["/redirect-to"]


def test_redirect_on_the_public_site_is_followed(
    public_site: tuple[ImageServer, str], public_settings: Settings
) -> None:
    server, base = public_site
    image = intake.image_from_url(f"{base}/relative", settings=public_settings)
    assert image.size == (64, 48)
    assert server.seen[-1]["headers"]["Host"] == f"photos.test:{server.port}"


# ---------------------------------------------------------------------------------------------
# CONNECTING TO THE CHECKED ADDRESS


def test_no_second_lookup_for_a_rebinding_name(
    image_server: ImageServer, settings: Settings, network: Network
) -> None:
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])  # a second lookup would get a private address
    network.dns["rebind.test"] = lambda: next(answers)
    url = image_server.url("/photo.jpg", "rebind.test")
    assert intake.image_from_url(url, settings=settings).size == (64, 48)
    assert network.lookups.count("rebind.test") == 1
    assert network.connects == [("127.0.0.1", image_server.port)]
    assert image_server.seen[-1]["headers"]["Host"] == f"rebind.test:{image_server.port}"


def test_next_checked_address_is_tried_when_one_refuses(
    image_server: ImageServer, settings: Settings, network: Network
) -> None:
    network.dns["two.test"] = ["127.0.0.2", "127.0.0.1"]  # nothing listens on 127.0.0.2
    url = image_server.url("/photo.jpg", "two.test")
    assert intake.image_from_url(url, settings=settings).size == (64, 48)
    assert [host for host, _ in network.connects] == ["127.0.0.2", "127.0.0.1"]


def test_one_private_answer_among_public_ones_is_refused(
    public_settings: Settings, network: Network
) -> None:
    network.dns["mixed.test"] = ["93.184.215.14", "10.0.0.7"]
    error = _raises(BlockedAddressError, "http://mixed.test/photo.jpg", public_settings)
    assert error.address == "10.0.0.7"
    assert network.connects == []


def test_unknown_host(settings: Settings, network: Network) -> None:
    network.dns["nowhere.test"] = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    error = _raises(HostNotFoundError, "http://nowhere.test/photo.jpg", settings)
    assert error.host == "nowhere.test"


def test_refused_connection(settings: Settings) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = _raises(DownloadError, f"http://127.0.0.1:{port}/photo.jpg", settings)
    assert error.__cause__ is not None
    assert type(error.__cause__).__module__.startswith("urllib3")
