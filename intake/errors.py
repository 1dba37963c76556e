"""Errors of the intake package; ``str()`` of each is a sentence a user can act on.

Every class also inherits the builtin that fits its cause, so callers that only know
``ValueError`` or ``TimeoutError`` still catch the right thing. Technical detail (the host, the
address, the HTTP status) lives in attributes and in the chained ``__cause__``, never in the
message, because the message is shown to users.
"""

from __future__ import annotations

from dishlens.errors import DishLensError

SUPPORTED_FORMATS = "JPEG, PNG, WebP, GIF, BMP or HEIC"


class IntakeError(DishLensError):
    """Base class: a link or an upload that DishLens could not turn into a photo."""


# ---------------------------------------------------------------------------------------------
# LINK ERRORS (refused before anything is sent)


class InvalidURLError(IntakeError, ValueError):
    """The link is malformed, not http(s), or carries credentials; ``reason`` says which."""

    def __init__(self, url: str, reason: str, message: str | None = None) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            message or "That link is not a valid web address; check it and paste it again."
        )


class BlockedAddressError(IntakeError, ValueError):
    """The link's host is, or resolves to, an address that is not public."""

    def __init__(self, host: str, address: str | None, reason: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        super().__init__(
            "That link points to a private network address, which DishLens does not fetch."
        )


# ---------------------------------------------------------------------------------------------
# DOWNLOAD ERRORS


class HostNotFoundError(IntakeError, ConnectionError):
    """The link's host name does not resolve."""

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__("DishLens could not find the website in that link; check it for typos.")


class DownloadError(IntakeError, ConnectionError):
    """The connection failed or broke off before the whole photo arrived."""

    def __init__(self, url: str, message: str | None = None) -> None:
        self.url = url
        super().__init__(
            message
            or "DishLens could not download that link; check that it opens in your browser, "
            "or upload the photo instead."
        )


class InsecureConnectionError(DownloadError):
    """The HTTPS certificate did not verify for the link's host name."""

    def __init__(self, url: str) -> None:
        super().__init__(
            url,
            "The secure connection to that website could not be verified, so DishLens did not "
            "download the link; upload the photo instead.",
        )


class DownloadTimeoutError(IntakeError, TimeoutError):
    """The server was too slow to connect or to send the whole photo; ``timeout`` in seconds."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        super().__init__(
            "The website behind that link took too long to send the photo; try again, "
            "or upload the photo instead."
        )


class HTTPStatusError(IntakeError, ConnectionError):
    """The server answered with a status other than 200 (``status``)."""

    def __init__(self, url: str, status: int) -> None:
        self.url = url
        self.status = status
        super().__init__(_status_message(status))


class TooManyRedirectsError(IntakeError, ConnectionError):
    """The link redirected more than ``limit`` times."""

    def __init__(self, url: str, limit: int) -> None:
        self.url = url
        self.limit = limit
        super().__init__(
            "That link redirects too many times; open it in your browser and paste the "
            "photo's final address instead."
        )


class UnsupportedEncodingError(IntakeError, ValueError):
    """The server compressed the body (``encoding``); DishLens never decompresses downloads."""

    def __init__(self, url: str, encoding: str) -> None:
        self.url = url
        self.encoding = encoding
        super().__init__(
            "The website behind that link sent the photo compressed in a way DishLens does not "
            "accept; upload the photo instead."
        )


# ---------------------------------------------------------------------------------------------
# PHOTO ERRORS (links and uploads alike)


class ImageTooLargeError(IntakeError, ValueError):
    """The photo is bigger than ``limit_bytes``; ``size`` is its size when known."""

    def __init__(self, limit_bytes: int, size: int | None = None, message: str | None = None):
        self.limit_bytes = limit_bytes
        self.size = size
        limit_mb = limit_bytes / (1024 * 1024)
        super().__init__(
            message
            or f"That photo is larger than {limit_mb:g} MB; pick a smaller one or shrink it first."
        )


class TooManyPixelsError(ImageTooLargeError):
    """The photo has more than ``limit_pixels`` pixels (a decompression-bomb guard)."""

    def __init__(self, limit_pixels: int, pixels: int | None = None) -> None:
        self.limit_pixels = limit_pixels
        self.pixels = pixels
        megapixels = limit_pixels / 1_000_000
        super().__init__(
            limit_bytes=0,
            message=f"That photo has more than {megapixels:g} megapixels, more than DishLens "
            "accepts; pick a smaller one or shrink it first.",
        )


class ImageShapeError(IntakeError, ValueError):
    """The photo is far longer than it is wide (or a side is over ``max_side``): resizing it
    for the model would take gigabytes."""

    def __init__(self, width: int, height: int, max_aspect_ratio: int, max_side: int) -> None:
        self.width = width
        self.height = height
        self.max_aspect_ratio = max_aspect_ratio
        self.max_side = max_side
        super().__init__(
            f"That photo is {width}×{height} pixels; DishLens needs one no more than "
            f"{max_aspect_ratio} times longer than it is wide, and at most {max_side:,} pixels "
            "on a side. Crop it and try again."
        )


class ImageTooComplexError(IntakeError, ValueError):
    """Decoding the photo would cost far more than its size suggests; ``scans`` is the number of
    JPEG scans found (a scan bomb), ``limit`` the most accepted."""

    def __init__(self, scans: int, limit: int) -> None:
        self.scans = scans
        self.limit = limit
        super().__init__(
            "That photo is saved in a way that would take DishLens far too long to open; "
            "save it again as an ordinary JPEG or PNG and try again."
        )


class UnsupportedFormatError(IntakeError, ValueError):
    """Not a photo format DishLens decodes; ``detected`` names what it looks like, if known."""

    def __init__(self, detected: str | None = None, filename: str | None = None) -> None:
        self.detected = detected
        self.filename = filename
        super().__init__(f"That file is not a supported photo format; use {SUPPORTED_FORMATS}.")


class CorruptImageError(IntakeError, ValueError):
    """The photo is empty, truncated or damaged."""

    def __init__(self, filename: str | None = None, *, empty: bool = False) -> None:
        self.filename = filename
        self.empty = empty
        super().__init__(
            "That file is empty; pick a photo."
            if empty
            else "That photo is damaged or incomplete and cannot be opened; try another copy."
        )


def _status_message(status: int) -> str:
    if status in (404, 410):
        return f"That link leads to a page that does not exist (HTTP {status}); check the link."
    if status in (401, 403):
        return (
            f"That link needs a login (HTTP {status}), which DishLens does not have; "
            "upload the photo instead."
        )
    if status >= 500:
        return (
            f"The website behind that link had an error (HTTP {status}); try again later, "
            "or upload the photo instead."
        )
    return (
        f"The website behind that link did not send a photo (HTTP {status}); "
        "upload the photo instead."
    )
