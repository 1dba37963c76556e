"""Image intake: turn a pasted link or uploaded bytes into a safe, decoded RGB photo.

Links are fetched following OWASP's SSRF guidance (public addresses only, checked on every
redirect, connected to by IP); uploads and downloads share the same byte and pixel caps and
the same decoder. Every refusal is an :class:`IntakeError` whose ``str()`` a user can act on.
"""

from __future__ import annotations

from PIL import Image

from dishlens.settings import Settings
from intake._common import resolve_settings
from intake.decode import check_size, decode_image
from intake.errors import IntakeError
from intake.fetch import download

__all__ = ["IntakeError", "check_photo_size", "image_from_bytes", "image_from_url"]


def image_from_url(url: str, *, settings: Settings | None = None) -> Image.Image:
    """Download the photo behind a link and decode it.

    Only http(s) links whose host resolves to public addresses are fetched (unless
    ``settings.allow_private_urls``); at most 3 redirects, each checked the same way.

    Args:
        url: The link as the user pasted it.
        settings: Caps and timeouts (``max_image_mb``, ``max_image_pixels``,
            ``fetch_connect_timeout``, ``fetch_timeout``, ``allow_private_urls``);
            ``None`` reads them from the environment.

    Returns:
        An RGB image, EXIF orientation applied, shorter side at most 512 px (never upscaled).

    Raises:
        IntakeError: the link is refused, the download fails or times out, or the body is not
            a supported, intact photo within the caps. Subclasses in :mod:`intake.errors`
            name each cause.
    """
    settings = resolve_settings(settings)
    data = download(url, settings)
    return decode_image(
        data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels
    )


def image_from_bytes(
    data: bytes, *, filename: str | None = None, settings: Settings | None = None
) -> Image.Image:
    """Decode an uploaded or camera photo.

    Args:
        data: The file's bytes (JPEG, PNG, WebP, GIF, BMP or HEIC; found by content).
        filename: The name the user's file had; kept on errors for logs, never trusted.
        settings: Caps (``max_image_mb``, ``max_image_pixels``); ``None`` reads them from the
            environment.

    Returns:
        An RGB image, EXIF orientation applied, shorter side at most 512 px (never upscaled).

    Raises:
        IntakeError: empty, too large, not a supported format, damaged, or too many pixels.
        TypeError: ``data`` is not bytes-like (a programming error, not a user's).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"image_from_bytes needs bytes, not {type(data).__name__}")
    settings = resolve_settings(settings)
    return decode_image(
        bytes(data),
        max_bytes=settings.max_image_bytes,
        max_pixels=settings.max_image_pixels,
        filename=filename,
    )


def check_photo_size(data: bytes, *, settings: Settings | None = None) -> None:
    """Refuse ``data`` before any decoding when it is over ``MAX_IMAGE_MB`` (the first check
    :func:`image_from_bytes` makes; callers that hand the bytes on make it early).

    Raises:
        ImageTooLargeError: an :class:`IntakeError` naming the cap.
    """
    check_size(data, resolve_settings(settings).max_image_bytes)
