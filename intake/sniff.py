"""Recognise a photo format by its first bytes (never by name or Content-Type).

Only the formats named here ever reach a Pillow decoder, and each one is opened with exactly
its own plugin, so Pillow never guesses (no EPS, PSD, TIFF or other plugin sees user bytes).
"""

from __future__ import annotations

import struct

_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_TEXT_MARKERS = (
    (b"<svg", "svg"),
    (b"<!doctype html", "html"),
    (b"<html", "html"),
    (b"<?xml", "xml"),
)


def sniff_format(data: bytes) -> str | None:
    """The Pillow format name for ``data`` (``"JPEG"``, ``"PNG"`` …), or ``None``."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:2] == b"BM" and _bmp_header_size(data) in _BMP_HEADER_SIZES:
        return "BMP"
    if _ftyp_brands(data) & _HEIC_BRANDS:
        return "HEIF"
    return None


def unsupported_format_name(data: bytes) -> str | None:
    """A short name for a known format that is not a supported photo (for error details)."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if _ftyp_brands(data) & {b"avif", b"avis"}:
        return "avif"
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    for marker, name in _TEXT_MARKERS:
        if head.startswith(marker):
            return "svg" if b"<svg" in head else name
    return None


def _bmp_header_size(data: bytes) -> int | None:
    if len(data) < 18:
        return None
    return struct.unpack_from("<I", data, 14)[0]


def _ftyp_brands(data: bytes) -> set[bytes]:
    """Major and compatible brands of an ISO-BMFF ``ftyp`` box at the start of ``data``."""
    if len(data) < 12 or data[4:8] != b"ftyp":
        return set()
    box_end = min(struct.unpack_from(">I", data, 0)[0], len(data))
    brands = {data[8:12]}
    brands.update(data[i : i + 4] for i in range(16, box_end - 3, 4))
    return brands
